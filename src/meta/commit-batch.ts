import { TierfsError } from '../errors.js'
import type { ChunkId, Ino, PackId } from '../ids.js'
import { chunkKey, packKey, withVersion, xattrRange } from './keys.js'
import type { CacheKey, CacheValue, TxnOp } from './level-txn.js'
import { DEAD, decodeChunk, decodePack, encodeChunk, encodePack, TOMBSTONE } from './record-codec.js'
import type { Spaces, SpaceOp } from './space.js'
import type { ChunkRecord, PackRecord } from './types.js'
import { scanVisible } from './version-scan.js'

/**
 * Turns a transaction's operations into one batch under `version`, in order: versioned records
 * get the version suffix; chunk and pack records are read, changed and written once each
 * (addRefs / addPackLive compose because the caller holds the commit lock), and the dead index
 * (keys.ts) follows every chunk record whose refs cross 0 or that appears or goes. Returns the cache
 * entries to set once the batch is written. Throws (and nothing is written) on a missing record
 * or a count that would go negative.
 */
export async function buildCommitBatch(
  sp: Spaces,
  ops: readonly TxnOp[],
  version: bigint,
): Promise<{ batch: SpaceOp[]; cacheSets: Array<[CacheKey, CacheValue]> }> {
  const batch: SpaceOp[] = []
  const cacheSets: Array<[CacheKey, CacheValue]> = []
  const chunks = new Map<ChunkId, ChunkRecord | null>()
  const packs = new Map<PackId, PackRecord | null>()
  // One multi-get for every chunk record the operations read (prune commits thousands at once,
  // under the commit lock); ops that change a record work on the copy in `chunks`.
  const preloaded = await preloadChunks(sp, ops)
  // Whether each loaded record was dead (refs 0) as stored: the dead index changes only where
  // that changes. A record put without being read has an unknown past: its entry is written.
  const storedDead = new Map<ChunkId, boolean>()
  const loadChunk = async (id: ChunkId): Promise<ChunkRecord | undefined> => {
    let rec: ChunkRecord | undefined
    if (preloaded.has(id)) rec = preloaded.get(id) ?? undefined
    else {
      const value = await sp.chunk.get(chunkKey(id))
      rec = value === undefined ? undefined : decodeChunk(id, value)
    }
    storedDead.set(id, rec !== undefined && rec.refs === 0)
    return rec
  }
  const retires: Array<Extract<TxnOp, { t: 'packRetire' }>> = []
  const loadPack = async (id: PackId): Promise<PackRecord | undefined> => {
    const value = await sp.pack.get(packKey(id))
    return value === undefined ? undefined : decodePack(id, value)
  }
  for (const op of ops) {
    switch (op.t) {
      case 'version':
        batch.push({ type: 'put', sublevel: sp[op.space], key: withVersion(op.key, version), value: op.value })
        if (op.cacheKey !== undefined) cacheSets.push([op.cacheKey, op.cacheValue ?? null])
        break
      case 'dropXattrs':
        await dropXattrs(sp, op.ino, version, batch)
        break
      case 'chunkPut':
        chunks.set(op.rec.id, { ...op.rec })
        break
      case 'chunkDel':
        if (op.ifUnreferenced === true && ((await working(chunks, op.id, loadChunk))?.refs ?? 0) > 0) break
        chunks.set(op.id, null)
        break
      case 'chunkAdd': {
        const rec = await working(chunks, op.id, loadChunk)
        if (rec === null) throw new TierfsError('NOT_FOUND', `addRefs: chunk ${op.id} does not exist`, { detail: { chunk: op.id } })
        const before = rec.refs
        rec.refs += op.delta
        if (rec.refs < 0) throw TierfsError.internal(`chunk ${op.id}: refs would become ${rec.refs}`)
        if (op.trackLive === true && (before > 0) !== (rec.refs > 0)) {
          const pack = await working(packs, rec.pack, loadPack)
          if (pack !== null) pack.liveBytes = Math.max(0, pack.liveBytes + (rec.refs > 0 ? rec.length : -rec.length))
        }
        break
      }
      case 'chunkMove': {
        // Relocation keeps refs; a chunk that vanished meanwhile (pruned) is simply not moved.
        const rec = await working(chunks, op.id, loadChunk)
        if (rec === null) break
        if (op.from !== undefined && (rec.pack !== op.from.pack || rec.offset !== op.from.offset)) break
        if (rec.refs > 0) {
          const from = await working(packs, rec.pack, loadPack)
          if (from !== null) from.liveBytes = Math.max(0, from.liveBytes - rec.length)
          const to = await working(packs, op.to.pack, loadPack)
          if (to === null) throw new TierfsError('NOT_FOUND', `moveChunk: pack ${op.to.pack} does not exist`, { detail: { pack: op.to.pack } })
          to.liveBytes += op.to.length
        }
        Object.assign(rec, op.to)
        break
      }
      case 'packPut': {
        // liveBytes moves only through addPackLive (and collect): a put keeps the known value.
        const known = packs.has(op.rec.id) ? packs.get(op.rec.id) : await loadPack(op.rec.id)
        packs.set(op.rec.id, known ? { ...op.rec, liveBytes: known.liveBytes } : { ...op.rec })
        break
      }
      case 'packDel':
        packs.set(op.id, null)
        break
      case 'packRetire':
        retires.push(op)
        break
      case 'packAdd': {
        const rec = await working(packs, op.id, loadPack)
        if (rec === null) throw new TierfsError('NOT_FOUND', `addPackLive: pack ${op.id} does not exist`, { detail: { pack: op.id } })
        rec.liveBytes += op.delta
        if (rec.liveBytes < 0) throw TierfsError.internal(`pack ${op.id}: liveBytes would become ${rec.liveBytes}`)
        break
      }
      case 'plain':
        batch.push(op.value === undefined
          ? { type: 'del', sublevel: sp[op.space], key: op.key }
          : { type: 'put', sublevel: sp[op.space], key: op.key, value: op.value })
        break
    }
  }
  // Retirement is judged last, on the records as every other operation of the batch left them.
  for (const op of retires) {
    const pack = await working(packs, op.id, loadPack)
    if (pack === null || pack.state === 'open') continue
    let referenced = false
    for (const id of op.unlessReferenced) {
      if ((await working(chunks, id, loadChunk))?.pack === op.id) {
        referenced = true
        break
      }
    }
    if (!referenced) pack.state = 'deleting'
  }
  for (const [id, rec] of chunks) {
    const key = chunkKey(id)
    batch.push(rec === null ? { type: 'del', sublevel: sp.chunk, key } : { type: 'put', sublevel: sp.chunk, key, value: encodeChunk(rec) })
    const dead = rec !== null && rec.refs === 0
    if (storedDead.get(id) !== dead) batch.push(dead ? { type: 'put', sublevel: sp.dead, key, value: DEAD } : { type: 'del', sublevel: sp.dead, key })
  }
  for (const [id, rec] of packs) {
    const key = packKey(id)
    batch.push(rec === null ? { type: 'del', sublevel: sp.pack, key } : { type: 'put', sublevel: sp.pack, key, value: encodePack(rec) })
  }
  return { batch, cacheSets }
}

/** The stored records of every chunk that addRefs, conditional deletes, moves and retirements read. */
async function preloadChunks(sp: Spaces, ops: readonly TxnOp[]): Promise<Map<ChunkId, ChunkRecord | null>> {
  const ids = new Set<ChunkId>()
  for (const op of ops) {
    if (op.t === 'chunkAdd' || op.t === 'chunkMove' || (op.t === 'chunkDel' && op.ifUnreferenced === true)) ids.add(op.id)
    else if (op.t === 'packRetire') for (const id of op.unlessReferenced) ids.add(id)
  }
  const out = new Map<ChunkId, ChunkRecord | null>()
  if (ids.size === 0) return out
  const list = [...ids]
  const values = await sp.chunk.getMany(list.map((id) => chunkKey(id)))
  list.forEach((id, i) => {
    const value = values[i]
    out.set(id, value === undefined ? null : decodeChunk(id, value))
  })
  return out
}

/** Tombstones every xattr of `ino`: those committed and those queued earlier in this batch. */
async function dropXattrs(sp: Spaces, ino: Ino, version: bigint, batch: SpaceOp[]): Promise<void> {
  const keys = new Map<string, Buffer>()
  for await (const [logical] of scanVisible(sp.xattr, xattrRange(ino), undefined)) {
    const key = withVersion(logical, version)
    keys.set(key.toString('hex'), key)
  }
  for (const op of batch) {
    if (op.sublevel === sp.xattr && op.key.readUInt32BE(0) === ino) keys.set(op.key.toString('hex'), op.key)
  }
  for (const key of keys.values()) batch.push({ type: 'put', sublevel: sp.xattr, key, value: TOMBSTONE })
}

/** The record as changed so far in this batch, loaded on first use; null when absent or deleted. */
async function working<K, R>(map: Map<K, R | null>, id: K, load: (id: K) => Promise<R | undefined>): Promise<R | null> {
  let rec = map.get(id)
  if (rec === undefined) {
    rec = (await load(id)) ?? null
    map.set(id, rec)
  }
  return rec
}
