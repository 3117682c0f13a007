/** One stored version of a logical key, as the collector sees it. */
export interface VersionRow {
  version: bigint
  tombstone: boolean
}

/**
 * Which versions of one logical key must be kept. Pure: `rows` newest first, `pins` ascending.
 *
 * A version v is valid from v until the next newer version v' (forever when it is the newest).
 * It is visible, and kept, iff v' is undefined, or v' > horizon (it was current at an instant of
 * the history window), or a pin P has v <= P < v'. Tombstones are kept by the same rule, but only
 * while they hide something: a tombstone whose nearest older survivor is missing or itself a
 * tombstone is dropped once it is <= horizon (the view reads "absent" either way).
 * Versions above `head` (committed after the pass started) are always kept.
 */
export function neededVersions(rows: readonly VersionRow[], horizon: bigint, pins: readonly bigint[], head: bigint): boolean[] {
  const keep = new Array<boolean>(rows.length)
  let olderLive = false
  for (let i = rows.length - 1; i >= 0; i--) {
    const row = rows[i]!
    const v = row.version
    let needed: boolean
    if (v > head) {
      needed = true
    } else {
      const next = i > 0 ? rows[i - 1]!.version : undefined
      const visible = next === undefined || next > horizon || pinWithin(pins, v, next)
      needed = row.tombstone ? visible && (olderLive || v > horizon) : visible
    }
    keep[i] = needed
    if (needed) olderLive = !row.tombstone
  }
  return keep
}

/** True when some pin P has lo <= P < hi (pins ascending). */
export function pinWithin(pins: readonly bigint[], lo: bigint, hi: bigint): boolean {
  let a = 0
  let b = pins.length
  while (a < b) {
    const m = (a + b) >>> 1
    if (pins[m]! < lo) a = m + 1
    else b = m
  }
  return a < pins.length && pins[a]! < hi
}
