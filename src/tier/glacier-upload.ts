import { createReadStream } from 'node:fs'
import { setTimeout as sleep } from 'node:timers/promises'
import {
  CompleteMultipartUploadCommand, InitiateMultipartUploadCommand, UploadArchiveCommand,
  UploadMultipartPartCommand, type GlacierClient,
} from '@aws-sdk/client-glacier'
import { TierfsError } from '../errors.js'
import type { Logger } from '../log.js'
import { combineTreeHashes, treeHash, treeHashFileRange } from './tree-hash.js'

/** What an upload needs from the tier: the client, the vault, and its error mapping. */
export interface UploadContext {
  client: GlacierClient
  vault: string
  accountId: string
  /** Maps a failure of operation `op` to a TierfsError naming the tier. */
  fail(err: unknown, op: string): TierfsError
  /** Attempts per part streamed from a file (the SDK cannot replay a stream, so parts are retried here). */
  partAttempts: number
  /** Parts in flight at once. */
  concurrency: number
  log: Logger
}

export type UploadSource = { file: string } | { data: Buffer }

/** Uploads `body` as one archive (UploadArchive) described as `description`; returns the archive id. */
export async function uploadSingle(ctx: UploadContext, body: Buffer, description: string): Promise<string> {
  const hash = treeHash(body).toString('hex')
  let out
  try {
    out = await ctx.client.send(new UploadArchiveCommand({ vaultName: ctx.vault, accountId: ctx.accountId, body, checksum: hash, archiveDescription: description }))
  } catch (err) {
    throw ctx.fail(err, 'UploadArchive')
  }
  return archiveIdOf(out, hash, 'UploadArchive')
}

/** What a multipart upload tells its caller, and when (each resolves before the upload goes on). */
export interface MultipartHooks {
  /** The archive description (InitiateMultipartUpload's x-amz-archive-description). */
  description: string
  /** Initiate returned `uploadId`; no part is sent before this resolves. */
  initiated(uploadId: string): Promise<void>
  /** Every part is up; Complete is sent only after this resolves, and never if it fails. */
  completing(size: number, treeHash: string): Promise<void>
}

/**
 * Uploads `size` bytes of `source` as a multipart archive: parts of `partSize` bytes (the last
 * may be shorter), each sent with its tree hash and `Content-Range: bytes a-b/*`, streamed from
 * the file (memory stays at a few MiB per part in flight), then completed with the archive size
 * and the whole-archive tree hash combined from the part hashes. A failure leaves the upload as
 * it is (open, or completed if Complete's response was lost): the caller, which knows the
 * upload id from `hooks.initiated`, aborts it or repeats Complete.
 */
export async function uploadMultipart(ctx: UploadContext, source: UploadSource, size: number, partSize: number, hooks: MultipartHooks): Promise<string> {
  try {
    const init = await ctx.client.send(new InitiateMultipartUploadCommand({
      vaultName: ctx.vault, accountId: ctx.accountId, partSize: String(partSize), archiveDescription: hooks.description,
    }))
    const id = init.uploadId
    if (id === undefined) throw TierfsError.io('InitiateMultipartUpload returned no upload id')
    await hooks.initiated(id)
    const count = Math.ceil(size / partSize)
    const hashes: Buffer[] = new Array<Buffer>(count)
    let next = 0
    let failed: { err: unknown } | undefined
    // Workers stop taking parts after the first failure, and all settle before this throws, so
    // nothing still reads the file or sends parts once it has.
    const worker = async (): Promise<void> => {
      while (failed === undefined && next < count) {
        const i = next++
        const start = i * partSize
        try {
          hashes[i] = await uploadPart(ctx, id, source, start, Math.min(size, start + partSize) - 1)
        } catch (err) {
          failed ??= { err }
        }
      }
    }
    await Promise.all(Array.from({ length: Math.min(ctx.concurrency, count) }, worker))
    if (failed !== undefined) throw failed.err
    const whole = combineTreeHashes(hashes).toString('hex')
    await hooks.completing(size, whole)
    const out = await ctx.client.send(new CompleteMultipartUploadCommand({
      vaultName: ctx.vault, accountId: ctx.accountId, uploadId: id, archiveSize: String(size), checksum: whole,
    }))
    return archiveIdOf(out, whole, 'CompleteMultipartUpload')
  } catch (err) {
    throw ctx.fail(err, 'multipart upload')
  }
}

/** Uploads bytes [start, end] as one part; returns its tree hash. */
async function uploadPart(ctx: UploadContext, uploadId: string, source: UploadSource, start: number, end: number): Promise<Buffer> {
  let hash: Buffer
  if ('data' in source) {
    hash = treeHash(source.data.subarray(start, end + 1))
  } else {
    const h = await treeHashFileRange(source.file, start, end)
    if (h.size !== end - start + 1) throw TierfsError.io(`${source.file} changed during upload (short read at byte ${start + h.size})`)
    hash = h.treeHash
  }
  const checksum = hash.toString('hex')
  const attempts = 'data' in source ? 1 : ctx.partAttempts
  for (let attempt = 1; ; attempt++) {
    const body = 'data' in source ? source.data.subarray(start, end + 1) : createReadStream(source.file, { start, end })
    // A read error surfaces as the request's failure; without a listener it would also crash the process.
    if ('on' in body) body.on('error', () => undefined)
    try {
      const out = await ctx.client.send(new UploadMultipartPartCommand({
        vaultName: ctx.vault, accountId: ctx.accountId, uploadId, range: `bytes ${start}-${end}/*`, checksum, body,
      }))
      if (out.checksum !== undefined && out.checksum !== checksum) {
        throw TierfsError.corrupt(`Glacier computed tree hash ${out.checksum} for the part at byte ${start}, expected ${checksum}`)
      }
      return hash
    } catch (err) {
      if ('destroy' in body) body.destroy()
      const mapped = ctx.fail(err, 'UploadMultipartPart')
      if (attempt >= attempts || mapped.detail?.transient !== true) throw mapped
      await sleep(100 * 2 ** (attempt - 1) * (0.5 + Math.random()))
    }
  }
}

/** The archive id of an upload's response, after checking Glacier's tree hash against ours. */
export function archiveIdOf(out: { archiveId?: string; checksum?: string }, expected: string, op: string): string {
  if (out.checksum !== undefined && out.checksum !== expected) {
    throw TierfsError.corrupt(`${op}: Glacier computed tree hash ${out.checksum}, expected ${expected}`)
  }
  if (out.archiveId === undefined || out.archiveId === '') throw TierfsError.io(`${op} returned no archive id`)
  return out.archiveId
}
