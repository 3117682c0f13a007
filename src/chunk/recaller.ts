import { TierfsError, isCode } from '../errors.js'
import type { Tier, Warmth } from '../tier/tier.js'

/**
 * Reads from tiers that need warming (Glacier, archive storage classes): a read of a cold object
 * starts a recall (or joins the one in flight), waits up to `waitMs` for it, and otherwise fails
 * with AGAIN while the recall goes on; a later read finds the object warm. `tierfs recall` uses
 * `recall` to start many at once ahead of a restore.
 *
 * Every recall is asked of the tier again (its warm-up joins a job already under way), so a job
 * that failed or expired is simply started anew by the next read. This process remembers the
 * recalls it asked for until it sees their objects warm, or cold again (the job is gone): that
 * record is what `recalling` and `inFlight` report.
 */
export class Recaller {
  private readonly inflight = new Map<string, number>()
  /** Warm-up requests on the wire, so concurrent reads of one cold pack send one. */
  private readonly requests = new Map<string, Promise<void>>()

  constructor(private readonly waitMs: number, private readonly pollMs = 250) {}

  async get(tier: Tier, key: string, range: { offset: number; length: number }): Promise<Buffer> {
    try {
      const data = await tier.get(key, range)
      this.inflight.delete(id(tier, key))
      return data
    } catch (err) {
      if (!isCode(err, 'AGAIN')) throw err
    }
    await this.recall(tier, key)
    const deadline = Date.now() + this.waitMs
    for (;;) {
      const w = await this.warmth(tier, key)
      if (w === 'warm') return tier.get(key, range)
      if (w === 'cold') await this.recall(tier, key)
      if (Date.now() >= deadline) break
      await new Promise((r) => setTimeout(r, Math.min(this.pollMs, Math.max(1, deadline - Date.now()))))
    }
    throw new TierfsError('AGAIN', `${key} on ${tier.id} is being recalled; try again later`, { detail: { tier: tier.id, key } })
  }

  /** Starts (or joins) the warm-up of `key`; resolves once it is requested. */
  async recall(tier: Tier, key: string): Promise<void> {
    const k = id(tier, key)
    let req = this.requests.get(k)
    if (req === undefined) {
      req = tier.warmup(key).finally(() => this.requests.delete(k))
      this.requests.set(k, req)
    }
    await req
    this.inflight.set(k, this.inflight.get(k) ?? Date.now())
  }

  /**
   * The tier's warmth of `key`, and what it means for this process's record: a recall seen warm
   * is over; one seen cold again has no job any more (it failed or expired) and is forgotten.
   */
  async warmth(tier: Tier, key: string): Promise<Warmth> {
    const w = await tier.warmth(key)
    if (w !== 'warming') this.inflight.delete(id(tier, key))
    return w
  }

  /** True while a recall this process asked for has not been seen warm or cold again. */
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
