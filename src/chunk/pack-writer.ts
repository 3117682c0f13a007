import { open, unlink, type FileHandle } from 'node:fs/promises'
import { dirname } from 'node:path'
import { isCode, TierfsError } from '../errors.js'
import type { ChunkId, PackId } from '../ids.js'
import { isCodecId, type Encoded } from './codec.js'
import {
  encodeHeader, encodeRecordHeader, encodeTrailer, HEADER_SIZE, isChunkId, MAX_RECORD_LENGTH,
  RECORD_HEADER_SIZE, type PackEntry,
} from './pack-format.js'
import { handleRandomAccess, readTrailer, scanPack } from './pack-reader.js'

type State = 'open' | 'finished' | 'closed' | 'failed'

/**
 * Appends chunk records to one pack file (format in pack-format.ts), then seals it with a
 * trailer. Single owner: one PackWriter per pack file.
 *
 * Contract:
 * - Operations run one at a time in call order (an internal queue): `sync()` covers every
 *   `append()` called before it, `finish()` and `close()` wait for them.
 * - `size` and `entries` reflect completed appends only.
 * - The caller must not modify `encoded.data` until its `append()` resolves.
 * - A failed write is rolled back (the file truncated to the last good record) and reported as
 *   the TierfsError of the cause (NO_SPACE, IO, ...); the writer stays usable. If the rollback
 *   fails too, the writer is unusable (IO) and the file is left for `recover()`.
 * - After `finish()` the pack is immutable; after `close()` it stays recoverable.
 */
export class PackWriter {
  readonly packId: PackId
  readonly path: string
  #fh: FileHandle
  #size: number
  readonly #entries: PackEntry[]
  #state: State = 'open'
  #failure: TierfsError | undefined
  #queue: Promise<unknown> = Promise.resolve()

  private constructor(path: string, packId: PackId, fh: FileHandle, size: number, entries: PackEntry[]) {
    this.path = path
    this.packId = packId
    this.#fh = fh
    this.#size = size
    this.#entries = entries
  }

  /** Creates a new pack file at path (exclusive create: EXISTS if present), writes the header. */
  static async create(path: string, packId: PackId): Promise<PackWriter> {
    const header = encodeHeader(packId)
    let fh: FileHandle
    try {
      fh = await open(path, 'wx')
    } catch (err) {
      throw TierfsError.from(err, `pack ${path}`)
    }
    try {
      await writeAllAt(fh, [header], 0)
      // The directory entry must be durable before any sync() of the records can mean anything.
      await syncDir(dirname(path))
    } catch (err) {
      await fh.close().catch(() => undefined)
      await unlink(path).catch(() => undefined)
      throw TierfsError.from(err, `pack ${path}`)
    }
    return new PackWriter(path, packId, fh, HEADER_SIZE, [])
  }

  /**
   * Reopens a pack after a crash. A pack with a valid trailer is reported as finished and left
   * untouched (no writer). Otherwise records are scanned from the header, a torn tail (partial
   * record, CRC mismatch, garbage, a damaged trailer) is truncated away and made durable, and a
   * writer positioned at the end is returned with the valid entries.
   * Throws CORRUPT when the pack header is missing or invalid (a pack that crashed before its
   * first sync holds nothing durable and may be deleted), STORE for a newer format version.
   */
  static async recover(path: string): Promise<{ writer: PackWriter | undefined; entries: PackEntry[]; finished: boolean; packId: PackId }> {
    let fh: FileHandle
    try {
      fh = await open(path, 'r+')
    } catch (err) {
      throw TierfsError.from(err, `pack ${path}`)
    }
    try {
      const src = handleRandomAccess(fh, path)
      try {
        const { packId, entries } = await readTrailer(src)
        await fh.close()
        return { writer: undefined, entries, finished: true, packId }
      } catch (err) {
        if (!isCode(err, 'CORRUPT')) throw err
      }
      const { packId, entries, validEnd } = await scanPack(src)
      if (validEnd < (await src.size())) {
        await fh.truncate(validEnd)
        await fh.datasync()
      }
      const writer = new PackWriter(path, packId, fh, validEnd, entries)
      return { writer, entries: [...entries], finished: false, packId }
    } catch (err) {
      await fh.close().catch(() => undefined)
      throw TierfsError.from(err, `pack ${path}`)
    }
  }

  /** Bytes written so far (header + records); after finish(), the final size of the pack. */
  get size(): number {
    return this.#size
  }

  get entries(): readonly PackEntry[] {
    return this.#entries
  }

  /** Appends one record; returns its entry. INVALID for a malformed id or lengths. */
  append(id: ChunkId, encoded: Encoded, rawLength: number): Promise<PackEntry> {
    const { codec, data } = encoded
    if (!isChunkId(id)) return Promise.reject(TierfsError.invalid(`chunk id ${JSON.stringify(id)}`))
    if (!isCodecId(codec) || !Number.isSafeInteger(rawLength) || rawLength < 0 || rawLength > MAX_RECORD_LENGTH
      || data.length > MAX_RECORD_LENGTH || (codec === 0 && data.length !== rawLength)) {
      return Promise.reject(TierfsError.invalid(`pack record (codec ${codec}, stored ${data.length}, raw ${rawLength})`))
    }
    return this.#enqueue(async () => {
      this.#checkOpen()
      const at = this.#size
      const header = encodeRecordHeader(id, codec, data, rawLength, encoded.crc)
      try {
        await writeAllAt(this.#fh, [header, data], at)
      } catch (err) {
        throw await this.#rollback(at, err)
      }
      const entry: PackEntry = { id, offset: at + RECORD_HEADER_SIZE, length: data.length, rawLength, codec }
      this.#entries.push(entry)
      this.#size = at + RECORD_HEADER_SIZE + data.length
      return entry
    })
  }

  /** fdatasync: after it resolves, every record appended before the call is durable. */
  sync(): Promise<void> {
    return this.#enqueue(async () => {
      this.#checkOpen()
      try {
        await this.#fh.datasync()
      } catch (err) {
        throw this.#fail(err)
      }
    })
  }

  /** Writes the trailer + footer, fsyncs, closes. The pack is immutable afterwards. */
  finish(): Promise<{ size: number; entries: PackEntry[] }> {
    return this.#enqueue(async () => {
      this.#checkOpen()
      const at = this.#size
      const trailer = encodeTrailer(this.packId, this.#entries, at)
      try {
        await writeAllAt(this.#fh, [trailer], at)
        await this.#fh.sync()
        await this.#fh.close()
      } catch (err) {
        throw this.#fail(err)
      }
      this.#state = 'finished'
      this.#size = at + trailer.length
      return { size: this.#size, entries: [...this.#entries] }
    })
  }

  /** Closes without finishing (the pack stays recoverable). Idempotent. */
  close(): Promise<void> {
    return this.#enqueue(async () => {
      if (this.#state === 'open' || this.#state === 'failed') {
        this.#state = 'closed'
        await this.#fh.close().catch(() => undefined)
      }
    })
  }

  #enqueue<T>(op: () => Promise<T>): Promise<T> {
    const run = this.#queue.then(op, op)
    this.#queue = run.catch(() => undefined)
    return run
  }

  #checkOpen(): void {
    if (this.#state === 'open') return
    if (this.#state === 'failed' && this.#failure !== undefined) throw this.#failure
    throw new TierfsError('CLOSED', `pack ${this.packId}: writer is ${this.#state}`, { detail: { path: this.path } })
  }

  /** Undoes a partial append; returns the error to report. */
  async #rollback(at: number, err: unknown): Promise<TierfsError> {
    try {
      await this.#fh.truncate(at)
    } catch {
      return this.#fail(err)
    }
    return TierfsError.from(err, `pack ${this.path}`)
  }

  #fail(err: unknown): TierfsError {
    const e = new TierfsError('IO', `pack ${this.path}: writer failed: ${(err as Error)?.message ?? String(err)}`,
      { cause: err, detail: { path: this.path } })
    this.#state = 'failed'
    this.#failure = e
    return e
  }
}

/** Positional gather-write of every byte of `buffers` at `position`. */
async function writeAllAt(fh: FileHandle, buffers: Buffer[], position: number): Promise<void> {
  let rest = buffers.filter((b) => b.length > 0)
  let pos = position
  while (rest.length > 0) {
    const { bytesWritten } = await fh.writev(rest, pos)
    pos += bytesWritten
    let skip = bytesWritten
    while (rest.length > 0 && skip >= rest[0]!.length) {
      skip -= rest[0]!.length
      rest = rest.slice(1)
    }
    if (skip > 0) rest = [rest[0]!.subarray(skip), ...rest.slice(1)]
  }
}

async function syncDir(dir: string): Promise<void> {
  const d = await open(dir, 'r')
  try {
    await d.sync()
  } finally {
    await d.close()
  }
}
