import { TierfsError } from '../errors.js'
import { GEAR } from './gear.js'

export interface ChunkerOptions {
  /** No chunk (but the last of a stream) is shorter. At least 64 bytes. */
  minSize: number
  /** Target mean chunk size on high-entropy input. */
  avgSize: number
  /** No chunk is longer: a cut is forced here. At most 1 GiB. */
  maxSize: number
}

export const DEFAULT_CHUNKER: ChunkerOptions = Object.freeze({
  minSize: 256 * 1024,
  avgSize: 1024 * 1024,
  maxSize: 4 * 1024 * 1024,
})

/** The gear hash shifts one bit per byte, so a 32-bit hash depends on the last 32 bytes only. */
const WINDOW = 32
const MIN_MIN = 64
const MAX_MAX = 1024 * 1024 * 1024

/**
 * FastCDC-style streaming chunker: gear rolling hash, normalized chunking (two masks), cut points
 * depend only on content.
 *
 * A cut falls after the byte where the chunk has reached `minSize` and the top bits of the gear
 * hash selected by the current mask are zero; a chunk that reaches `maxSize` is cut there. Before
 * the switch point the mask is strict (4x rarer than 1/avg), after it lenient (4x likelier), which
 * narrows the size distribution. The switch point is computed so that the expected chunk size on
 * random input equals `avgSize` (for the defaults it lies at about 0.82 x avg).
 *
 * Bytes of a chunk before `minSize - 32` cannot influence any eligible cut, so they are not hashed:
 * about a quarter of the input with the defaults.
 *
 * Ownership: `push()` takes ownership of `data`; do not modify it afterwards. A returned chunk
 * that lies within one pushed Buffer is a view of it (no copy); a chunk spanning several pushes
 * is copied once into a new Buffer. Returned chunks are never reused by the chunker.
 */
export class Chunker {
  readonly options: Readonly<ChunkerOptions>
  readonly #min: number
  readonly #switch: number
  readonly #max: number
  readonly #maskS: number
  readonly #maskL: number
  /** Pieces of the current chunk from earlier pushes. */
  #pending: Buffer[] = []
  /** Bytes of the current chunk consumed so far (pending + consumed part of the current push). */
  #len = 0
  #hash = 0
  #finished = false

  constructor(opts: ChunkerOptions = DEFAULT_CHUNKER) {
    validate(opts)
    this.options = Object.freeze({ minSize: opts.minSize, avgSize: opts.avgSize, maxSize: opts.maxSize })
    const bits = Math.round(Math.log2(opts.avgSize))
    const bitsS = Math.min(bits + 2, 31)
    const bitsL = Math.max(bits - 2, 1)
    this.#min = opts.minSize
    this.#max = opts.maxSize
    this.#maskS = (-1 << (32 - bitsS)) | 0
    this.#maskL = (-1 << (32 - bitsL)) | 0
    this.#switch = switchPoint(opts, 2 ** -bitsS, 2 ** -bitsL)
  }

  /** Feeds bytes; returns the chunks completed by this input, in order. */
  push(data: Buffer): Buffer[] {
    if (this.#finished) throw new TierfsError('CLOSED', 'chunker: push() after finish()')
    const out: Buffer[] = []
    const n = data.length
    const gear = GEAR
    const min = this.#min
    const maskS = this.#maskS
    const maskL = this.#maskL
    let start = 0 // where the current chunk's bytes begin in data
    let i = 0 // next byte of data to consume
    let h = this.#hash
    while (i < n) {
      // `base + j + 1` is the chunk length after consuming data[j].
      const base = this.#len - start
      const hashFrom = Math.max(min - WINDOW, 0) - base
      if (i < hashFrom) {
        i = Math.min(hashFrom, n)
        h = 0
        if (i === n) break
      }
      // Phase 1: hash only (not yet at minSize).
      let end = Math.min(min - 1 - base, n)
      for (; i < end; i++) h = ((h << 1) + gear[data[i]!]!) | 0
      // Phase 2: strict mask up to the switch point.
      let cut = -1
      end = Math.min(this.#switch - 1 - base, n)
      for (; i < end; i++) {
        h = ((h << 1) + gear[data[i]!]!) | 0
        if ((h & maskS) === 0) { cut = i; break }
      }
      if (cut < 0) {
        // Phase 3: lenient mask up to maxSize, which is a forced cut.
        const last = this.#max - 1 - base
        end = Math.min(last, n)
        for (; i < end; i++) {
          h = ((h << 1) + gear[data[i]!]!) | 0
          if ((h & maskL) === 0) { cut = i; break }
        }
        if (cut < 0 && i === last && i < n) cut = i
      }
      if (cut < 0) break
      out.push(this.#take(data, start, cut + 1))
      i = start = cut + 1
      h = 0
    }
    if (start < n) {
      this.#pending.push(start === 0 ? data : data.subarray(start))
      this.#len += n - start
    }
    this.#hash = h
    return out
  }

  /** End of stream: returns the final partial chunk, if any. The chunker is spent afterwards. */
  finish(): Buffer | undefined {
    if (this.#finished) return undefined
    this.#finished = true
    const pending = this.#pending
    this.#pending = []
    this.#len = 0
    if (pending.length === 0) return undefined
    return pending.length === 1 ? pending[0] : Buffer.concat(pending)
  }

  /** Completes the current chunk with data[start, end). */
  #take(data: Buffer, start: number, end: number): Buffer {
    const tail = data.subarray(start, end)
    const pending = this.#pending
    this.#len = 0
    if (pending.length === 0) return tail
    pending.push(tail)
    this.#pending = []
    let total = 0
    for (const p of pending) total += p.length
    return Buffer.concat(pending, total)
  }
}

/** Chunks a byte stream; yields each chunk as soon as it is cut. */
export async function* chunkStream(source: AsyncIterable<Buffer>, opts?: ChunkerOptions): AsyncIterable<Buffer> {
  const chunker = new Chunker(opts)
  for await (const piece of source) {
    if (piece.length > 0) yield* chunker.push(piece)
  }
  const last = chunker.finish()
  if (last !== undefined) yield last
}

function validate(o: ChunkerOptions): void {
  const ok = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v)
  if (!ok(o.minSize) || !ok(o.avgSize) || !ok(o.maxSize)
    || o.minSize < MIN_MIN || !(o.minSize < o.avgSize) || !(o.avgSize < o.maxSize) || o.maxSize > MAX_MAX) {
    throw new TierfsError('CONFIG',
      `chunker sizes must be integers with ${MIN_MIN} <= min < avg < max <= ${MAX_MAX}: ` +
      `got min=${o.minSize} avg=${o.avgSize} max=${o.maxSize}`,
      { detail: { minSize: o.minSize, avgSize: o.avgSize, maxSize: o.maxSize } })
  }
}

/**
 * Chunk length at which the strict mask (cut probability pS per byte) gives way to the lenient one
 * (pL). With cuts as a Poisson process, a switch d bytes past min gives an expected length of
 * min + (1 - u)/pS + u/pL with u = exp(-pS d); solved for the expectation = avg.
 */
function switchPoint(o: ChunkerOptions, pS: number, pL: number): number {
  const want = o.avgSize - o.minSize
  const u = (1 / pS - want) / (1 / pS - 1 / pL)
  let d: number
  if (u >= 1) d = 0
  else if (u <= 0) d = o.maxSize - o.minSize
  else d = Math.round(-Math.log(u) / pS)
  return Math.min(o.minSize + d, o.maxSize)
}
