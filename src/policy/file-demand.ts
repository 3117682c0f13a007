import type { ChunkId, Ino } from '../ids.js'
import type { MetaReader } from '../meta/meta.js'
import type { TierSet } from '../tier/tier-set.js'
import { kindRank, type PolicySet } from './decide.js'
import { walkFiles } from './namespace-walk.js'
import { fileFacts } from './planner.js'

export type FileDemandDeps = { meta: MetaReader; tiers: TierSet }

/**
 * The placement rule's view of the current namespace: for every current file outside `skip`
 * whose data must stay warmer than rank `below` (kindRank: block 0, object 1, cold 2), calls
 * `visit` with each chunk of the file and the rank the file demands: the tier its policy wants
 * at `nowMs`, or the tier it is recorded on when no policy matches. Stops early once `done()`.
 * Streams the namespace (walkFiles); a file's filemap is read only when it demands warmer.
 */
export async function visitWarmerFiles(
  deps: FileDemandDeps, set: PolicySet, nowMs: number,
  opts: { below: number; skip?: ReadonlySet<Ino>; visit: (id: ChunkId, rank: number) => void; done: () => boolean },
): Promise<void> {
  const { meta, tiers } = deps
  for await (const { path, attrs } of walkFiles(meta)) {
    if (opts.skip?.has(attrs.ino) === true) continue
    const d = set.decide(fileFacts(path, attrs, tiers), nowMs)
    const rank = d.to !== undefined ? kindRank(d.to.tier) : tiers.rank(attrs.tier)
    if (rank >= opts.below) continue
    const map = await meta.getFileMap(attrs.ino)
    if (map?.kind !== 'extents') continue
    for (const e of map.extents) opts.visit(e.id, rank)
    if (opts.done()) return
  }
}
