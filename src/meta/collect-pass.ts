import { TierfsError } from '../errors.js'
import type { ChunkId, PackId } from '../ids.js'
import { neededVersions, type VersionRow } from './collect-rule.js'
import { chunkIdOf, chunkKey, keyVersion, logicalKey, packKey, VERSIONED_SPACES, type VersionedSpace } from './keys.js'
import { DEAD, decodeChunk, decodePack, encodeChunk, encodePack, fileMapChunkIds, isTombstone } from './record-codec.js'
import type { CollectResult } from './meta.js'
import type { IteratorOptions, Space, SpaceOp } from './space.js'

/** What a collection pass needs from the store. */
export interface CollectContext {
  spaces: Record<VersionedSpace | 'chunk' | 'pack' | 'dead', Space>
  /** Newest committed version when the pass starts: versions <= head are immutable. */
  head: bigint
  /** Pinned versions, ascending. */
  pins: readonly bigint[]
  /** Runs `fn` under the commit lock. */
  locked<T>(fn: () => Promise<T>): Promise<T>
  write(ops: SpaceOp[]): Promise<void>
  /** True once the store is closing: the pass stops at the next batch. */
  aborted(): boolean
  /** Deletes per committed batch (the lock is released between batches). */
  batchOps?: number
  /** Count only (see CollectOptions.dryRun): nothing is written, refs are followed in memory. */
  dryRun?: boolean
}

interface Row extends VersionRow {
  key: Buffer
  value: Buffer | undefined
}

const READ_BATCH = 1024

/**
 * One garbage-collection pass (see neededVersions for the rule). Streams each versioned space in
 * key order holding only the current logical key's versions, and commits drops in batches under
 * the commit lock. Dropping a filemap version decrements its chunks' refs in the same batch.
 *
 * Safe against concurrent commits: rows newer than `head` are kept, a commit can only add a
 * version newer than every existing one, and the newest row seen is treated as current (kept
 * unless it is a tombstone hiding nothing, which hides nothing whatever comes later).
 */
export async function collectPass(ctx: CollectContext, horizon: bigint): Promise<CollectResult> {
  // Instants after head are the present; a pin made during the pass sees versions current at head.
  const h = horizon < ctx.head ? horizon : ctx.head
  const limit = ctx.batchOps ?? 10_000
  const result: CollectResult = { versionsDropped: 0, chunksFreed: [], liveDrops: new Map() }
  let dels: SpaceOp[] = []
  let refDrops = new Map<string, number>()
  // Dry run: refcounts as the pass would have left them, for the chunks it touched.
  const planned = ctx.dryRun === true ? new Map<string, number>() : undefined

  const flush = async (): Promise<void> => {
    if (dels.length === 0) return
    const ops = dels
    const drops = refDrops
    dels = []
    refDrops = new Map()
    if (planned !== undefined) {
      await releaseChunks(ctx, drops, result, planned)
      result.versionsDropped += ops.length
      return
    }
    await ctx.locked(async () => {
      const released = await releaseChunks(ctx, drops, result)
      await ctx.write(released.length === 0 ? ops : ops.concat(released))
    })
    result.versionsDropped += ops.length
  }

  for (const name of VERSIONED_SPACES) {
    const space = ctx.spaces[name]
    const keepValues = name === 'filemap'
    let group: Row[] = []
    let cur: Buffer | undefined

    const decide = (): void => {
      const keep = neededVersions(group, h, ctx.pins, ctx.head)
      for (let i = 0; i < group.length; i++) {
        if (keep[i] === true) continue
        const row = group[i]!
        dels.push({ type: 'del', sublevel: space, key: row.key })
        if (row.value !== undefined) {
          for (const id of fileMapChunkIds(row.value)) refDrops.set(id, (refDrops.get(id) ?? 0) + 1)
        }
      }
      group = []
    }

    const opts: IteratorOptions = { highWaterMarkBytes: 256 * 1024 }
    const it = space.iterator(opts)
    try {
      for (;;) {
        if (ctx.aborted()) throw new TierfsError('CLOSED', 'collect: metadata store is closing')
        const rows = await it.nextv(READ_BATCH)
        if (rows.length === 0) break
        for (const [key, value] of rows) {
          const logical = logicalKey(key)
          if (cur === undefined || !logical.equals(cur)) {
            if (group.length > 0) decide()
            cur = logical
          }
          const tombstone = isTombstone(value)
          group.push({ key, version: keyVersion(key), tombstone, value: keepValues && !tombstone ? value : undefined })
        }
        // Chunk refcounts are read and written under the commit lock: bound those too.
        if (dels.length >= limit || refDrops.size >= limit) await flush()
      }
      if (group.length > 0) decide()
    } finally {
      await it.close()
    }
    await flush()
  }
  return result
}

/**
 * Decrements refs for dropped extents; frees chunks reaching zero from their packs' live bytes
 * and enters them in the dead index. With `planned` (dry run), refs are read from and written to
 * that map, and no op is returned.
 */
async function releaseChunks(ctx: CollectContext, drops: Map<string, number>, result: CollectResult, planned?: Map<string, number>): Promise<SpaceOp[]> {
  if (drops.size === 0) return []
  const ops: SpaceOp[] = []
  const ids = [...drops.keys()] as ChunkId[]
  const keys = ids.map((id) => chunkKey(id))
  const values = await ctx.spaces.chunk.getMany(keys)
  const packDrops = new Map<PackId, number>()
  for (let i = 0; i < ids.length; i++) {
    const value = values[i]
    if (value === undefined) continue
    const rec = decodeChunk(chunkIdOf(keys[i]!), value)
    const before = planned?.get(rec.id) ?? rec.refs
    rec.refs = Math.max(0, before - drops.get(ids[i]!)!)
    const freed = before > 0 && rec.refs === 0
    if (freed) {
      result.chunksFreed.push(rec.id)
      packDrops.set(rec.pack, (packDrops.get(rec.pack) ?? 0) + rec.length)
    }
    if (planned !== undefined) {
      planned.set(rec.id, rec.refs)
      continue
    }
    ops.push({ type: 'put', sublevel: ctx.spaces.chunk, key: keys[i]!, value: encodeChunk(rec) })
    if (freed) ops.push({ type: 'put', sublevel: ctx.spaces.dead, key: keys[i]!, value: DEAD })
  }
  for (const [id, bytes] of packDrops) result.liveDrops.set(id, (result.liveDrops.get(id) ?? 0) + bytes)
  if (planned !== undefined) return ops
  for (const [id, bytes] of packDrops) {
    const key = packKey(id)
    const value = await ctx.spaces.pack.get(key)
    if (value === undefined) continue
    const rec = decodePack(id, value)
    rec.liveBytes = Math.max(0, rec.liveBytes - bytes)
    ops.push({ type: 'put', sublevel: ctx.spaces.pack, key, value: encodePack(rec) })
  }
  return ops
}
