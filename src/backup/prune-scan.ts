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
 * a PackTable, then the chunk index (in key order within concurrently read slices), counting every surviving record into its
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

  const free = opts.plannedFree === undefined ? undefined : new PrefixFilter(opts.plannedFree)
  const words = new Uint32Array(4)
  for await (const rows of meta.chunkRowBatches()) {
    result.chunksScanned += rows.size
    for (let i = 0; i < rows.size; i++) {
      const isDead = rows.refs(i) === 0 || (free !== undefined && free.mayHave(rows.idPrefix(i)) && free.has(rows.id(i)))
      if (!isDead) {
        rows.packWords(i, words)
        const at = table.indexOfWords(words)
        if (at >= 0) table.addChunk(at, true, rows.length(i))
        continue
      }
      result.chunksFreed++
      if (!opts.dryRun) dead.push(rows.record(i))
    }
    if (dead.length >= limit) await flush()
  }
  await flush()
  return result
}

/**
 * A set of chunk ids with a bitmap of their 32-bit prefixes in front: most ids of the index
 * are answered from the bitmap without decoding them to hex (1 MiB, ~3% false positives at
 * 250,000 ids).
 */
class PrefixFilter {
  private readonly bits = new Uint8Array(1 << 20)

  constructor(private readonly ids: ReadonlySet<string>) {
    for (const id of ids) this.set(Number.parseInt(id.slice(0, 8), 16))
  }

  mayHave(prefix: number): boolean {
    const h = prefix >>> 9
    return (this.bits[h >>> 3]! & (1 << (h & 7))) !== 0
  }

  has(id: string): boolean {
    return this.ids.has(id)
  }

  private set(prefix: number): void {
    const h = prefix >>> 9
    this.bits[h >>> 3] = this.bits[h >>> 3]! | (1 << (h & 7))
  }
}
