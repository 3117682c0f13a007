import { TierfsError, isCode } from '../errors.js'
import type { Tier } from '../tier/tier.js'

/**
 * Reads from tiers that need warming (Glacier, archive storage classes): a read of a cold object
 * starts a recall (or joins the one in flight), waits up to `waitMs` for it, and otherwise fails
 * with AGAIN while the recall goes on; a later read finds the object warm. `tierfs recall` uses
 * `recall` to start many at once ahead of a restore.
 */
export class Recaller {
  private readonly inflight = new Map<string, number>()

  constructor(private readonly waitMs: number, private readonly pollMs = 250) {}

  async get(tier: Tier, key: string, range: { offset: number; length: number }): Promise<Buffer> {
    try {
      return await tier.get(key, range)
    } catch (err) {
      if (!isCode(err, 'AGAIN')) throw err
    }
    await this.recall(tier, key)
    const deadline = Date.now() + this.waitMs
    for (;;) {
      if ((await tier.warmth(key)) === 'warm') {
        this.inflight.delete(id(tier, key))
        return tier.get(key, range)
      }
      if (Date.now() >= deadline) break
      await new Promise((r) => setTimeout(r, Math.min(this.pollMs, Math.max(1, deadline - Date.now()))))
    }
    throw new TierfsError('AGAIN', `${key} on ${tier.id} is being recalled; try again later`, { detail: { tier: tier.id, key } })
  }

  /** Starts (or joins) the warm-up of `key`; resolves once it is requested. */
  async recall(tier: Tier, key: string): Promise<void> {
    if (this.inflight.has(id(tier, key))) return
    this.inflight.set(id(tier, key), Date.now())
    try {
      await tier.warmup(key)
    } catch (err) {
      this.inflight.delete(id(tier, key))
      throw err
    }
  }

  /** True while a recall this process started for `key` has not been seen warm. */
  recalling(tier: Tier, key: string): boolean {
    return this.inflight.has(id(tier, key))
  }

  get inFlight(): number {
    return this.inflight.size
  }
}

function id(tier: Tier, key: string): string {
  return `${tier.id}\0${key}`
}
