import type { ChunkId } from '../ids.js'
import type { Meta } from '../meta/meta.js'
import type { ChunkRecord } from '../meta/types.js'
import { PackTable } from './pack-table.js'

export interface ScanOptions {
  dryRun: boolean
  /** Dry run: chunks the planned collection would free (they count as dead). */
  plannedFree?: ReadonlySet<string>
  /** Dead records removed per commit (each commit holds the commit lock for a moment). */
  batch?: number
}

export interface ScanResult {
  table: PackTable
  chunksScanned: number
  /** Dead chunk records removed (dry run: that would be). */
  chunksFreed: number
  /** Dead records whose removal was skipped because a seal referenced them meanwhile. */
  chunksRevived: number
}

const DEFAULT_BATCH = 2000
const READBACK_PARALLEL = 64

/**
 * Prune's planning pass, in two streams and bounded memory: the pack index (ascending ids) into
 * a PackTable, then the chunk index in key order, counting every surviving record into its
 * pack. A dead record (refs 0) is not counted; outside a dry run it is removed, in batches, with
 * the fence `deleteChunk(id, { ifUnreferenced: true })`. After each batch the removed ids are
 * read back: one still there was referenced by a seal that committed first, and counts as the
 * live record it now is. So when the pass ends, a pack with no counted record had none when
 * its last batch committed, and a sealed pack gains none afterwards (only open packs and new
 * output packs receive chunks).
 */
export async function scanChunks(meta: Meta, opts: ScanOptions): Promise<ScanResult> {
  const table = new PackTable()
  for await (const p of meta.packs()) table.add(p.id, p.state === 'sealed')
  const result: ScanResult = { table, chunksScanned: 0, chunksFreed: 0, chunksRevived: 0 }
  const limit = opts.batch ?? DEFAULT_BATCH
  let dead: ChunkRecord[] = []

  const flush = async (): Promise<void> => {
    if (dead.length === 0) return
    const batch = dead
    dead = []
    const txn = meta.begin()
    for (const c of batch) txn.deleteChunk(c.id, { ifUnreferenced: true })
    await txn.commit()
    for (let i = 0; i < batch.length; i += READBACK_PARALLEL) {
      const slice = batch.slice(i, i + READBACK_PARALLEL)
      const now = await Promise.all(slice.map((c) => meta.getChunk(c.id as ChunkId)))
      for (const rec of now) {
        if (rec === undefined) continue
        result.chunksFreed--
        result.chunksRevived++
        const at = table.indexOf(rec.pack)
        if (at >= 0) table.addChunk(at, rec.refs > 0, rec.length)
      }
    }
  }

  for await (const c of meta.chunks()) {
    result.chunksScanned++
    const isDead = c.refs === 0 || opts.plannedFree?.has(c.id) === true
    if (!isDead) {
      const at = table.indexOf(c.pack)
      if (at >= 0) table.addChunk(at, true, c.length)
      continue
    }
    result.chunksFreed++
    if (opts.dryRun) continue
    dead.push(c)
    if (dead.length >= limit) await flush()
  }
  await flush()
  return result
}
