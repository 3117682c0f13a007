import { TierfsError } from '../errors.js'
import { MiB } from './tree-hash.js'

/** Glacier's part-size bounds and its limit on parts per multipart upload. */
export const MIN_PART_SIZE = MiB
export const MAX_PART_SIZE = 4096 * MiB
export const MAX_PARTS = 10_000

/** An inclusive byte range [start, end], the way Glacier writes ranges. */
export interface ByteRange {
  start: number
  end: number
}

/**
 * The smallest retrieval range Glacier accepts that covers [offset, offset + length) of an
 * archive of `size` bytes: the start rounded down to a MiB, the end rounded up to a MiB or to
 * the archive's end. Glacier refuses a RetrievalByteRange that is not aligned so.
 */
export function alignRetrievalRange(offset: number, length: number, size: number): ByteRange {
  if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length <= 0 || offset + length > size) {
    throw TierfsError.invalid(`retrieval range ${offset}+${length} of an archive of ${size} bytes`)
  }
  const start = Math.floor(offset / MiB) * MiB
  const end = Math.min(Math.ceil((offset + length) / MiB) * MiB, size) - 1
  return { start, end }
}

/** Whether Glacier accepts [start, end] as the RetrievalByteRange of an archive of `size` bytes. */
export function isRetrievalRangeAligned(r: ByteRange, size: number): boolean {
  return r.start >= 0 && r.start <= r.end && r.end < size && r.start % MiB === 0 && ((r.end + 1) % MiB === 0 || r.end + 1 === size)
}

/**
 * Whether [start, end] of an archive of `size` bytes is tree-hash aligned: its own tree hash is
 * a node of the archive's tree, i.e. it starts on a multiple of 2^k MiB and spans 2^k MiB (or up
 * to the archive's end) for some k. Glacier returns a range's tree hash only for such ranges.
 */
export function isTreeHashAligned(r: ByteRange, size: number): boolean {
  if (r.start < 0 || r.start > r.end || r.end >= size) return false
  for (let span = MiB; ; span *= 2) {
    if (r.start % span !== 0) return false
    if (r.end + 1 === Math.min(r.start + span, size)) return true
    if (r.start + span >= size) return false
  }
}

/** Checks a configured part size: a power-of-two number of MiB from 1 MiB to 4 GiB. */
export function checkPartSize(partSize: number): number {
  const ok = Number.isSafeInteger(partSize) && partSize >= MIN_PART_SIZE && partSize <= MAX_PART_SIZE && partSize % MiB === 0 && ((partSize / MiB) & (partSize / MiB - 1)) === 0
  if (!ok) throw new TierfsError('CONFIG', `glacier part size ${partSize}: must be a power-of-two number of MiB from 1 MiB to 4 GiB`)
  return partSize
}

/** The preferred part size, doubled until an archive of `size` bytes fits in Glacier's 10,000 parts. */
export function partSizeFor(size: number, preferred: number): number {
  let part = checkPartSize(preferred)
  while (part < MAX_PART_SIZE && Math.ceil(size / part) > MAX_PARTS) part *= 2
  if (Math.ceil(size / part) > MAX_PARTS) throw TierfsError.invalid(`archive of ${size} bytes: larger than Glacier allows`)
  return part
}
