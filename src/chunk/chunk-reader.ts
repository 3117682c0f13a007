import { TierfsError } from '../errors.js'
import type { ChunkId, PackId, TierId } from '../ids.js'
import type { MetaReader } from '../meta/meta.js'
import type { Tier } from '../tier/tier.js'
import { Lru } from './lru.js'
import { Recaller } from './recaller.js'
import { fileRandomAccess, readChunk, type RandomAccess } from './pack-reader.js'

const MAX_OPEN_PACKS = 64
/** Reads of a chunk that keeps moving under the reader (each move is a committed relocation). */
const MAX_MOVED_RETRIES = 3

/**
 * Reads verified chunks by id: index lookup, pack location, pread (local tiers) or ranged get,
 * decode and SHA-256 check. Keeps a byte-bounded cache of decoded chunks and joins concurrent
 * reads of the same chunk.
 */
export class ChunkReader {
  private readonly cache: Lru<ChunkId, Buffer>
  private readonly inflight = new Map<ChunkId, Promise<Buffer>>()
  private readonly packs = new Lru<PackId, RandomAccess & { close?: () => Promise<void> }>(MAX_OPEN_PACKS)

  readonly recaller: Recaller

  constructor(
    private readonly meta: MetaReader,
    private readonly tierOf: (id: TierId) => Tier,
    cacheBytes: number,
    recallWaitMs = 10_000,
  ) {
    this.recaller = new Recaller(recallWaitMs)
    this.cache = new Lru(cacheBytes, (b) => b.length)
    this.packs.onEvict = (_k, ra) => { void ra.close?.() }
  }

  /** Cache effectiveness since start (status, metrics). */
  readonly stats = { hits: 0, misses: 0 }

  get cachedBytes(): number {
    return this.cache.weight
  }

  async read(id: ChunkId): Promise<Buffer> {
    const hit = this.cache.get(id)
    if (hit !== undefined) {
      this.stats.hits++
      return hit
    }
    this.stats.misses++
    let p = this.inflight.get(id)
    if (p === undefined) {
      p = this.load(id).finally(() => this.inflight.delete(id))
      this.inflight.set(id, p)
    }
    return p
  }

  prefetch(id: ChunkId): void {
    if (this.cache.has(id) || this.inflight.has(id)) return
    this.read(id).catch(() => { /* the foreground read reports it */ })
  }

  async close(): Promise<void> {
    this.packs.clear()
    this.cache.clear()
  }

  /** Closes the cached access to a pack that was deleted (its descriptor would pin the space). */
  forgetPack(id: PackId): void {
    this.packs.delete(id)
  }

  private async load(id: ChunkId): Promise<Buffer> {
    for (let attempt = 1; ; attempt++) {
      const rec = await this.meta.getChunk(id)
      if (rec === undefined) throw TierfsError.corrupt(`chunk ${id} is not in the index`, { chunkId: id })
      try {
        const ra = await this.packAccess(rec.pack)
        const data = await readChunk(ra, { id, offset: rec.offset, length: rec.length, rawLength: rec.rawLength, codec: rec.codec as 0 | 1 })
        this.cache.set(id, data)
        return data
      } catch (err) {
        // A repack or migration may have moved the chunk and removed the old pack between the
        // index read and the pack read: a moved chunk is read again from where it is now.
        const now = attempt < MAX_MOVED_RETRIES ? await this.meta.getChunk(id) : undefined
        if (now === undefined || (now.pack === rec.pack && now.offset === rec.offset)) throw err
        this.packs.delete(rec.pack)
      }
    }
  }

  private async packAccess(id: PackId): Promise<RandomAccess> {
    const open = this.packs.get(id)
    if (open !== undefined) return open
    const pack = await this.meta.getPack(id)
    if (pack === undefined) throw TierfsError.corrupt(`pack ${id} is not in the index`, { packId: id })
    const tier = this.tierOf(pack.tier)
    const local = tier.localPath(pack.key)
    const ra: RandomAccess & { close?: () => Promise<void> } = local !== undefined
      ? fileRandomAccess(local)
      : {
          size: async () => (await tier.head(pack.key))?.size ?? 0,
          read: (offset, length) => (tier.capabilities.needsWarmup
            ? this.recaller.get(tier, pack.key, { offset, length })
            : tier.get(pack.key, { offset, length })),
        }
    this.packs.set(id, ra)
    return ra
  }
}
