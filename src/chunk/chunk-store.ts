import { createHash, randomBytes } from 'node:crypto'
import { TierfsError } from '../errors.js'
import { asChunkId, asPackId, type ChunkId, type PackId, type TierId } from '../ids.js'
import type { MetaReader, Txn } from '../meta/meta.js'
import type { ChunkPlace, Extent, PackRecord } from '../meta/types.js'
import type { Tier } from '../tier/tier.js'
import type { TierSet } from '../tier/tier-set.js'
import { Chunker, type ChunkerOptions } from './chunker.js'
import { encodeChunk } from './codec.js'
import { PackWriter } from './pack-writer.js'
import type { PackEntry, VerifiedRecord } from './pack-reader.js'
import { ChunkReader } from './chunk-reader.js'
import type { Recaller } from './recaller.js'
import { dataBlocks } from './zero.js'
import { Lru } from './lru.js'

export interface ChunkStoreConfig {
  chunker: ChunkerOptions
  /** Compress chunks when it pays. */
  compress: boolean
  /** A pack is finished once it reaches this many bytes. */
  packSize: number
  /** Decoded chunks kept in memory for re-reads and read-ahead, in bytes. */
  cacheBytes: number
  /** How long a read of a cold chunk waits for its recall before failing with AGAIN. */
  recallWaitMs?: number
}

/** What one ingest produced: the file's extents and what it cost. */
export interface IngestResult {
  extents: Extent[]
  size: number
  /** 512-byte blocks of data that is not all zeros. */
  blocks: number
  /** Stored bytes of chunks that were new to the store. */
  newBytes: number
  newChunks: number
}

/** The pack currently being appended to on the write tier. */
interface OpenPack {
  writer: PackWriter
  record: PackRecord
}

/**
 * Content-addressed chunk storage with dedup across all files: chunks are cut by the
 * content-defined chunker, identified by SHA-256, stored once in append-only packs on the
 * write tier (block) and indexed in metadata.
 *
 * Contract:
 * - Ingest is single-writer: callers (the sealer) run one `IngestBatch` at a time.
 * - Chunk records, refcounts and pack records go into the caller's Txn; nothing is indexed until
 *   that Txn commits, and `batch.sync()` must resolve before the commit (the referenced bytes are
 *   then durable). Bytes appended by a batch whose Txn never commits are unreferenced garbage that
 *   repacking reclaims; they are never read.
 * - `read` verifies every chunk (SHA-256 of the decoded bytes) and throws CORRUPT on mismatch.
 */
export class ChunkStore {
  private open: OpenPack | undefined
  /**
   * Pack records put into a batch whose commit is not known to have happened (a new open pack,
   * a finished one). Every later batch puts them again until one commits: a seal that fails
   * after opening a pack must not leave the pack without a record for the seals after it.
   */
  private readonly unconfirmed = new Map<PackId, PackRecord>()
  private readonly reader: ChunkReader
  private batchActive = false
  private readonly packTiers = new Lru<PackId, TierId>(100_000)

  /**
   * @param tier the write tier (block): new packs are appended there, in place
   * @param tiers every tier packs may live on, for reads
   */
  constructor(
    private readonly meta: MetaReader,
    private readonly tier: Tier,
    private readonly config: ChunkStoreConfig,
    private readonly tiers?: TierSet,
  ) {
    this.reader = new ChunkReader(meta, (tierId) => this.tierFor(tierId), config.cacheBytes, config.recallWaitMs)
  }

  get writeTier(): TierId {
    return this.tier.id
  }

  /** Reads one chunk (verified), through the cache. */
  read(id: ChunkId): Promise<Buffer> {
    return this.reader.read(id)
  }

  /** A chunk's record as stored at a known place, verified, not cached (ChunkReader.readStored). */
  readStored(at: ChunkPlace): Promise<VerifiedRecord> {
    return this.reader.readStored(at)
  }

  /** The records a pack holds, from its trailer (ChunkReader.packEntries). */
  packEntries(id: PackId): Promise<PackEntry[]> {
    return this.reader.packEntries(id)
  }

  /** Whether a pack is read over a network (ChunkReader.isRemote). */
  isRemote(pack: PackId): Promise<boolean> {
    return this.reader.isRemote(pack)
  }

  /** Read cache figures: hits, misses, bytes held. */
  readCache(): { hits: number; misses: number; bytes: number; hitRate: number } {
    const { hits, misses } = this.reader.stats
    return { hits, misses, bytes: this.reader.cachedBytes, hitRate: hits + misses === 0 ? 0 : Math.round((hits / (hits + misses)) * 1000) / 1000 }
  }

  /** Recalls of cold packs in flight (status, xattrs, `tierfs recall`). */
  get recaller(): Recaller {
    return this.reader.recaller
  }

  /** Starts reading a chunk into the cache without waiting (read-ahead). */
  prefetch(id: ChunkId): void {
    this.reader.prefetch(id)
  }

  /** Drops cached access to a pack that was deleted from its tier (prune, migration). */
  forgetPack(id: PackId): void {
    this.reader.forgetPack(id)
  }

  /** Starts an ingest batch whose index updates go into `txn`. */
  batch(txn: Txn): IngestBatch {
    if (this.batchActive) throw TierfsError.internal('chunk store: concurrent ingest batches')
    this.batchActive = true
    // Before anything of this batch that needs them (liveBytes additions find their pack).
    for (const rec of this.unconfirmed.values()) txn.putPack(rec)
    return new IngestBatch(this, txn, () => { this.batchActive = false })
  }

  /** Finishes the open pack (trailer, fsync) and records it; used at shutdown. */
  async finishOpenPack(txn: Txn): Promise<void> {
    const open = this.open
    if (open === undefined) return
    this.open = undefined
    const { size } = await open.writer.finish()
    open.record.state = 'sealed'
    open.record.size = size
    txn.putPack(open.record)
    this.unconfirmed.set(open.record.id, open.record)
  }

  /** @internal the Txn of a batch committed: the records it put are recorded. */
  confirm(): void {
    this.unconfirmed.clear()
  }

  /** Adopts the open pack found at start-up (after crash recovery). */
  adoptOpenPack(writer: PackWriter, record: PackRecord): void {
    this.open = { writer, record }
  }

  async close(): Promise<void> {
    await this.open?.writer.close()
    this.open = undefined
    await this.reader.close()
  }

  /** @internal the pack new chunks go to, rotated when full. */
  async packFor(txn: Txn): Promise<OpenPack> {
    if (this.open !== undefined && this.open.writer.size >= this.config.packSize) {
      await this.finishOpenPack(txn)
    }
    if (this.open === undefined) {
      const id = asPackId(randomBytes(16).toString('hex'))
      const key = packKey(id)
      const path = this.tier.localPath(key)
      if (path === undefined) throw TierfsError.internal(`tier ${this.tier.id} cannot hold open packs`)
      await ensureParent(path)
      const writer = await PackWriter.create(path, id)
      const record: PackRecord = {
        id, tier: this.tier.id, key, state: 'open', size: 0, liveBytes: 0, chunkCount: 0, createdMs: Date.now(),
      }
      txn.putPack(record)
      this.unconfirmed.set(id, record)
      this.open = { writer, record }
    }
    return this.open
  }

  /** @internal the tier a pack lives on (pack ids never change tier: moves write new packs). */
  async tierOfPack(id: PackId): Promise<TierId | undefined> {
    const hit = this.packTiers.get(id)
    if (hit !== undefined) return hit
    const rec = await this.meta.getPack(id)
    if (rec !== undefined) this.packTiers.set(id, rec.tier)
    return rec?.tier
  }

  /** @internal */
  get cfg(): ChunkStoreConfig {
    return this.config
  }

  /** @internal */
  get index(): MetaReader {
    return this.meta
  }

  private tierFor(id: TierId): Tier {
    if (id === this.tier.id) return this.tier
    if (this.tiers === undefined) throw new TierfsError('IO', `tier ${id} is not configured`)
    return this.tiers.get(id)
  }
}

/**
 * One sealing transaction's worth of ingest. Dedups against the index and against chunks
 * appended earlier in the same batch.
 */
export class IngestBatch {
  private readonly pending = new Map<ChunkId, true>()
  /** Chunks whose records this batch puts (their pack's liveBytes are added with them). */
  private readonly fresh = new Set<ChunkId>()
  private readonly touched = new Map<PackWriter, PackRecord>()
  private done = false

  constructor(
    private readonly store: ChunkStore,
    private readonly txn: Txn,
    private readonly release: () => void,
  ) {}

  /** Chunks and stores a stream of file bytes; returns the extents covering it. */
  async ingest(source: AsyncIterable<Buffer>): Promise<IngestResult> {
    const chunker = new Chunker(this.store.cfg.chunker)
    const result: IngestResult = { extents: [], size: 0, blocks: 0, newBytes: 0, newChunks: 0 }
    for await (const piece of source) {
      for (const chunk of chunker.push(piece)) await this.add(chunk, result)
    }
    const last = chunker.finish()
    if (last !== undefined) await this.add(last, result)
    return result
  }

  private async add(data: Buffer, result: IngestResult): Promise<void> {
    const id = asChunkId(createHash('sha256').update(data).digest('hex'))
    result.extents.push({ offset: result.size, length: data.length, id })
    result.size += data.length
    result.blocks += dataBlocks(data)
    if (!this.pending.has(id)) {
      const known = await this.store.index.getChunk(id)
      // A chunk held on a colder tier is stored again here and repointed: the file being sealed
      // demands the write tier (placement rule), and a write must never wait for a recall.
      if (known === undefined || (await this.store.tierOfPack(known.pack)) !== this.store.writeTier) {
        const open = await this.store.packFor(this.txn)
        const encoded = encodeChunk(data, { compress: this.store.cfg.compress })
        const entry = await open.writer.append(id, encoded, data.length)
        this.touched.set(open.writer, open.record)
        open.record.chunkCount += 1
        open.record.size = open.writer.size
        if (known === undefined) {
          this.txn.putChunk({ id, pack: open.record.id, offset: entry.offset, length: entry.length, rawLength: data.length, codec: entry.codec, refs: 0 })
          this.txn.addPackLive(open.record.id, entry.length)
          this.fresh.add(id)
        } else {
          this.txn.moveChunk(id, { pack: open.record.id, offset: entry.offset, length: entry.length, codec: entry.codec })
        }
        result.newBytes += entry.length
        result.newChunks += 1
      }
      this.pending.set(id, true)
    }
    // A known chunk may be dead (refs 0, not yet pruned): the dedup brings it back to its pack's
    // liveBytes. If prune removes its record before this commit, the commit fails NOT_FOUND and
    // the seal is retried, storing the chunk anew.
    this.txn.addRefs(id, 1, { trackLive: !this.fresh.has(id) })
  }

  /** Makes every appended byte durable; call before committing the Txn. Ends the batch. */
  async sync(): Promise<void> {
    try {
      for (const [writer, record] of this.touched) {
        if (record.state === 'open') await writer.sync()
        this.txn.putPack(record)
      }
    } finally {
      this.end()
    }
  }

  /** Call once the batch's Txn committed (its pack records are known to be recorded). */
  committed(): void {
    this.store.confirm()
  }

  /** Ends the batch without syncing (the Txn will not be committed). Idempotent. */
  end(): void {
    if (this.done) return
    this.done = true
    this.release()
  }
}

/** Object key of a pack on any tier: packs/<first two hex>/<id>.pack */
export function packKey(id: PackId): string {
  return `packs/${id.slice(0, 2)}/${id}.pack`
}

async function ensureParent(path: string): Promise<void> {
  const { mkdir } = await import('node:fs/promises')
  const { dirname } = await import('node:path')
  await mkdir(dirname(path), { recursive: true })
}
