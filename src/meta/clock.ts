import { asVersion, type Version } from '../ids.js'

const COUNTER_BITS = 16n
const COUNTER_MASK = 0xffffn

/** The version that includes every commit made at or before wall-clock millisecond `ms`. */
export function versionAt(ms: number): Version {
  return asVersion((BigInt(Math.floor(ms)) << COUNTER_BITS) | COUNTER_MASK)
}

/** Wall-clock milliseconds of a version (its high bits). */
export function versionMs(v: Version): number {
  return Number(v >> COUNTER_BITS)
}

/**
 * Hybrid logical clock: a version is `(ms << 16) | counter`. `next()` never returns a value at or
 * below the last one, even when the wall clock steps back, so commit order is version order.
 * The owner persists the last committed version and passes it back as `last` after a restart.
 */
export class HybridClock {
  private lastVersion: bigint
  private readonly now: () => number

  constructor(opts: { now?: () => number; last?: bigint } = {}) {
    this.now = opts.now ?? Date.now
    this.lastVersion = opts.last ?? 0n
  }

  /** The newest version handed out (or restored). */
  get last(): Version {
    return asVersion(this.lastVersion)
  }

  /** A version strictly greater than every earlier one: max(now << 16, last + 1). */
  next(): Version {
    const wall = BigInt(Math.floor(this.now())) << COUNTER_BITS
    const bumped = this.lastVersion + 1n
    this.lastVersion = wall > bumped ? wall : bumped
    return asVersion(this.lastVersion)
  }

  /** Moves the clock above a version seen elsewhere (restored state); never moves it back. */
  observe(v: bigint): void {
    if (v > this.lastVersion) this.lastVersion = v
  }

  versionAt(ms: number): Version {
    return versionAt(ms)
  }

  /** Current wall-clock milliseconds of the injected time source. */
  nowMs(): number {
    return this.now()
  }
}
