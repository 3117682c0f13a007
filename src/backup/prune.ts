/*
 * Prune: retention, version GC, chunk GC and pack GC, while the filesystem is in use.
 *
 * Steps (each one also runs as a dry run that writes nothing and reports the same counts):
 *  1. retention  applyRetention per workflow (pure) -> the restore points (pins) it removes are
 *                deleted in one commit. Workflows without a rule keep every point.
 *  2. versions   meta.collect(versionAt(now - historyWindow)): versions no pin and no instant of
 *                the window can see are dropped; their chunks' refs go down (dry run: counted,
 *                with the removed pins ignored).
 *  3. plan       one stream of the pack index into a compact PackTable (each pack's recorded live
 *                bytes), one stream of the dead index (keys.ts: records with refs 0, kept by every
 *                commit): every dead record is removed in batches (see scanDead). Live chunk
 *                records are never read, so planning costs what died, not what the store holds.
 *  4. packs      one stream of the pack index: a sealed pack with no surviving record is retired
 *                and deleted from its tier (cold archives only after minColdAgeMs); a sealed
 *                write-tier pack whose live bytes are below packLiveThreshold of its size is
 *                repacked, then deleted: its live chunks are verified and copied into output
 *                packs of the prune's own (not the sealer's open pack, so a seal never waits
 *                for a repack, nor a repack for a seal), synced, and repointed in one commit.
 *
 * The fence (why a concurrent seal, backup or read never loses data):
 *  - Chunk records. A seal dedups against the index at ingest time and adds refs at commit. Prune
 *    removes a dead record only through `deleteChunk(id, { ifUnreferenced: true })`, decided at
 *    commit under the commit lock: if the seal committed first, refs > 0 and the delete is
 *    skipped (prune reads the batch back and counts the chunk as live again; the seal's
 *    `addRefs(..., { trackLive })` put its bytes back into its pack's liveBytes). If prune committed
 *    first, the seal's `addRefs` finds no record, the whole seal commit fails NOT_FOUND, and the
 *    sealer retries it: re-ingesting finds no record and stores the chunk again. A chunk a seal
 *    writes has refs >= 1 in the very commit that creates its record, so it is never dead.
 *  - Moves. Repacking repoints each chunk with `moveChunk(..., { from })`, a compare-and-set on
 *    the old location evaluated at commit (a migrator that moved it first wins), keeping refs.
 *  - Packs. A pack is deleted in three steps: `retirePack(id, { unlessReferenced: ids })` marks it
 *    'deleting' at commit only if none of the chunks it holds (its own trailer; for a cold archive,
 *    which is not recalled for this, the planning pass) still has a record pointing into it, with
 *    the other operations of that commit (moves, dead-record deletes) applied first; then the
 *    object is deleted from its tier; then the record. Only sealed packs are candidates (an open
 *    pack still gains chunks) and a sealed pack never gains records (seals append to the open
 *    pack, repacks to their own new packs). A prune stopped between the steps leaves a 'deleting'
 *    pack, which the next prune finishes.
 *  - Readers. A read that looked a chunk up before its move and reaches the old pack after its
 *    deletion re-reads the chunk's record and follows it to the new pack (ChunkReader).
 *  - Locks. Every commit is small (a batch of record deletes, one pack's moves) and tier I/O runs
 *    outside the commit lock, so writes, seals and restore points wait at most a moment. Prunes of
 *    one store run one at a time.
 *
 * Memory: bounded by the number of packs (PackTable, 29 bytes each), one batch of dead records
 * and one pack's index; the dead index is streamed, never held. A dry run cannot write refcounts
 * down, so it also holds what the planned collection changes: the refcounts of the chunks it
 * touches, the ids it frees and the live bytes it takes from each pack.
 */
import type { ChunkStore } from '../chunk/chunk-store.js'
import { Repacker } from '../chunk/repack.js'
import { TierfsError } from '../errors.js'
import { silentLogger, type Logger } from '../log.js'
import type { Meta } from '../meta/meta.js'
import type { Pin } from '../meta/types.js'
import type { Retention } from '../policy/policy-file.js'
import { timeName } from '../snapshot/time-name.js'
import type { TierSet } from '../tier/tier-set.js'
import { actOnPacks, type PackTally } from './prune-packs.js'
import { scanDead } from './prune-scan.js'
import { applyRetention } from './retention.js'

export type PruneDeps = {
  meta: Meta
  chunks: Pick<ChunkStore, 'writeTier' | 'forgetPack'>
  tiers: Pick<TierSet, 'has' | 'get' | 'kindOf'>
  /** Size at which a repack output pack is finished (the store's packSize). */
  packSize: number
  /** Forgets cached /.snapshots views once restore points are deleted. */
  invalidateViews?: () => void
  log?: Logger
}

export interface PruneOptions {
  /** Plan and report only: nothing is written or deleted. */
  dryRun: boolean
  /** Retention rule per workflow; workflows without one keep every restore point. */
  retention: ReadonlyMap<string, Retention>
  nowMs: number
  /** Every instant this recent stays readable (/.history): versions it sees are kept. */
  historyWindowMs: number
  /** A write-tier pack whose live bytes fall below this fraction of its size is repacked (0.5). */
  packLiveThreshold?: number
  /** A dead pack on a cold tier is deleted only once this old (early-deletion fees; 90 days). */
  minColdAgeMs?: number
}

export interface PrunedPoint {
  workflow: string
  name: string
  timeMs: number
}

export interface PruneReport extends PackTally {
  dryRun: boolean
  pointsRemoved: PrunedPoint[]
  /** Restore points kept, with why (every reason the rule gives, or "no retention rule"). */
  pointsKept: Array<PrunedPoint & { reasons: string[] }>
  versionsDropped: number
  /** Pack records the planning pass read. */
  packsScanned: number
  /** Chunk records removed because nothing references them (dry run: that would be). */
  chunksFreed: number
  /** Dead chunks a concurrent seal referenced again before their removal committed. */
  chunksRevived: number
  /** Milliseconds of the planning pass (pack index and dead index streams, dead records removed). */
  planningMs: number
  collectMs: number
  totalMs: number
}

export const DEFAULT_PACK_LIVE_THRESHOLD = 0.5
export const DEFAULT_MIN_COLD_AGE_MS = 90 * 86_400_000

const running = new WeakMap<object, Promise<unknown>>()

/** Runs one prune (see the block above); prunes of the same store queue behind each other. */
export function prune(deps: PruneDeps, opts: PruneOptions): Promise<PruneReport> {
  const threshold = opts.packLiveThreshold ?? DEFAULT_PACK_LIVE_THRESHOLD
  if (!(threshold >= 0 && threshold <= 1)) return Promise.reject(TierfsError.invalid(`packLiveThreshold ${threshold} (need 0..1)`))
  const before = running.get(deps.meta) ?? Promise.resolve()
  const run = before.catch(() => undefined).then(() => pruneNow(deps, opts, threshold))
  running.set(deps.meta, run.catch(() => undefined))
  return run
}

async function pruneNow(deps: PruneDeps, opts: PruneOptions, threshold: number): Promise<PruneReport> {
  const started = performance.now()
  const { meta } = deps
  const log = deps.log ?? silentLogger
  const report: PruneReport = {
    dryRun: opts.dryRun, pointsRemoved: [], pointsKept: [], versionsDropped: 0, packsScanned: 0, chunksFreed: 0,
    chunksRevived: 0, packsDeleted: 0, packsRepacked: 0, packsDeferred: 0, packsSparse: 0, chunksMoved: 0,
    bytesRepacked: 0, bytesFreed: 0, problems: [], planningMs: 0, collectMs: 0, totalMs: 0,
  }

  await applyRetentionStep(deps, opts, report)

  const collectStart = performance.now()
  const horizon = meta.versionAt(opts.nowMs - opts.historyWindowMs)
  const collected = await meta.collect(horizon, opts.dryRun ? { dryRun: true, ignorePins: report.pointsRemoved } : {})
  report.versionsDropped = collected.versionsDropped
  report.collectMs = performance.now() - collectStart

  const planStart = performance.now()
  const scan = await scanDead(meta, { dryRun: opts.dryRun, ...(opts.dryRun ? { planned: collected } : {}) })
  report.planningMs = performance.now() - planStart
  report.packsScanned = scan.table.size
  report.chunksFreed = scan.chunksFreed
  report.chunksRevived = scan.chunksRevived

  let repacker: Repacker | undefined
  try {
    await actOnPacks({
      meta, chunks: deps.chunks, tiers: deps.tiers, log,
      repacker: () => (repacker ??= new Repacker({ meta, tier: deps.tiers.get(deps.chunks.writeTier), packSize: deps.packSize })),
    }, scan.table, {
      dryRun: opts.dryRun, nowMs: opts.nowMs, packLiveThreshold: threshold, minColdAgeMs: opts.minColdAgeMs ?? DEFAULT_MIN_COLD_AGE_MS,
    }, report)
  } finally {
    await repacker?.finish()
  }
  report.totalMs = performance.now() - started
  log.info(opts.dryRun ? 'prune planned (dry run)' : 'pruned', {
    pointsRemoved: report.pointsRemoved.length, versionsDropped: report.versionsDropped, chunksFreed: report.chunksFreed,
    packsDeleted: report.packsDeleted, packsRepacked: report.packsRepacked, bytesFreed: report.bytesFreed,
    problems: report.problems.length, totalMs: Math.round(report.totalMs),
  })
  return report
}

/** Step 1: decide per workflow, delete the pins the rules remove (one commit). */
async function applyRetentionStep(deps: PruneDeps, opts: PruneOptions, report: PruneReport): Promise<void> {
  const pins: Pin[] = []
  for await (const pin of deps.meta.pins()) pins.push(pin)
  const points = pins.map((p) => ({ workflow: p.workflow, name: timeName(p.timeMs), timeMs: p.timeMs }))
  const ruled = points.filter((p) => opts.retention.has(p.workflow))
  for (const p of points) if (!opts.retention.has(p.workflow)) report.pointsKept.push({ ...p, reasons: ['no retention rule for this workflow'] })
  for (const [workflow, rule] of opts.retention) {
    for (const d of applyRetention(ruled.filter((p) => p.workflow === workflow), rule, opts.nowMs)) {
      if (d.keep) report.pointsKept.push({ ...d.point, reasons: d.reasons })
      else report.pointsRemoved.push(d.point)
    }
  }
  if (opts.dryRun || report.pointsRemoved.length === 0) return
  const txn = deps.meta.begin()
  for (const p of report.pointsRemoved) txn.deletePin(p.workflow, p.timeMs)
  await txn.commit({ sync: true })
  deps.invalidateViews?.()
}
