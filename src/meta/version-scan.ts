import { isTombstone } from './record-codec.js'
import { keyVersion, lastVersionKey, logicalKey, prefixEnd, withVersion } from './keys.js'
import type { IteratorOptions, Space } from './space.js'

/**
 * Rows of a logical key that a scan reads before it seeks instead: cheap to step over a few old
 * versions in the buffer already read, cheaper to seek past many.
 */
const SEEK_AFTER = 4
const MAX_BATCH = 1024
const HIGH_WATER_BYTES = 64 * 1024

/**
 * Reads one versioned key as of `asOf` (undefined: newest): the first row at or after
 * `<logical><~asOf>` that still belongs to the logical key. Undefined when absent or tombstoned.
 */
export async function readVersion(space: Space, logical: Buffer, asOf: bigint | undefined): Promise<Buffer | undefined> {
  const opts: IteratorOptions = {
    gte: asOf === undefined ? logical : withVersion(logical, asOf),
    lte: lastVersionKey(logical),
    limit: 1,
    fillCache: true,
  }
  const it = space.iterator(opts)
  try {
    const row = await it.next()
    if (row === undefined) return undefined
    const value = row[1]
    return isTombstone(value) ? undefined : value
  } finally {
    await it.close()
  }
}

/**
 * Streams, in key order, every logical key of `[gte, lt)` that is visible as of `asOf`
 * (undefined: newest), with its value. Per logical key the first row with version <= asOf
 * decides; tombstones hide the key. Versions newer than the view and older than the deciding one
 * are skipped, by seeking when there are more than a few. Memory: one iterator batch.
 */
export async function* scanVisible(
  space: Space,
  range: { gte?: Buffer | undefined; lt?: Buffer | undefined },
  asOf: bigint | undefined,
): AsyncGenerator<[logical: Buffer, value: Buffer]> {
  const opts: IteratorOptions = { highWaterMarkBytes: HIGH_WATER_BYTES, fillCache: true }
  if (range.gte !== undefined) opts.gte = range.gte
  if (range.lt !== undefined) opts.lt = range.lt
  const it = space.iterator(opts)
  try {
    let size = 16
    let cur: Buffer | undefined
    let decided = false
    let skipped = 0
    for (;;) {
      const rows = await it.nextv(size)
      if (rows.length === 0) return
      if (size < MAX_BATCH) size *= 2
      for (const [key, value] of rows) {
        const logical = logicalKey(key)
        if (cur === undefined || !logical.equals(cur)) {
          cur = logical
          decided = false
          skipped = 0
        } else if (decided) {
          if (++skipped >= SEEK_AFTER) {
            const past = prefixEnd(cur)
            if (past === undefined) return
            it.seek(past)
            break
          }
          continue
        }
        if (asOf !== undefined && keyVersion(key) > asOf) {
          if (++skipped >= SEEK_AFTER) {
            it.seek(withVersion(cur, asOf))
            skipped = 0
            break
          }
          continue
        }
        decided = true
        skipped = 0
        if (!isTombstone(value)) yield [logical, value]
      }
    }
  } finally {
    await it.close()
  }
}
