import { TierfsError } from '../errors.js'
import { asTierId, type TierId } from '../ids.js'
import type { Tier } from './tier.js'

export type TierKind = 'block' | 'object' | 'cold'

export interface TierEntry {
  tier: Tier
  /** What the tier is for; `user.tierfs.tier` shows it. */
  kind: TierKind
  /** Operation counters of the backend, when it is wrapped in a MetricsTier. */
  metrics?: () => unknown
}

/**
 * The tiers of one store by id: the store's own `block`, `object` and `cold` (local directories
 * in the embedded default) plus every named target of the config. Policies name a kind and
 * optionally a target; `resolve` turns that into the id packs are recorded under.
 */
export class TierSet {
  private readonly entries = new Map<TierId, TierEntry>()

  add(id: TierId, entry: TierEntry): this {
    this.entries.set(id, entry)
    return this
  }

  get(id: TierId): Tier {
    const e = this.entries.get(id)
    if (e === undefined) throw new TierfsError('IO', `tier ${id} is not configured (known: ${[...this.entries.keys()].join(', ')})`)
    return e.tier
  }

  has(id: TierId): boolean {
    return this.entries.has(id)
  }

  kindOf(id: TierId): TierKind {
    const known = this.entries.get(id)?.kind
    if (known !== undefined) return known
    const s: string = id
    return s === 'block' || s === 'cold' ? s : 'object'
  }

  /**
   * The tier id for a policy step: the named target, else the store's own tier of that kind.
   * CONFIG if the target is not defined, or serves another kind (a cold step naming an object
   * target would get object packs and placement; the config's `kind` says which it is).
   */
  resolve(kind: TierKind, target?: string): TierId {
    const id = asTierId(target ?? kind)
    if (!this.entries.has(id)) throw new TierfsError('CONFIG', `target ${JSON.stringify(target ?? kind)} is not defined in the store config (targets)`)
    const serves = this.kindOf(id)
    if (serves !== kind) {
      const an = (k: TierKind): string => (k === 'object' ? `an ${k}` : `a ${k}`)
      throw new TierfsError('CONFIG', `target ${JSON.stringify(target)} is ${an(serves)} target, not usable for ${an(kind)} step (declare its kind in targets.${String(target)}.kind)`)
    }
    return id
  }

  /** Warmth order for placement: block (0) is warmer than object (1), than cold (2). */
  rank(id: TierId): number {
    return ['block', 'object', 'cold'].indexOf(this.kindOf(id))
  }

  /** Per-tier operation metrics of the wrapped backends. */
  metrics(): Record<string, unknown> {
    const out: Record<string, unknown> = {}
    for (const [id, e] of this.entries) if (e.metrics !== undefined) out[id] = e.metrics()
    return out
  }

  all(): Array<[TierId, TierEntry]> {
    return [...this.entries]
  }

  async ready(): Promise<void> {
    for (const e of this.entries.values()) await e.tier.ready()
  }

  async close(): Promise<void> {
    for (const e of this.entries.values()) await e.tier.close().catch(() => undefined)
  }
}
