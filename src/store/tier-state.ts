import type { ChunkStore } from '../chunk/chunk-store.js'
import type { MetaReader } from '../meta/meta.js'
import type { InodeAttrs } from '../meta/types.js'
import type { TierSet } from '../tier/tier-set.js'

/** What `user.tierfs.tier` and `user.tierfs.state` say about a file. */
export interface TierState {
  /** block | object | cold */
  tier: string
  /** resident (readable now), cold (a read starts a recall), recalling, staged (recalled, readable) */
  state: string
}

/**
 * Answers the read-only xattrs from the file's inode and, for cold files, the warmth of the packs
 * that hold its chunks (one check per pack).
 */
export async function tierState(a: InodeAttrs, meta: MetaReader, tiers: TierSet, chunks: ChunkStore, asOf?: Parameters<MetaReader['getFileMap']>[1]): Promise<TierState> {
  const kind = tiers.kindOf(a.tier)
  if (a.type !== 'file') return { tier: kind, state: 'resident' }
  const map = await meta.getFileMap(a.ino, asOf)
  if (map?.kind !== 'extents') return { tier: kind, state: 'resident' }
  const seen = new Set<string>()
  let cold = 0
  let recalling = 0
  let warmed = 0
  for (const e of map.extents) {
    const c = await meta.getChunk(e.id)
    if (c === undefined || seen.has(c.pack)) continue
    seen.add(c.pack)
    const p = await meta.getPack(c.pack)
    if (p === undefined) continue
    const tier = tiers.get(p.tier)
    if (!tier.capabilities.needsWarmup) continue
    const w = await chunks.recaller.warmth(tier, p.key)
    if (w === 'warm') warmed++
    else if (w === 'warming') recalling++
    else cold++
  }
  const state = recalling > 0 ? 'recalling' : cold > 0 ? 'cold' : warmed > 0 ? 'staged' : 'resident'
  return { tier: kind, state }
}
