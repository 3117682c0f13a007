import { createHash } from 'node:crypto'
import { createReadStream } from 'node:fs'
import { open, stat } from 'node:fs/promises'
import { TierfsError } from '../errors.js'
import type { Tier } from '../tier/tier.js'
import {
  decodeFooter, decodeHeader, encodeFooter, encodeHeader, encodeRecord, FOOTER_SIZE, headerLength, MAX_HEADER, RecordParser,
  type CheckpointHeader, type CheckpointOp,
} from './checkpoint-format.js'
import { zstdCompress, zstdDecompress } from './zstd-stream.js'

/** Records gathered into one piece before compression (fewer, larger writes). */
const PIECE = 256 * 1024
const READ_PIECE = 1024 * 1024
/** zstd level 3: metadata compresses well (chunk ids do not), and this is far from the bottleneck. */
const LEVEL = 3

export interface WrittenCheckpoint {
  header: CheckpointHeader
  /** File size in bytes. */
  bytes: number
  /** The footer digest (hex). */
  sha256: string
}

/**
 * Writes a checkpoint file at `path` (created or truncated) from `ops`, which must come in
 * strictly ascending key order (INTERNAL otherwise). Streams: memory holds one piece of records
 * and the compressor's buffers. The file is fsynced before this resolves.
 */
export async function writeCheckpointFile(
  path: string,
  info: Omit<CheckpointHeader, 'entries' | 'bodyLength'>,
  ops: AsyncIterable<CheckpointOp>,
): Promise<WrittenCheckpoint> {
  const start = headerLength(info)
  const hash = createHash('sha256')
  let entries = 0
  async function* pieces(): AsyncGenerator<Buffer> {
    let parts: Buffer[] = []
    let size = 0
    let last: Buffer | undefined
    for await (const op of ops) {
      if (last !== undefined && Buffer.compare(last, op.key) >= 0) throw TierfsError.internal('checkpoint rows out of order')
      last = op.key
      const rec = encodeRecord(op)
      parts.push(rec)
      size += rec.length
      entries++
      if (size >= PIECE) {
        yield Buffer.concat(parts, size)
        parts = []
        size = 0
      }
    }
    if (size > 0) yield Buffer.concat(parts, size)
  }
  const fh = await open(path, 'w')
  try {
    let pos = start
    for await (const piece of zstdCompress(pieces(), LEVEL)) {
      hash.update(piece)
      await writeFully(fh, piece, pos)
      pos += piece.length
    }
    const header: CheckpointHeader = { ...info, entries, bodyLength: pos - start }
    const headerBytes = encodeHeader(header)
    hash.update(headerBytes)
    const digest = hash.digest()
    await writeFully(fh, headerBytes, 0)
    await writeFully(fh, encodeFooter(digest), pos)
    await fh.sync()
    return { header, bytes: pos + FOOTER_SIZE, sha256: digest.toString('hex') }
  } catch (err) {
    throw TierfsError.from(err, `writing checkpoint ${path}`)
  } finally {
    await fh.close()
  }
}

/** The header of a local checkpoint file (CORRUPT when damaged). */
export async function readHeaderFile(path: string): Promise<{ header: CheckpointHeader; length: number }> {
  const fh = await open(path, 'r').catch((err: unknown) => { throw TierfsError.from(err, `checkpoint ${path}`) })
  try {
    const buf = Buffer.alloc(MAX_HEADER)
    const { bytesRead } = await fh.read(buf, 0, MAX_HEADER, 0)
    return decodeHeader(buf.subarray(0, bytesRead), path)
  } finally {
    await fh.close()
  }
}

/** The header of a checkpoint on a tier, with one ranged read. */
export async function readHeaderObject(tier: Tier, key: string): Promise<CheckpointHeader> {
  return decodeHeader(await tier.get(key, { offset: 0, length: MAX_HEADER }), `${tier.id}:${key}`).header
}

/**
 * Streams the records of a local checkpoint file. Everything is checked as it is read: the
 * file size against the header, each record, the key order, and at the end the entry count and
 * the SHA-256 of the footer; any mismatch fails with CORRUPT, so a consumer must not act on the
 * records of a file before the iteration completes (or run verifyCheckpointFile first).
 * `onDigest` receives the verified footer digest (hex).
 */
export async function* checkpointOps(path: string, onDigest?: (sha256: string) => void): AsyncGenerator<CheckpointOp> {
  const { header, length } = await readHeaderFile(path)
  const size = (await stat(path)).size
  if (size !== length + header.bodyLength + FOOTER_SIZE) {
    throw TierfsError.corrupt(`${path}: checkpoint is ${size} bytes, its header says ${length + header.bodyLength + FOOTER_SIZE} (truncated or damaged)`)
  }
  const fh = await open(path, 'r')
  let headerBytes: Buffer
  let footer: string
  try {
    headerBytes = Buffer.alloc(length)
    await fh.read(headerBytes, 0, length, 0)
    const f = Buffer.alloc(FOOTER_SIZE)
    await fh.read(f, 0, FOOTER_SIZE, length + header.bodyLength)
    footer = decodeFooter(f, path)
  } finally {
    await fh.close()
  }
  const hash = createHash('sha256')
  async function* body(): AsyncGenerator<Buffer> {
    if (header.bodyLength === 0) return
    const rs = createReadStream(path, { start: length, end: length + header.bodyLength - 1, highWaterMark: READ_PIECE })
    for await (const piece of rs) {
      hash.update(piece as Buffer)
      yield piece as Buffer
    }
  }
  const parser = new RecordParser(path)
  let count = 0
  let last: Buffer | undefined
  for await (const piece of zstdDecompress(body(), path)) {
    parser.push(piece)
    for (let op = parser.next(); op !== undefined; op = parser.next()) {
      if (last !== undefined && Buffer.compare(last, op.key) >= 0) throw TierfsError.corrupt(`${path}: checkpoint records out of order`)
      if (header.kind === 'full' && op.op !== 'put') throw TierfsError.corrupt(`${path}: a delete in a full checkpoint`)
      last = op.key
      count++
      yield op
    }
  }
  if (parser.leftover !== 0) throw TierfsError.corrupt(`${path}: checkpoint body ends inside a record`)
  if (count !== header.entries) throw TierfsError.corrupt(`${path}: checkpoint holds ${count} records, its header says ${header.entries}`)
  const digest = hash.update(headerBytes).digest('hex')
  if (digest !== footer) throw TierfsError.corrupt(`${path}: checkpoint SHA-256 mismatch (damaged file)`)
  onDigest?.(digest)
}

/** Reads a whole checkpoint file and checks it (see checkpointOps); CORRUPT when anything is off. */
export async function verifyCheckpointFile(path: string): Promise<{ header: CheckpointHeader; sha256: string; bytes: number }> {
  const { header } = await readHeaderFile(path)
  let sha256 = ''
  for await (const _ of checkpointOps(path, (d) => { sha256 = d })) { /* drained for the checks */ }
  return { header, sha256, bytes: (await stat(path)).size }
}

async function writeFully(fh: Awaited<ReturnType<typeof open>>, buf: Buffer, pos: number): Promise<void> {
  let done = 0
  while (done < buf.length) {
    const { bytesWritten } = await fh.write(buf, done, buf.length - done, pos + done)
    done += bytesWritten
  }
}
