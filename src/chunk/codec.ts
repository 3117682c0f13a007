import binding from 'zstd-napi/binding.js'
import { TierfsError } from '../errors.js'

/**
 * How a chunk's bytes are stored. Stored in pack records and the chunk index: never renumber.
 * 0 = raw bytes; 1 = one zstd frame (level 1, content size in the frame header).
 * A new id needs a new pack format version (old readers treat unknown codecs as corrupt).
 */
export type CodecId = 0 | 1

export const CODEC_NONE = 0 as const
export const CODEC_ZSTD = 1 as const

export interface Encoded {
  codec: CodecId
  data: Buffer
  /** CRC-32 of `data` when already known (a record copied as stored): spares a pass over it. */
  crc?: number
}

/** zstd level 1: about 0.8 GiB/s on log-like text on one core, near-free on incompressible data. */
const ZSTD_LEVEL = 1
/** Below this, compression cannot pay for the frame header. */
const MIN_COMPRESS = 64
/** Largest rawLength decodeChunk allocates for: bad metadata must not trigger a huge allocation. */
const MAX_RAW = 1024 * 1024 * 1024

// One context each, reused: creating a zstd context costs far more than compressing a small chunk.
// Safe because every call below is synchronous.
const cctx = new binding.CCtx()
const dctx = new binding.DCtx()

export function isCodecId(v: number): v is CodecId {
  return v === CODEC_NONE || v === CODEC_ZSTD
}

/**
 * Compresses when it pays: the stored form must be at least 1/16 smaller than the raw bytes,
 * else returns codec 0 and `raw` itself (no copy). Synchronous (zstd runs on the calling thread).
 * The returned data may be a view of a larger buffer when that wastes little memory.
 */
export function encodeChunk(raw: Buffer, opts: { compress: boolean }): Encoded {
  if (!opts.compress || raw.length < MIN_COMPRESS) return { codec: CODEC_NONE, data: raw }
  // A destination just below the break-even size makes zstd itself give up on data that does not
  // shrink enough, instead of compressing it in full and comparing afterwards.
  const capacity = raw.length - Math.ceil(raw.length / 16)
  const dst = Buffer.allocUnsafe(capacity)
  let n: number
  try {
    n = cctx.compress(dst, raw, ZSTD_LEVEL)
  } catch {
    return { codec: CODEC_NONE, data: raw }
  }
  const data = n * 2 < capacity ? Buffer.from(dst.subarray(0, n)) : dst.subarray(0, n)
  return { codec: CODEC_ZSTD, data }
}

/**
 * Restores the raw bytes of a stored chunk. Throws CORRUPT when the codec is unknown, the data
 * does not decode, or it decodes to other than `rawLength` bytes. Codec 0 returns `data` itself.
 */
export function decodeChunk(codec: CodecId, data: Buffer, rawLength: number): Buffer {
  if (!Number.isSafeInteger(rawLength) || rawLength < 0 || rawLength > MAX_RAW) {
    throw TierfsError.corrupt(`chunk: invalid raw length ${rawLength}`, { rawLength })
  }
  switch (codec) {
    case CODEC_NONE:
      if (data.length !== rawLength) {
        throw TierfsError.corrupt(`chunk: stored ${data.length} bytes, expected ${rawLength}`, { rawLength })
      }
      return data
    case CODEC_ZSTD: {
      const out = Buffer.allocUnsafe(rawLength)
      let n: number
      try {
        n = dctx.decompress(out, data)
      } catch (err) {
        throw new TierfsError('CORRUPT', `chunk: zstd data does not decode: ${(err as Error).message}`,
          { cause: err, detail: { rawLength } })
      }
      if (n !== rawLength) {
        throw TierfsError.corrupt(`chunk: decoded ${n} bytes, expected ${rawLength}`, { rawLength })
      }
      return out
    }
    default:
      throw TierfsError.corrupt(`chunk: unknown codec ${String(codec)}`, { codec })
  }
}
