import type { ChunkStore } from '../chunk/chunk-store.js'
import type { PackEntry } from '../chunk/pack-format.js'
import { fileRandomAccess, readTrailer, type RandomAccess } from '../chunk/pack-reader.js'
import type { Repacker } from '../chunk/repack.js'
import { isCode, TierfsError } from '../errors.js'
import type { ChunkId } from '../ids.js'
import type { Logger } from '../log.js'
import type { Meta } from '../meta/meta.js'
import type { PackRecord } from '../meta/types.js'
import type { Tier } from '../tier/tier.js'
import type { TierSet } from '../tier/tier-set.js'
import type { PackTable } from './pack-table.js'

/** What pack actions report (a part of PruneReport). */
export interface PackTally {
  packsDeleted: number
  packsRepacked: number
  /** Dead packs on a cold tier younger than minColdAgeMs: deleted by a later prune. */
  packsDeferred: number
  /** Sparse packs off the write tier: repacking them is the migrator's (it writes packs there). */
  packsSparse: number
  chunksMoved: number
  /** Bytes written into new packs by repacking (dry run: the live bytes that would be). */
  bytesRepacked: number
  /** Pack bytes removed from tiers minus bytes written by repacking (dry run: estimated). */
  bytesFreed: number
  problems: string[]
}

export type PackActionDeps = {
  meta: Meta
  chunks: Pick<ChunkStore, 'writeTier' | 'forgetPack'>
  tiers: Pick<TierSet, 'has' | 'get' | 'kindOf'>
  /** The repacker for this run, made on first use. */
  repacker: () => Repacker
  log: Logger
}

export interface PackActionOptions {
  dryRun: boolean
  nowMs: number
  packLiveThreshold: number
  minColdAgeMs: number
}

/**
 * Streams the pack index and acts on each pack the plan covers: a sealed pack no surviving
 * record points into is retired and deleted; a sealed pack on the write tier whose live bytes
 * are below the threshold is repacked, then deleted once the repack's commit retired it;
 * a 'deleting' pack (a prune stopped halfway) is finished. One pack at a time: memory is one
 * pack's index. A failure on one pack is reported and the pass goes on (CLOSED stops it).
 */
export async function actOnPacks(deps: PackActionDeps, table: PackTable, opts: PackActionOptions, tally: PackTally): Promise<void> {
  for await (const pack of deps.meta.packs()) {
    try {
      if (pack.state === 'deleting') {
        if (!opts.dryRun) await removeRetired(deps, pack, tally, 'deleted')
        continue
      }
      const i = table.indexOf(pack.id)
      if (i < 0 || !table.sealed(i) || pack.state !== 'sealed') continue
      const live = table.liveBytes(i)
      if (table.empty(i)) {
        if (deps.tiers.kindOf(pack.tier) === 'cold' && opts.nowMs - pack.createdMs < opts.minColdAgeMs) {
          tally.packsDeferred++
        } else if (opts.dryRun) {
          tally.packsDeleted++
          tally.bytesFreed += pack.size
        } else {
          await deleteDead(deps, pack, tally)
        }
      } else if (pack.size > 0 && live / pack.size < opts.packLiveThreshold) {
        if (pack.tier !== deps.chunks.writeTier) {
          tally.packsSparse++
        } else if (opts.dryRun) {
          tally.packsRepacked++
          tally.bytesRepacked += live
          tally.bytesFreed += pack.size - live
        } else {
          await repack(deps, pack, tally)
        }
      }
    } catch (err) {
      if (isCode(err, 'CLOSED')) throw err
      tally.problems.push(`pack ${pack.id} on ${pack.tier}: ${(err as Error).message}`)
      deps.log.warn('prune left a pack as it is', { pack: pack.id, tier: pack.tier, err })
    }
  }
}

/** Retires a pack nothing points into (re-checked at commit against its own index), then removes it. */
async function deleteDead(deps: PackActionDeps, pack: PackRecord, tally: PackTally): Promise<void> {
  const tier = tierOf(deps, pack)
  // A cold archive is not recalled to be deleted: the planning pass proved no record points in.
  const ids = tier.localPath(pack.key) !== undefined || !tier.capabilities.needsWarmup ? await entryIds(tier, pack) : []
  await deps.meta.begin().retirePack(pack.id, { unlessReferenced: ids }).commit({ sync: true })
  const now = await deps.meta.getPack(pack.id)
  if (now?.state !== 'deleting') {
    tally.problems.push(`pack ${pack.id}: a chunk in it was referenced again; kept`)
    return
  }
  await removeRetired(deps, now, tally, 'deleted')
}

/** Copies the live chunks of a sparse write-tier pack into new packs, then removes it. */
async function repack(deps: PackActionDeps, pack: PackRecord, tally: PackTally): Promise<void> {
  const path = tierOf(deps, pack).localPath(pack.key)
  if (path === undefined) throw TierfsError.internal(`pack ${pack.id}: the write tier has no local files`)
  const src = fileRandomAccess(path)
  try {
    const entries = await packEntries(src)
    const outcome = await deps.repacker().repack(pack, entries, src)
    tally.packsRepacked++
    tally.chunksMoved += outcome.moved
    tally.bytesRepacked += outcome.bytesWritten
    tally.bytesFreed -= outcome.bytesWritten
    if (!outcome.retired) {
      tally.problems.push(`pack ${pack.id}: a chunk in it was referenced again after the plan; kept for the next prune`)
      return
    }
  } finally {
    await src.close()
  }
  const now = await deps.meta.getPack(pack.id)
  if (now !== undefined) await removeRetired(deps, now, tally, 'repacked')
}

/** Deletes a retired pack's object, then its record (the order a crash can resume from). */
async function removeRetired(deps: PackActionDeps, pack: PackRecord, tally: PackTally, as: 'deleted' | 'repacked'): Promise<void> {
  await tierOf(deps, pack).delete(pack.key)
  deps.chunks.forgetPack(pack.id)
  await deps.meta.begin().deletePack(pack.id).commit()
  if (as === 'deleted') tally.packsDeleted++
  tally.bytesFreed += pack.size
}

function tierOf(deps: PackActionDeps, pack: PackRecord): Tier {
  if (!deps.tiers.has(pack.tier)) throw new TierfsError('CONFIG', `tier ${pack.tier} is not configured`)
  return deps.tiers.get(pack.tier)
}

/** The ids a pack holds, from its own index; a missing object holds nothing. */
async function entryIds(tier: Tier, pack: PackRecord): Promise<ChunkId[]> {
  const local = tier.localPath(pack.key)
  const src: RandomAccess & { close?: () => Promise<void> } = local !== undefined
    ? fileRandomAccess(local)
    : { size: async () => (await tier.head(pack.key))?.size ?? 0, read: (o, l) => tier.get(pack.key, { offset: o, length: l }) }
  try {
    if ((await tier.head(pack.key)) === undefined) return []
    return (await packEntries(src)).map((e) => e.id)
  } finally {
    await src.close?.()
  }
}

/**
 * A sealed pack's entries, from its checksummed trailer. A damaged trailer fails (CORRUPT): a
 * record scan stops at the first damaged record and would miss the chunks after it, and the
 * retirement fence must list every chunk the pack holds. fsck --repair handles such packs.
 */
async function packEntries(src: RandomAccess): Promise<PackEntry[]> {
  return (await readTrailer(src)).entries
}
