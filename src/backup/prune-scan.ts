import type { ChunkId } from '../ids.js'
import type { CollectResult, Meta } from '../meta/meta.js'
import { PackTable } from './pack-table.js'

export interface ScanOptions {
  dryRun: boolean
  /** Dry run: what the planned collection would free (its chunks count as dead, its bytes as gone). */
  planned?: Pick<CollectResult, 'chunksFreed' | 'liveDrops'>
  /** Dead records removed per commit (each commit holds the commit lock for a moment). */
  batch?: number
}

export interface ScanResult {
  table: PackTable
  /** Dead records removed (dry run: that would be). */
  chunksFreed: number
  /** Dead records whose removal was skipped because a seal referenced them meanwhile. */
  chunksRevived: number
}

const DEFAULT_BATCH = 2000

/**
 * Prune's planning pass, in bounded memory and without reading a live chunk record: the pack
 * index (ascending ids) into a PackTable holding each pack's recorded liveBytes (kept exact at
 * every commit, and checked by fsck), then the dead index (keys.ts: the records with refs 0).
 * Outside a dry run every dead record is removed, in batches, with the fence
 * `deleteChunk(id, { ifUnreferenced: true })`; after each batch the removed ids are read back:
 * one still there was referenced by a seal that committed first, and counts into its pack as
 * the record it now is. So when the pass ends, a pack whose table entry is empty (no live bytes,
 * no record kept) had no record pointing into it when its last batch committed: every record
 * with refs 0 was in the dead index, every record with refs > 0 adds its length to liveBytes.
 * A sealed pack gains no record afterwards (only open packs and new output packs receive chunks,
 * and a seal that dedups against a chunk on a colder tier stores it again and moves it out).
 *
 * Cost: the pack index plus the dead records, not the chunk index: a prune of a store with
 * millions of live chunks reads only what died.
 */
export async function scanDead(meta: Meta, opts: ScanOptions): Promise<ScanResult> {
  const table = new PackTable()
  for await (const p of meta.packs()) table.add(p.id, p.state === 'sealed', p.liveBytes)
  const result: ScanResult = { table, chunksFreed: 0, chunksRevived: 0 }
  if (opts.planned !== undefined) {
    for (const [pack, bytes] of opts.planned.liveDrops) {
      const at = table.indexOf(pack)
      if (at >= 0) table.dropLive(at, bytes)
    }
    result.chunksFreed += opts.planned.chunksFreed.length
  }
  for await (const ids of meta.deadChunks({ batch: opts.batch ?? DEFAULT_BATCH })) {
    result.chunksFreed += ids.length
    if (!opts.dryRun) await removeDead(meta, ids, result)
  }
  return result
}

/** Removes one batch of dead records under the fence, then counts back the ones a seal kept. */
async function removeDead(meta: Meta, ids: ChunkId[], result: ScanResult): Promise<void> {
  const txn = meta.begin()
  for (const id of ids) txn.deleteChunk(id, { ifUnreferenced: true })
  await txn.commit()
  for (const rec of await meta.getChunks(ids)) {
    if (rec === undefined) continue
    result.chunksFreed--
    result.chunksRevived++
    const at = result.table.indexOf(rec.pack)
    // A record revived before the table was read is already in its pack's liveBytes: counted
    // twice, the pack only looks fuller (kept or repacked, never deleted with it inside).
    if (at >= 0) result.table.keep(at, rec.refs > 0 ? rec.length : 0)
  }
}
