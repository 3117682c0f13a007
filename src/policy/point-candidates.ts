import { type ChunkId, type Ino, type PackId, type TierId } from '../ids.js'
import type { MetaReader } from '../meta/meta.js'
import type { Pin } from '../meta/types.js'
import type { TierSet } from '../tier/tier-set.js'
import { kindRank, type PolicySet } from './decide.js'
import { visitWarmerFiles } from './file-demand.js'
import { placePoint } from './point-placement.js'

/** A chunk that only restore points need warm no longer, and where it goes. */
export interface PointCandidate {
  /** The tier it is on now, and that tier's rank (block 0, object 1, cold 2). */
  from: TierId
  fromRank: number
  to: TierId
  toRank: number
  rawLength: number
  /** The policy whose restore points decided the destination (the warmest demand among them). */
  policy: string
}

export interface PointCandidates {
  chunks: Map<ChunkId, PointCandidate>
  /** Chunks left where they are because a current file or another restore point needs them warmer. */
  held: number
  /** Where the next scan should go on (undefined: from the start). */
  resume?: PointResume
  errors: Array<{ message: string }>
}

/** A place in the scan: inode `ino`, after its first `skip` chunk references that points want colder. */
export interface PointResume {
  ino: Ino
  skip: number
}

export type PointCandidateDeps = { meta: MetaReader; tiers: TierSet }

/** What a filemap version seen by restore points demands: the warmest of their placements. */
interface Demand {
  /** -1: a point whose policy names an unknown target holds its data where it is. */
  rank: number
  to?: TierId
  policy: string
}

/**
 * Finds data that only restore points reference and that sits warmer than their workflows'
 * chains want (src/policy/point-placement.ts), for the migrator to move. "Only restore points":
 * a filemap version that is no longer current (the file was rewritten or deleted since) and that
 * a pin sees (the version is valid from v until the next version v', and the pin's version P has
 * v <= P < v': the collector's own rule, so exactly what each pin keeps alive, inside the
 * point's directory or not). Current versions are the file pass's: their own policies place
 * them. A pin whose workflow no policy declares demands nothing: it neither moves data nor holds
 * it (it would otherwise pin everything it keeps, in any directory, where it is).
 *
 * Three streamed steps, so memory is the pins, the candidates (bounded by `budget` raw bytes,
 * which is the pass's maxBytesPerPass left after its file moves) and a small pack cache:
 *  1. scan the filemap space from `from` on: each chunk of a pinned old version whose points
 *     want it colder than it is becomes a candidate, until `budget` is reached (`resume` says
 *     where the next pass goes on, so candidates that stay held never starve the rest; after a
 *     scan that reached the end, the next starts from the first inode again);
 *  2. scan the whole filemap space again: a candidate that another pinned version (current
 *     ones included: a file unchanged since a newer point) also uses goes to the warmest tier
 *     among their demands (a newer point wants object, an older cold: object), or stays, when
 *     that tier is not colder than where it is;
 *  3. walk the current namespace: a candidate a current file needs warmer stays (as the file
 *     pass holds chunks, src/policy/file-demand.ts).
 * Nothing moves warmer: a chunk on a colder tier than its points want is left there.
 */
export async function findPointCandidates(
  deps: PointCandidateDeps, set: PolicySet, nowMs: number, opts: { budget: number; from?: PointResume | undefined },
): Promise<PointCandidates> {
  const { meta, tiers } = deps
  const errors: PointCandidates['errors'] = []
  const pins: Pin[] = []
  for await (const p of meta.pins()) pins.push(p)
  const demands = new PinDemands(pins, set, nowMs, tiers, (message) => errors.push({ message }))
  const chunks = new Map<ChunkId, PointCandidate>()
  const out: PointCandidates = { chunks, held: 0, errors }
  if (!demands.anyColder || opts.budget <= 0) return out

  const packTier = new Map<PackId, TierId | undefined>()
  const tierOf = async (pack: PackId): Promise<TierId | undefined> => {
    if (!packTier.has(pack)) {
      if (packTier.size >= PACK_CACHE) packTier.clear()
      packTier.set(pack, (await meta.getPack(pack))?.tier)
    }
    return packTier.get(pack)
  }
  let bytes = 0
  let ino: Ino | undefined
  let index = 0
  scan: for await (const { row, demand } of pinnedVersions(meta, demands, opts.from?.ino)) {
    if (row.ino !== ino) {
      ino = row.ino
      index = 0
    }
    if (demand.rank <= 0 || demand.to === undefined) continue
    const skip = row.ino === opts.from?.ino ? opts.from.skip : 0
    for (const id of row.chunkIds()) {
      if (index++ < skip || chunks.has(id)) continue
      const rec = await meta.getChunk(id)
      const from = rec === undefined ? undefined : await tierOf(rec.pack)
      if (rec === undefined || from === undefined) continue
      const fromRank = tiers.rank(from)
      if (fromRank >= demand.rank) continue
      chunks.set(id, { from, fromRank, to: demand.to, toRank: demand.rank, rawLength: rec.rawLength, policy: demand.policy })
      bytes += rec.rawLength
      if (bytes >= opts.budget) {
        out.resume = { ino: row.ino, skip: index }
        break scan
      }
    }
  }
  if (chunks.size === 0) return out

  const drop = (id: ChunkId): void => {
    chunks.delete(id)
    out.held++
  }
  let coldest = maxRank(chunks)
  for await (const { row, demand } of pinnedVersions(meta, demands, undefined, true)) {
    if (demand.rank >= coldest) continue
    for (const id of row.chunkIds()) {
      const c = chunks.get(id)
      if (c === undefined || demand.rank >= c.toRank) continue
      if (demand.rank <= c.fromRank || demand.to === undefined) {
        drop(id)
      } else {
        c.to = demand.to
        c.toRank = demand.rank
        c.policy = demand.policy
      }
    }
    if (chunks.size === 0) return out
  }
  coldest = maxRank(chunks)
  await visitWarmerFiles(deps, set, nowMs, {
    below: coldest,
    visit: (id, rank) => {
      const c = chunks.get(id)
      if (c !== undefined && rank < c.toRank) drop(id)
    },
    done: () => chunks.size === 0,
  })
  return out
}

/** Pack records whose tiers are remembered during a scan (cleared when full). */
const PACK_CACHE = 4096

function maxRank(chunks: Map<ChunkId, PointCandidate>): number {
  let r = -1
  for (const c of chunks.values()) r = Math.max(r, c.toRank)
  return r
}

/**
 * The placement rule's view of restore points, for the file pass: calls `visit` with each chunk
 * of every filemap version (current ones included: a file unchanged since a point is what that
 * point holds) that a restore point sees and whose workflow demands a tier warmer than rank
 * `below`; a point whose policy names an unknown target holds its data wherever it is. Stops
 * early once `done()`. One streamed scan of the filemap space, and none at all when no point
 * demands warmer than `below`.
 */
export async function visitWarmerPoints(
  deps: PointCandidateDeps, set: PolicySet, nowMs: number,
  opts: { below: number; visit: (id: ChunkId) => void; done: () => boolean },
): Promise<void> {
  const pins: Pin[] = []
  for await (const p of deps.meta.pins()) pins.push(p)
  const demands = new PinDemands(pins, set, nowMs, deps.tiers, () => undefined)
  if (!demands.anyWarmerThan(opts.below)) return
  for await (const { row, demand } of pinnedVersions(deps.meta, demands, undefined, true)) {
    if (demand.rank >= opts.below) continue
    for (const id of row.chunkIds()) opts.visit(id)
    if (opts.done()) return
  }
}

/**
 * Every stored filemap version that is not current (with `current`, current ones too) and that
 * some pin sees, with what those pins demand, in key order from inode `from` on. Within an inode
 * rows come newest first, so each row's successor (the version that ended it) is the row read
 * just before; the newest row is the current version, unless it is a tombstone (the file was
 * deleted there).
 */
async function* pinnedVersions(
  meta: Pick<MetaReader, 'fileMapRows'>, demands: PinDemands, from?: Ino, current = false,
): AsyncIterable<{ row: { ino: Ino; chunkIds(): ChunkId[] }; demand: Demand }> {
  let ino: Ino | undefined
  let newer: bigint | undefined
  for await (const row of meta.fileMapRows(from)) {
    const first = row.ino !== ino
    if (first) ino = row.ino
    const end = first ? undefined : newer
    newer = row.version
    if (row.tombstone || (end === undefined && !current)) continue
    const demand = demands.between(row.version, end)
    if (demand !== undefined) yield { row, demand }
  }
}

/** The pins in version order with their placements, resolved to tier ids and ranks. */
class PinDemands {
  private readonly pins: Array<{ version: bigint; demand: Demand }>
  /** True when some pin wants its data colder than block (else there is nothing to move). */
  readonly anyColder: boolean

  constructor(pins: readonly Pin[], set: PolicySet, nowMs: number, tiers: TierSet, onError: (message: string) => void) {
    const reported = new Set<string>()
    this.pins = pins.flatMap((pin) => {
      const place = placePoint(pin, set, nowMs)
      if (place.to === undefined || place.policy === undefined) return []
      const policy = place.policy
      try {
        const to = tiers.resolve(place.to.tier, place.to.target)
        return [{ version: pin.version, demand: { rank: kindRank(place.to.tier), to, policy } }]
      } catch (err) {
        // Reported once per workflow; its points hold their data where it is meanwhile.
        if (!reported.has(pin.workflow)) onError(`restore points of ${pin.workflow}: policy ${policy} (${place.origin ?? ''}): ${(err as Error).message}`)
        reported.add(pin.workflow)
        return [{ version: pin.version, demand: { rank: -1, policy } }]
      }
    }).sort((a, b) => (a.version < b.version ? -1 : a.version > b.version ? 1 : 0))
    this.anyColder = this.pins.some((p) => p.demand.rank > 0)
  }

  /** True when some pin demands a tier warmer than rank `below` (or holds its data where it is). */
  anyWarmerThan(below: number): boolean {
    return this.pins.some((p) => p.demand.rank < below)
  }

  /** The warmest demand of the pins P with lo <= P < hi (hi undefined: no end); undefined when none sees that range. */
  between(lo: bigint, hi: bigint | undefined): Demand | undefined {
    let a = 0
    let b = this.pins.length
    while (a < b) {
      const m = (a + b) >>> 1
      if ((this.pins[m] as { version: bigint }).version < lo) a = m + 1
      else b = m
    }
    let best: Demand | undefined
    for (let i = a; i < this.pins.length; i++) {
      const p = this.pins[i] as { version: bigint; demand: Demand }
      if (hi !== undefined && p.version >= hi) break
      if (best === undefined || p.demand.rank < best.rank) best = p.demand
    }
    return best
  }
}
