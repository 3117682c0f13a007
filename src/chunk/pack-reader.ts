import { createHash } from 'node:crypto'
import { open, type FileHandle } from 'node:fs/promises'
import { crc32 } from 'node:zlib'
import { TierfsError } from '../errors.js'
import type { PackId } from '../ids.js'
import type { ChunkRecord } from '../meta/types.js'
import { CODEC_NONE, decodeChunk, type CodecId, type Encoded } from './codec.js'
import {
  decodeFooter, decodeHeader, decodeRecordHeader, decodeTrailer, FOOTER_SIZE, HEADER_SIZE, MAX_RECORD_LENGTH,
  RECORD_HEADER_SIZE, TRAILER_ENTRY_SIZE, type PackEntry,
} from './pack-format.js'
import { preadFully } from '../tier/file-part.js'

export type { PackEntry } from './pack-format.js'

/**
 * Random access to a pack's bytes: a local file (pread) today, a ranged GET on an object store
 * later.
 *
 * Contract: `read` returns exactly `length` bytes, or fewer only when the source ends before
 * `offset + length` (an empty Buffer at or past the end). Reads may run concurrently.
 */
export interface RandomAccess {
  size(): Promise<number>
  read(offset: number, length: number): Promise<Buffer>
}

/** A RandomAccess over a local file that can be closed. */
export interface FileRandomAccess extends RandomAccess {
  /** Closes the file descriptor; a later read reopens it. Idempotent. */
  close(): Promise<void>
}

/**
 * Opens `path` lazily on first use and keeps the descriptor until `close()`. `close()` waits for
 * reads in flight on the descriptor it closes; a read after `close()` opens the file again.
 */
export function fileRandomAccess(path: string): FileRandomAccess {
  let handle: Promise<FileHandle> | undefined
  let inflight = new Set<Promise<unknown>>()
  const use = async <T>(op: (fh: FileHandle) => Promise<T>): Promise<T> => {
    if (handle === undefined) {
      const opening = open(path, 'r')
      handle = opening
      opening.catch(() => { if (handle === opening) handle = undefined })
    }
    const reads = inflight
    const p = handle.then(op)
    reads.add(p)
    try {
      return await p
    } catch (err) {
      throw TierfsError.from(err, `pack ${path}`)
    } finally {
      reads.delete(p)
    }
  }
  return {
    size: () => use(async (fh) => (await fh.stat()).size),
    read: (offset, length) => use((fh) => preadFully(fh, offset, length)),
    async close() {
      const h = handle
      const reads = inflight
      handle = undefined
      inflight = new Set()
      if (h === undefined) return
      await Promise.allSettled(reads)
      await (await h.catch(() => undefined))?.close()
    },
  }
}

/** A RandomAccess over an already open file; the caller owns (and closes) the handle. */
export function handleRandomAccess(fh: FileHandle, path: string): RandomAccess {
  return {
    async size() {
      try {
        return (await fh.stat()).size
      } catch (err) {
        throw TierfsError.from(err, `pack ${path}`)
      }
    },
    async read(offset, length) {
      try {
        return await preadFully(fh, offset, length)
      } catch (err) {
        throw TierfsError.from(err, `pack ${path}`)
      }
    },
  }
}

/** Where a chunk's index record says its stored bytes are: what `readChunk` checks them against. */
export function packEntryOf(rec: Pick<ChunkRecord, 'id' | 'offset' | 'length' | 'rawLength' | 'codec'>): PackEntry {
  return { id: rec.id, offset: rec.offset, length: rec.length, rawLength: rec.rawLength, codec: rec.codec as CodecId }
}

/** A RandomAccess over `bytes`, which hold the source's bytes from offset `base` on. */
export function spanRandomAccess(bytes: Buffer, base: number): RandomAccess {
  return {
    size: async () => base + bytes.length,
    read: async (offset, length) => bytes.subarray(Math.max(0, offset - base), Math.max(0, offset - base + length)),
  }
}

/** A chunk's record as its pack stores it, verified: what `readRecord` returns. */
export interface VerifiedRecord {
  codec: CodecId
  /** The stored (possibly compressed) bytes. */
  stored: Buffer
  /** CRC-32 of `stored`, as the record header gives it. */
  dataCrc: number
  /** The raw bytes `stored` decodes to, whose SHA-256 is the chunk id. */
  raw: Buffer
}

/**
 * Reads and verifies one chunk: record header (id, lengths, codec), decoding, and SHA-256 of the
 * raw bytes against `entry.id`. Throws CORRUPT with detail `{ chunkId, offset }` on any mismatch.
 * One read of header + stored bytes. The record's data CRC is not checked here: the content hash
 * covers every stored byte (a damaged compressed record fails to decode or to hash); the CRC
 * serves recovery scans, which have no id to check against.
 */
export async function readChunk(src: RandomAccess, entry: PackEntry): Promise<Buffer> {
  return (await readRecord(src, entry)).raw
}

/**
 * `readChunk` that also gives the stored form: a copy to another pack can take the record as it
 * is (no new encoding, no new CRC pass) once its content hash has been checked.
 */
export async function readRecord(src: RandomAccess, entry: PackEntry): Promise<VerifiedRecord> {
  const detail = { chunkId: entry.id, offset: entry.offset }
  const fail = (why: string, cause?: unknown): never => {
    throw new TierfsError('CORRUPT', `chunk ${entry.id} at ${entry.offset}: ${why}`,
      cause === undefined ? { detail } : { cause, detail })
  }
  if (!Number.isSafeInteger(entry.offset) || entry.offset < HEADER_SIZE + RECORD_HEADER_SIZE) fail('offset is not inside the records')
  if (!Number.isSafeInteger(entry.length) || entry.length < 0 || entry.length > MAX_RECORD_LENGTH) fail('invalid stored length')
  const bytes = await src.read(entry.offset - RECORD_HEADER_SIZE, RECORD_HEADER_SIZE + entry.length)
  if (bytes.length !== RECORD_HEADER_SIZE + entry.length) fail('pack is too short')
  const header = decodeRecordHeader(bytes.subarray(0, RECORD_HEADER_SIZE))
  if (header === undefined) return fail('record header is damaged')
  if (header.id !== entry.id || header.length !== entry.length || header.rawLength !== entry.rawLength
    || header.codec !== entry.codec) {
    fail('record header does not match the index entry')
  }
  const stored = bytes.subarray(RECORD_HEADER_SIZE)
  let raw: Buffer
  try {
    raw = decodeChunk(entry.codec, stored, entry.rawLength)
  } catch (err) {
    return fail('stored bytes do not decode', err)
  }
  if (createHash('sha256').update(raw).digest('hex') !== entry.id) fail('content hash mismatch')
  return { codec: entry.codec, stored, dataCrc: header.dataCrc, raw }
}

/**
 * A verified record as a copy appends it: stored bytes as they are, and their CRC carried over
 * when the content hash has vouched for every stored byte (raw records; a compressed record's
 * CRC is computed again, over its smaller stored form).
 */
export function recordCopy(rec: VerifiedRecord): Encoded {
  return { codec: rec.codec, data: rec.stored, crc: rec.codec === CODEC_NONE ? rec.dataCrc : undefined }
}

/**
 * Reads the trailer of a finished pack, verifying its checksum; throws CORRUPT if it is missing
 * or invalid (STORE if the pack is of a newer format). Two reads at most: the tail of the pack
 * (which holds the whole trailer of a typical pack), then the rest of the trailer if needed.
 */
export async function readTrailer(src: RandomAccess): Promise<{ packId: PackId; entries: PackEntry[] }> {
  const size = await src.size()
  if (size < HEADER_SIZE + FOOTER_SIZE) throw TierfsError.corrupt('pack: too short to hold a trailer', { size })
  const tailLength = Math.min(size, TAIL_READ)
  let tail = await src.read(size - tailLength, tailLength)
  if (tail.length !== tailLength) throw TierfsError.corrupt('pack: shorter than its size', { size })
  const footerBytes = tail.subarray(tail.length - FOOTER_SIZE)
  const footer = decodeFooter(footerBytes, size)
  const trailerLength = footer.entryCount * TRAILER_ENTRY_SIZE
  if (trailerLength + FOOTER_SIZE > tail.length) {
    const rest = await src.read(footer.trailerOffset, trailerLength + FOOTER_SIZE - tail.length)
    tail = Buffer.concat([rest, tail])
  }
  const entriesBytes = tail.subarray(tail.length - FOOTER_SIZE - trailerLength, tail.length - FOOTER_SIZE)
  if (entriesBytes.length !== trailerLength) throw TierfsError.corrupt('pack: trailer is truncated')
  return { packId: footer.packId, entries: decodeTrailer(entriesBytes, footerBytes, footer) }
}

/** Bytes read from the end of a pack to find its trailer: ~1200 entries, one ranged GET. */
const TAIL_READ = 64 * 1024
/** Scan read size: bounds memory and, on an object store, the number of ranged GETs. */
const SCAN_PIECE = 1024 * 1024

/**
 * Scans records from the start (for unfinished or trailer-damaged packs); stops at the first
 * invalid record (bad header, short data, CRC mismatch); returns the entries before it and the
 * offset where valid data ends. Throws CORRUPT when the pack header itself is invalid.
 * Reads in pieces of at most ~1 MiB: memory stays bounded whatever the pack size.
 */
export async function scanPack(src: RandomAccess): Promise<{ packId: PackId; entries: PackEntry[]; validEnd: number }> {
  const window = new ReadWindow(src, SCAN_PIECE)
  const packId = decodeHeader(await window.bytes(0, HEADER_SIZE))
  const entries: PackEntry[] = []
  let pos = HEADER_SIZE
  for (;;) {
    const header = decodeRecordHeader(await window.bytes(pos, RECORD_HEADER_SIZE))
    if (header === undefined) break
    const dataStart = pos + RECORD_HEADER_SIZE
    let crc = 0
    let off = 0
    while (off < header.length) {
      const want = Math.min(SCAN_PIECE, header.length - off)
      const piece = await window.bytes(dataStart + off, want)
      if (piece.length !== want) break
      crc = crc32(piece, crc)
      off += want
    }
    if (off !== header.length || crc !== header.dataCrc) break
    entries.push({ id: header.id, offset: dataStart, length: header.length, rawLength: header.rawLength, codec: header.codec })
    pos = dataStart + header.length
  }
  return { packId, entries, validEnd: pos }
}

/** Serves small sequential reads from one buffered piece of the source. */
class ReadWindow {
  #start = 0
  #buf: Buffer = Buffer.alloc(0)
  /** The last read came back short: the source ends at the end of the window. */
  #atEnd = false

  constructor(private readonly src: RandomAccess, private readonly piece: number) {}

  /** `length` bytes at `offset`; fewer only at the end of the source. */
  async bytes(offset: number, length: number): Promise<Buffer> {
    const end = this.#start + this.#buf.length
    const inside = offset >= this.#start && (offset + length <= end || (this.#atEnd && offset <= end))
    if (!inside) {
      const want = Math.max(length, this.piece)
      this.#start = offset
      this.#buf = await this.src.read(offset, want)
      this.#atEnd = this.#buf.length < want
    }
    const at = offset - this.#start
    return this.#buf.subarray(at, at + length)
  }
}
