import { open } from 'node:fs/promises'
import {
  AbortMultipartUploadCommand, CompleteMultipartUploadCommand, CreateMultipartUploadCommand, UploadPartCommand,
  type CompletedPart, type S3Client, type StorageClass,
} from '@aws-sdk/client-s3'
import { readFilePart } from './file-part.js'

export interface MultipartUpload {
  client: S3Client
  bucket: string
  key: string
  file: string
  /** Bytes of `file` to upload (its size when the put started). */
  size: number
  partSize: number
  storageClass: StorageClass
  /** Ask S3 to verify a CRC32 of every part (checksumMode 'when-supported'). */
  checksums: boolean
}

/** S3 allows at most this many parts per upload. */
const MAX_PARTS = 10_000

/**
 * Uploads a local file as one S3 object in parts, read from the file one part at a time into a
 * buffer (memory stays at one part, whatever the size), so that SigV4 signs each part's SHA-256
 * and S3 checks it on arrival (a stream body would go as UNSIGNED-PAYLOAD). The object appears only when the
 * upload completes, so readers never see part of it. On any failure the upload is aborted so
 * its parts stop costing storage; the abort is best effort (the original error is what the
 * caller needs, and a bucket lifecycle rule cleans up what an abort could not).
 */
export async function uploadMultipart(u: MultipartUpload): Promise<void> {
  const partSize = Math.max(u.partSize, Math.ceil(u.size / MAX_PARTS))
  const target = { Bucket: u.bucket, Key: u.key }
  const algo = u.checksums ? { ChecksumAlgorithm: 'CRC32' as const } : {}
  const created = await u.client.send(new CreateMultipartUploadCommand({ ...target, StorageClass: u.storageClass, ...algo }))
  const uploadId = created.UploadId
  if (uploadId === undefined) throw new Error('CreateMultipartUpload returned no upload id')
  try {
    const parts: CompletedPart[] = []
    const fh = await open(u.file, 'r')
    try {
      for (let n = 1, offset = 0; offset < u.size; n++, offset += partSize) {
        const length = Math.min(partSize, u.size - offset)
        const body = await readFilePart(fh, offset, length)
        const res = await u.client.send(new UploadPartCommand({ ...target, UploadId: uploadId, PartNumber: n, Body: body, ContentLength: length, ...algo }))
        parts.push({ PartNumber: n, ETag: res.ETag, ...(u.checksums ? { ChecksumCRC32: res.ChecksumCRC32 } : {}) })
      }
    } finally {
      await fh.close()
    }
    await u.client.send(new CompleteMultipartUploadCommand({ ...target, UploadId: uploadId, MultipartUpload: { Parts: parts } }))
  } catch (err) {
    await u.client.send(new AbortMultipartUploadCommand({ ...target, UploadId: uploadId })).catch(() => undefined)
    throw err
  }
}
