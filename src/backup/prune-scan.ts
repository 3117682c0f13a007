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
 * a PackTable, then the chunk index (MetaReader.chunkRowBatches: key order within slices read
 * concurrently), counting every surviving record into its pack, decoding no id it does not
 * need. A dead record (refs 0) is not counted; outside a dry run it is removed, in batches, with
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

  const free = opts.plannedFree === undefined ? undefined : new ChunkIdSet(opts.plannedFree)
  const words = new Uint32Array(4)
  const idWords = new Uint32Array(8)
  for await (const rows of meta.chunkRowBatches()) {
    result.chunksScanned += rows.size
    for (let i = 0; i < rows.size; i++) {
      let isDead = rows.refs(i) === 0
      if (!isDead && free !== undefined) {
        rows.idWords(i, idWords)
        isDead = free.has(idWords)
      }
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
 * A set of chunk ids for the dry run's membership test on every record, without making a
 * string per record: ids as eight 32-bit words each in an open-addressing table keyed by their
 * first word (ids are SHA-256: uniformly spread). About 40 bytes per id.
 */
export class ChunkIdSet {
  private readonly words: Uint32Array
  /** Slot -> 1 + index into `words`, 0 when empty; linear probing. */
  private readonly slots: Uint32Array
  private readonly mask: number
  private n = 0

  constructor(ids: ReadonlySet<string>) {
    let cap = 16
    while (cap < ids.size * 2) cap *= 2
    this.mask = cap - 1
    this.slots = new Uint32Array(cap)
    this.words = new Uint32Array(ids.size * 8)
    const b = Buffer.alloc(32)
    for (const id of ids) {
      b.write(id, 'hex')
      const at = this.n * 8
      for (let w = 0; w < 8; w++) this.words[at + w] = b.readUInt32BE(4 * w)
      let slot = this.words[at]! & this.mask
      while (this.slots[slot] !== 0) slot = (slot + 1) & this.mask
      this.slots[slot] = ++this.n
    }
  }

  get size(): number {
    return this.n
  }

  /** `id` as eight big-endian words (ChunkRowBatch.idWords). */
  has(id: Uint32Array): boolean {
    for (let slot = id[0]! & this.mask; ; slot = (slot + 1) & this.mask) {
      const e = this.slots[slot]!
      if (e === 0) return false
      const at = (e - 1) * 8
      let same = true
      for (let w = 0; w < 8 && same; w++) same = this.words[at + w] === id[w]
      if (same) return true
    }
  }
}
