import { TierfsError } from '../errors.js'
import type { ChunkId, PackId, TierId } from '../ids.js'
import type { MetaReader } from '../meta/meta.js'
import type { Tier } from '../tier/tier.js'
import { Lru } from './lru.js'
import { Recaller } from './recaller.js'
import { RECORD_HEADER_SIZE } from './pack-format.js'
import { fileRandomAccess, packEntryOf, readChunk, readRecord, readTrailer, spanRandomAccess, type PackEntry, type RandomAccess, type VerifiedRecord } from './pack-reader.js'
import type { ChunkPlace, ChunkRecord } from '../meta/types.js'

const MAX_OPEN_PACKS = 64
/** Largest span one coalesced ranged get of neighbouring chunks may cover. */
const MAX_SPAN_BYTES = 16 * 1024 * 1024
/** Reads of a chunk that keeps moving under the reader (each move is a committed relocation). */
const MAX_MOVED_RETRIES = 3

/**
 * Reads verified chunks by id: index lookup, pack location, pread (local tiers) or ranged get,
 * decode and SHA-256 check. Keeps a byte-bounded cache of decoded chunks and joins concurrent
 * reads of the same chunk.
 *
 * Prefetches asked for in the same turn of the event loop are looked at together: chunks that
 * lie back to back in one pack on a remote tier (a file's chunks after a migration) are fetched
 * with one ranged get, so a sequential read of an object-tier file pays one round trip per few
 * MiB rather than one per chunk.
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
    if (this.cache.has(id) || this.inflight.has(id) || this.queued.includes(id)) return
    this.queued.push(id)
    if (this.queued.length === 1) queueMicrotask(() => this.startPrefetches())
  }

  private queued: ChunkId[] = []

  /** Starts the queued prefetches: each one is in flight at once (a read of it joins), runs coalesced. */
  private startPrefetches(): void {
    const ids = this.queued.filter((id) => !this.cache.has(id) && !this.inflight.has(id))
    this.queued = []
    if (ids.length === 0) return
    const loaded = this.loadRuns(ids)
    for (const id of ids) {
      const p = loaded.then(({ runs, recs }) => runs.get(id) ?? this.load(id, recs.get(id))).finally(() => this.inflight.delete(id))
      p.catch(() => { /* the foreground read reports it */ })
      this.inflight.set(id, p)
    }
  }

  /**
   * Loads the runs of `ids` that are neighbours in one remote pack with one get each, verifying
   * every chunk; returns those it loaded (the others, and any of a run whose get failed, are left
   * to `load`, which also follows chunks that moved) and the index records it read (so `load`
   * need not read them again).
   */
  private async loadRuns(ids: ChunkId[]): Promise<{ runs: Map<ChunkId, Promise<Buffer>>; recs: Map<ChunkId, ChunkRecord | undefined> }> {
    const out = new Map<ChunkId, Promise<Buffer>>()
    const recs = await this.meta.getChunks(ids)
    let i = 0
    while (i < ids.length) {
      const first = recs[i]
      let j = i + 1
      while (j < ids.length && first !== undefined && adjacent(recs[j - 1], recs[j]) && spanOf(first, recs[j] as ChunkRecord) <= MAX_SPAN_BYTES) j++
      if (first !== undefined && j - i > 1 && (await this.isRemote(first.pack))) {
        const run = recs.slice(i, j) as ChunkRecord[]
        const base = first.offset - RECORD_HEADER_SIZE
        const span = this.packAccess(first.pack).then((ra) => ra.read(base, spanOf(first, run[run.length - 1] as ChunkRecord)))
        for (const [k, rec] of run.entries()) {
          const id = ids[i + k] as ChunkId
          out.set(id, span.then(async (bytes) => {
            const data = await readChunk(spanRandomAccess(bytes, base), packEntryOf(rec))
            this.cache.set(id, data)
            return data
          }).catch(() => this.load(id)))
        }
      }
      i = j
    }
    return { runs: out, recs: new Map(ids.map((id, k) => [id, recs[k]])) }
  }

  /**
   * The chunk's record as stored at `at` (where the index put it when the caller looked), read
   * and verified without the cache. Throws like `read`, also when the chunk has moved and its
   * old pack is gone (the caller reads it again through `read`). Each call is one read of the
   * pack: for packs on remote tiers `read` and its coalescing prefetches are the better way.
   */
  async readStored(at: ChunkPlace): Promise<VerifiedRecord> {
    return readRecord(await this.packAccess(at.pack), packEntryOf(at))
  }

  /**
   * The records a pack holds, from its trailer, read as chunks are (a cold pack through a recall:
   * AGAIN until it is staged).
   */
  async packEntries(id: PackId): Promise<PackEntry[]> {
    return (await readTrailer(await this.packAccess(id))).entries
  }

  /** The pack is on a tier read over a network (false for a pack gone from the index). */
  async isRemote(pack: PackId): Promise<boolean> {
    const p = await this.meta.getPack(pack)
    return p !== undefined && this.tierOf(p.tier).localPath(p.key) === undefined
  }

  async close(): Promise<void> {
    this.packs.clear()
    this.cache.clear()
  }

  /** Closes the cached access to a pack that was deleted (its descriptor would pin the space). */
  forgetPack(id: PackId): void {
    this.packs.delete(id)
  }

  /** Reads, verifies and caches a chunk; `known` is its index record when just read. */
  private async load(id: ChunkId, known?: ChunkRecord): Promise<Buffer> {
    for (let attempt = 1; ; attempt++) {
      const rec = attempt === 1 && known !== undefined ? known : await this.meta.getChunk(id)
      if (rec === undefined) throw TierfsError.corrupt(`chunk ${id} is not in the index`, { chunkId: id })
      try {
        const ra = await this.packAccess(rec.pack)
        const data = await readChunk(ra, packEntryOf(rec))
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

/** `b` starts right where `a` ends in the same pack. */
function adjacent(a: ChunkRecord | undefined, b: ChunkRecord | undefined): boolean {
  return a !== undefined && b !== undefined && a.pack === b.pack && b.offset === a.offset + a.length + RECORD_HEADER_SIZE
}

/** Bytes from the header of `first` to the end of `last`. */
function spanOf(first: ChunkRecord, last: ChunkRecord): number {
  return last.offset + last.length - (first.offset - RECORD_HEADER_SIZE)
}
