import { crc32 } from 'node:zlib'
import { TierfsError } from '../errors.js'

/*
 * Checkpoint file format (`.tfck`), version 1: a self-describing copy of the metadata database.
 * All integers are little-endian.
 *
 *   header (84 + baseLen bytes, not compressed: readable with one small ranged GET)
 *     0  magic       8    "TFSCKPT\0"
 *     8  format      u16  = 1 (readers refuse other versions: STORE)
 *    10  kind        u8   0 = full (every row), 1 = delta (the changes from its base)
 *    11  codec       u8   1 = zstd (the body is one zstd frame)
 *    12  metaFormat  u16  the metadata format the rows are in (meta/level-meta.ts FORMAT_VERSION)
 *    14  baseLen     u16  length of the base's file name (0 for a full checkpoint)
 *    16  head        u64  newest metadata version in the rows
 *    24  timeMs      u64  wall-clock time the snapshot was taken
 *    32  entries     u64  records in the body
 *    40  bodyLength  u64  compressed bytes between header and footer
 *    48  baseSha256  32   a delta's base: the SHA-256 in the base file's footer (zeros for full)
 *    80  base        baseLen bytes, UTF-8: the base's file name, in the same directory
 *    80+baseLen crc32 u32 of every header byte before it
 *
 *   body: zstd-compressed records, in strictly ascending bytewise key order
 *     0  op          u8   1 = put, 2 = delete (deltas only)
 *     1  keyLen      u32
 *     5  valueLen    u32  (0 for a delete)
 *     9  key, then value: the raw database row (the key carries its space prefix, keys.ts)
 *
 *   footer (40 bytes)
 *     0  sha256      32   SHA-256 of the body bytes followed by the header bytes
 *    32  magic       8    "TFSCKEND"
 *
 * The digest covers the body first so a writer can hash it while streaming and fill in the
 * header (entry count, body length) afterwards. A full checkpoint is every row of one
 * consistent snapshot; a delta applied to its base (a full checkpoint) gives every row of its own
 * snapshot: puts for rows that are new or changed, deletes for rows that are gone.
 */

export const CHECKPOINT_FORMAT = 1
export const HEADER_FIXED = 84
export const FOOTER_SIZE = 40
const MAX_BASE_NAME = 1024
/** Bytes that always hold a whole header. */
export const MAX_HEADER = HEADER_FIXED + MAX_BASE_NAME
const CODEC_ZSTD = 1
/** Largest key and value a record may declare: damage must not cause a huge allocation. */
const MAX_KEY = 64 * 1024
const MAX_VALUE = 1024 * 1024 * 1024

const MAGIC = Buffer.from('TFSCKPT\0', 'latin1')
const END_MAGIC = Buffer.from('TFSCKEND', 'latin1')

export type CheckpointKind = 'full' | 'delta'

export interface CheckpointHeader {
  kind: CheckpointKind
  metaFormat: number
  head: bigint
  timeMs: number
  entries: number
  bodyLength: number
  /** A delta's base: its file name and footer digest (hex). */
  base?: { name: string; sha256: string }
}

export type CheckpointOp =
  | { op: 'put'; key: Buffer; value: Buffer }
  | { op: 'del'; key: Buffer }

export function headerLength(h: Pick<CheckpointHeader, 'base'>): number {
  return HEADER_FIXED + (h.base === undefined ? 0 : Buffer.byteLength(h.base.name, 'utf8'))
}

export function encodeHeader(h: CheckpointHeader): Buffer {
  const name = h.base === undefined ? Buffer.alloc(0) : Buffer.from(h.base.name, 'utf8')
  if (name.length > MAX_BASE_NAME) throw TierfsError.invalid(`checkpoint base name ${h.base?.name}`)
  if ((h.kind === 'delta') !== (h.base !== undefined)) throw TierfsError.internal('a delta checkpoint needs a base, a full one has none')
  const b = Buffer.alloc(HEADER_FIXED + name.length)
  MAGIC.copy(b, 0)
  b.writeUInt16LE(CHECKPOINT_FORMAT, 8)
  b.writeUInt8(h.kind === 'full' ? 0 : 1, 10)
  b.writeUInt8(CODEC_ZSTD, 11)
  b.writeUInt16LE(h.metaFormat, 12)
  b.writeUInt16LE(name.length, 14)
  b.writeBigUInt64LE(h.head, 16)
  b.writeBigUInt64LE(BigInt(h.timeMs), 24)
  b.writeBigUInt64LE(BigInt(h.entries), 32)
  b.writeBigUInt64LE(BigInt(h.bodyLength), 40)
  if (h.base !== undefined) b.write(h.base.sha256, 48, 'hex')
  name.copy(b, 80)
  b.writeUInt32LE(crc32(b.subarray(0, 80 + name.length)), 80 + name.length)
  return b
}

/**
 * Parses a header from the first bytes of a checkpoint (at least the whole header; more is
 * ignored). CORRUPT when it is not one or is damaged; STORE when it is of another format.
 */
export function decodeHeader(b: Buffer, what: string): { header: CheckpointHeader; length: number } {
  if (b.length < HEADER_FIXED || !b.subarray(0, 8).equals(MAGIC)) throw TierfsError.corrupt(`${what}: not a tierfs checkpoint`)
  const nameLen = b.readUInt16LE(14)
  const length = HEADER_FIXED + nameLen
  if (nameLen > MAX_BASE_NAME || b.length < length) throw TierfsError.corrupt(`${what}: checkpoint header is truncated`)
  if (b.readUInt32LE(80 + nameLen) !== crc32(b.subarray(0, 80 + nameLen))) throw TierfsError.corrupt(`${what}: checkpoint header checksum mismatch`)
  const format = b.readUInt16LE(8)
  if (format !== CHECKPOINT_FORMAT) {
    throw new TierfsError('STORE', `${what}: checkpoint format ${format} is not supported (this build reads ${CHECKPOINT_FORMAT})`)
  }
  const kind = b.readUInt8(10)
  if ((kind !== 0 && kind !== 1) || b.readUInt8(11) !== CODEC_ZSTD || (kind === 1) !== (nameLen > 0)) {
    throw TierfsError.corrupt(`${what}: checkpoint header is inconsistent`)
  }
  const header: CheckpointHeader = {
    kind: kind === 0 ? 'full' : 'delta',
    metaFormat: b.readUInt16LE(12),
    head: b.readBigUInt64LE(16),
    timeMs: safe(b.readBigUInt64LE(24), what),
    entries: safe(b.readBigUInt64LE(32), what),
    bodyLength: safe(b.readBigUInt64LE(40), what),
  }
  if (kind === 1) header.base = { name: b.toString('utf8', 80, 80 + nameLen), sha256: b.toString('hex', 48, 80) }
  return { header, length }
}

export function encodeFooter(sha256: Buffer): Buffer {
  return Buffer.concat([sha256, END_MAGIC])
}

/** The digest a footer holds (hex); CORRUPT when the bytes are not a footer. */
export function decodeFooter(b: Buffer, what: string): string {
  if (b.length !== FOOTER_SIZE || !b.subarray(32).equals(END_MAGIC)) throw TierfsError.corrupt(`${what}: checkpoint footer is missing (truncated file?)`)
  return b.toString('hex', 0, 32)
}

export function encodeRecord(op: CheckpointOp): Buffer {
  const value = op.op === 'put' ? op.value : Buffer.alloc(0)
  const b = Buffer.allocUnsafe(9 + op.key.length + value.length)
  b.writeUInt8(op.op === 'put' ? 1 : 2, 0)
  b.writeUInt32LE(op.key.length, 1)
  b.writeUInt32LE(value.length, 5)
  op.key.copy(b, 9)
  value.copy(b, 9 + op.key.length)
  return b
}

/**
 * Cuts records out of decompressed bytes that arrive in arbitrary pieces. Holds at most one
 * record plus one piece.
 */
export class RecordParser {
  private pieces: Buffer[] = []
  private held = 0

  constructor(private readonly what: string) {}

  push(piece: Buffer): void {
    if (piece.length === 0) return
    this.pieces.push(piece)
    this.held += piece.length
  }

  /** The next whole record, or undefined until more bytes arrive. */
  next(): CheckpointOp | undefined {
    if (this.held < 9) return undefined
    const head = this.peek(9)
    const op = head.readUInt8(0)
    const keyLen = head.readUInt32LE(1)
    const valueLen = head.readUInt32LE(5)
    if ((op !== 1 && op !== 2) || keyLen === 0 || keyLen > MAX_KEY || valueLen > MAX_VALUE || (op === 2 && valueLen !== 0)) {
      throw TierfsError.corrupt(`${this.what}: damaged checkpoint record`)
    }
    if (this.held < 9 + keyLen + valueLen) return undefined
    const rec = this.take(9 + keyLen + valueLen)
    const key = rec.subarray(9, 9 + keyLen)
    return op === 1 ? { op: 'put', key, value: rec.subarray(9 + keyLen) } : { op: 'del', key }
  }

  /** Bytes received that do not make a whole record (must be 0 at the end). */
  get leftover(): number {
    return this.held
  }

  private peek(n: number): Buffer {
    const first = this.pieces[0] as Buffer
    if (first.length >= n) return first.subarray(0, n)
    return Buffer.concat(this.pieces, Math.min(this.held, Math.max(n, 64))).subarray(0, n)
  }

  private take(n: number): Buffer {
    const first = this.pieces[0] as Buffer
    if (first.length >= n) {
      const out = first.subarray(0, n)
      if (first.length === n) this.pieces.shift()
      else this.pieces[0] = first.subarray(n)
      this.held -= n
      return out
    }
    const out = Buffer.allocUnsafe(n)
    let at = 0
    while (at < n) {
      const p = this.pieces[0] as Buffer
      const take = Math.min(p.length, n - at)
      p.copy(out, at, 0, take)
      at += take
      if (take === p.length) this.pieces.shift()
      else this.pieces[0] = p.subarray(take)
    }
    this.held -= n
    return out
  }
}

function safe(v: bigint, what: string): number {
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw TierfsError.corrupt(`${what}: checkpoint header value out of range`)
  return Number(v)
}
