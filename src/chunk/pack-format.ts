import { createHash } from 'node:crypto'
import { crc32 } from 'node:zlib'
import { TierfsError } from '../errors.js'
import { asChunkId, asPackId, type ChunkId, type PackId } from '../ids.js'
import { isCodecId, type CodecId } from './codec.js'

/*
 * Pack file format, version 1. A pack is self-describing: the chunk index can be rebuilt from
 * packs alone, from the trailer of a finished pack or by scanning the records of any pack.
 * All integers are little-endian; offsets are u64 (packs stay well below 4 GiB, but the file
 * format does not depend on it); lengths are u32. CRC-32 is the zlib/IEEE polynomial.
 *
 *   header (32 bytes, at offset 0)
 *     0  magic       8  "TFSPACK\0"
 *     8  version     u16  = 1 (a reader refuses higher versions: STORE, never truncates them)
 *    10  reserved    u16  = 0
 *    12  packId      16   the 32 hex characters as bytes
 *    28  crc32       u32  of bytes 0..28
 *
 *   record (56-byte header + stored bytes), repeated, back to back from offset 32
 *     0  magic       4    "TFSR"
 *     4  chunkId     32   SHA-256 of the raw (uncompressed) bytes
 *    36  codec       u8   see codec.ts
 *    37  reserved    3    = 0
 *    40  stored      u32  length of the stored bytes that follow the header
 *    44  raw         u32  length after decoding
 *    48  dataCrc     u32  crc32 of the stored bytes
 *    52  headerCrc   u32  crc32 of bytes 0..52 (so a torn header is never trusted for a length)
 *    56  stored bytes
 *
 *   trailer, only in a finished pack, right after the last record (at trailerOffset)
 *     entry (52 bytes) per record, in record order:
 *     0  chunkId     32
 *    32  recordOffset u64 offset of the record header (the stored bytes start 56 bytes later)
 *    40  stored      u32
 *    44  raw         u32
 *    48  codec       u8
 *    49  reserved    3    = 0
 *
 *   footer (72 bytes, the very end of a finished pack)
 *     0  trailerOffset u64
 *     8  entryCount  u32
 *    12  version     u16  = 1
 *    14  reserved    u16  = 0
 *    16  packId      16
 *    32  sha256      32   of the trailer entries followed by footer bytes 0..32
 *    64  magic       8    "TFSPEND\0"
 *
 * A pack without a valid footer is unfinished (its writer crashed, or the trailer is damaged):
 * scanning records from the header until the first record whose header or data CRC fails gives
 * every complete record. The trailer never parses as a record (no record magic + header CRC).
 */

export const FORMAT_VERSION = 1
export const HEADER_SIZE = 32
export const RECORD_HEADER_SIZE = 56
export const TRAILER_ENTRY_SIZE = 52
export const FOOTER_SIZE = 72
/** Largest stored or raw length a record can describe. */
export const MAX_RECORD_LENGTH = 0xffffffff

const PACK_MAGIC = Buffer.from('TFSPACK\0', 'latin1')
const RECORD_MAGIC = Buffer.from('TFSR', 'latin1')
const FOOTER_MAGIC = Buffer.from('TFSPEND\0', 'latin1')

/** Where a chunk's stored bytes are in a pack, and how to decode them. */
export interface PackEntry {
  id: ChunkId
  /** Offset of the stored bytes within the pack (the record header is just before). */
  offset: number
  /** Stored length. */
  length: number
  rawLength: number
  codec: CodecId
}

export interface Footer {
  trailerOffset: number
  entryCount: number
  packId: PackId
  checksum: Buffer
}

const HEX32 = /^[0-9a-f]{32}$/
const HEX64 = /^[0-9a-f]{64}$/

export function isPackId(s: string): s is PackId {
  return HEX32.test(s)
}

export function isChunkId(s: string): s is ChunkId {
  return HEX64.test(s)
}

export function encodeHeader(packId: PackId): Buffer {
  if (!isPackId(packId)) throw TierfsError.invalid(`pack id ${JSON.stringify(packId)}`)
  const b = Buffer.alloc(HEADER_SIZE)
  PACK_MAGIC.copy(b, 0)
  b.writeUInt16LE(FORMAT_VERSION, 8)
  b.write(packId, 12, 'hex')
  b.writeUInt32LE(crc32(b.subarray(0, 28)), 28)
  return b
}

/** Parses the pack header; throws CORRUPT if it is not one, STORE if its version is newer. */
export function decodeHeader(b: Buffer): PackId {
  if (b.length < HEADER_SIZE || !b.subarray(0, 8).equals(PACK_MAGIC)) {
    throw TierfsError.corrupt('pack: no pack header')
  }
  if (b.readUInt32LE(28) !== crc32(b.subarray(0, 28))) throw TierfsError.corrupt('pack: header checksum mismatch')
  checkVersion(b.readUInt16LE(8))
  return asPackId(b.toString('hex', 12, 28))
}

/** A record header; `dataCrc` is CRC-32 of `data`, computed here unless the caller knows it. */
export function encodeRecordHeader(id: ChunkId, codec: CodecId, data: Buffer, rawLength: number, dataCrc = crc32(data)): Buffer {
  const b = Buffer.alloc(RECORD_HEADER_SIZE)
  RECORD_MAGIC.copy(b, 0)
  b.write(id, 4, 'hex')
  b.writeUInt8(codec, 36)
  b.writeUInt32LE(data.length, 40)
  b.writeUInt32LE(rawLength, 44)
  b.writeUInt32LE(dataCrc, 48)
  b.writeUInt32LE(crc32(b.subarray(0, 52)), 52)
  return b
}

export interface RecordHeader {
  id: ChunkId
  codec: CodecId
  length: number
  rawLength: number
  dataCrc: number
}

/** Parses a record header; undefined when the bytes are not a valid one. */
export function decodeRecordHeader(b: Buffer): RecordHeader | undefined {
  if (b.length < RECORD_HEADER_SIZE || !b.subarray(0, 4).equals(RECORD_MAGIC)) return undefined
  if (b.readUInt32LE(52) !== crc32(b.subarray(0, 52))) return undefined
  const codec = b.readUInt8(36)
  if (!isCodecId(codec)) return undefined
  return {
    id: asChunkId(b.toString('hex', 4, 36)),
    codec,
    length: b.readUInt32LE(40),
    rawLength: b.readUInt32LE(44),
    dataCrc: b.readUInt32LE(48),
  }
}

/** Trailer entries plus footer: everything `finish()` appends at `trailerOffset`. */
export function encodeTrailer(packId: PackId, entries: readonly PackEntry[], trailerOffset: number): Buffer {
  const b = Buffer.alloc(entries.length * TRAILER_ENTRY_SIZE + FOOTER_SIZE)
  let p = 0
  for (const e of entries) {
    b.write(e.id, p, 'hex')
    b.writeBigUInt64LE(BigInt(e.offset - RECORD_HEADER_SIZE), p + 32)
    b.writeUInt32LE(e.length, p + 40)
    b.writeUInt32LE(e.rawLength, p + 44)
    b.writeUInt8(e.codec, p + 48)
    p += TRAILER_ENTRY_SIZE
  }
  b.writeBigUInt64LE(BigInt(trailerOffset), p)
  b.writeUInt32LE(entries.length, p + 8)
  b.writeUInt16LE(FORMAT_VERSION, p + 12)
  b.write(packId, p + 16, 'hex')
  createHash('sha256').update(b.subarray(0, p + 32)).digest().copy(b, p + 32)
  FOOTER_MAGIC.copy(b, p + 64)
  return b
}

/** Parses the footer; throws CORRUPT when it is missing or malformed (its checksum is checked later). */
export function decodeFooter(b: Buffer, packSize: number): Footer {
  if (b.length !== FOOTER_SIZE || !b.subarray(64).equals(FOOTER_MAGIC)) {
    throw TierfsError.corrupt('pack: no trailer (unfinished or damaged pack)')
  }
  checkVersion(b.readUInt16LE(12))
  const trailerOffset = readOffset(b, 0)
  const entryCount = b.readUInt32LE(8)
  if (trailerOffset < HEADER_SIZE || trailerOffset + entryCount * TRAILER_ENTRY_SIZE + FOOTER_SIZE !== packSize) {
    throw TierfsError.corrupt('pack: trailer bounds do not match the pack size', { trailerOffset, entryCount, packSize })
  }
  return { trailerOffset, entryCount, packId: asPackId(b.toString('hex', 16, 32)), checksum: b.subarray(32, 64) }
}

/** Verifies the trailer checksum and parses its entries; throws CORRUPT on any inconsistency. */
export function decodeTrailer(entriesBytes: Buffer, footerBytes: Buffer, footer: Footer): PackEntry[] {
  const digest = createHash('sha256').update(entriesBytes).update(footerBytes.subarray(0, 32)).digest()
  if (!digest.equals(footer.checksum)) throw TierfsError.corrupt('pack: trailer checksum mismatch', { packId: footer.packId })
  const entries: PackEntry[] = []
  let next = HEADER_SIZE
  for (let p = 0; p < entriesBytes.length; p += TRAILER_ENTRY_SIZE) {
    const recordOffset = readOffset(entriesBytes, p + 32)
    const length = entriesBytes.readUInt32LE(p + 40)
    const codec = entriesBytes.readUInt8(p + 48)
    // Records are back to back: a checksummed trailer that disagrees is a writer bug, not a tear.
    if (recordOffset !== next || !isCodecId(codec)) {
      throw TierfsError.corrupt('pack: trailer entry inconsistent', { packId: footer.packId, recordOffset })
    }
    next = recordOffset + RECORD_HEADER_SIZE + length
    entries.push({
      id: asChunkId(entriesBytes.toString('hex', p, p + 32)),
      offset: recordOffset + RECORD_HEADER_SIZE,
      length,
      rawLength: entriesBytes.readUInt32LE(p + 44),
      codec,
    })
  }
  if (next !== footer.trailerOffset) {
    throw TierfsError.corrupt('pack: trailer does not cover the records', { packId: footer.packId })
  }
  return entries
}

function readOffset(b: Buffer, at: number): number {
  const v = b.readBigUInt64LE(at)
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw TierfsError.corrupt('pack: offset out of range')
  return Number(v)
}

function checkVersion(v: number): void {
  if (v !== FORMAT_VERSION) {
    throw new TierfsError('STORE', `pack: format version ${v} is not supported (this build reads ${FORMAT_VERSION})`,
      { detail: { version: v } })
  }
}
