import { createHash } from 'node:crypto'
import { open, stat, type FileHandle } from 'node:fs/promises'
import type { BlockBlobClient, BlockBlobStageBlockOptions, BlockBlobCommitBlockListOptions } from '@azure/storage-blob'
import { readFilePart } from './file-part.js'

export interface BlockUpload {
  blockSize: number
  /** Blocks in flight at once. */
  concurrency: number
  tier: BlockBlobCommitBlockListOptions['tier']
}

/**
 * Uploads a buffer or a local file as a block blob, block by block (Put Block), each block with
 * the MD5 of its bytes as transactional Content-MD5, then commits the list (Put Block List). The
 * service checks every block's bytes on arrival (the SDK's uploadData and uploadFile send no
 * hash, so a damaged body would be stored), and the blob appears only once the list commits. A
 * file is read one block per worker at a time: memory stays at concurrency x blockSize.
 */
export async function uploadBlocks(blob: BlockBlobClient, source: { file: string } | { data: Buffer }, o: BlockUpload): Promise<void> {
  const size = 'data' in source ? source.data.length : (await stat(source.file)).size
  const count = Math.ceil(size / o.blockSize)
  // Block ids of one blob must all have the same length.
  const ids = Array.from({ length: count }, (_, i) => Buffer.from(`tierfs-block-${String(i).padStart(8, '0')}`).toString('base64'))
  const fh = 'file' in source ? await open(source.file, 'r') : undefined
  try {
    let next = 0
    const worker = async (): Promise<void> => {
      for (let i = next++; i < count; i = next++) {
        const start = i * o.blockSize
        const length = Math.min(o.blockSize, size - start)
        const body = 'data' in source ? source.data.subarray(start, start + length) : await readFilePart(fh as FileHandle, start, length)
        const opts: BlockBlobStageBlockOptions = { transactionalContentMD5: createHash('md5').update(body).digest() }
        await blob.stageBlock(ids[i] as string, body, length, opts)
      }
    }
    await Promise.all(Array.from({ length: Math.max(1, Math.min(o.concurrency, count)) }, worker))
  } finally {
    await fh?.close()
  }
  await blob.commitBlockList(ids, { tier: o.tier })
}
