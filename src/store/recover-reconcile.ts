import { TierfsError } from '../errors.js'
import type { ChunkId, Ino, PackId, TierId } from '../ids.js'
import { fileRandomAccess, readTrailer, scanPack, type PackEntry, type RandomAccess } from '../chunk/pack-reader.js'
import type { Meta, Txn } from '../meta/meta.js'
import type { ChunkRecord } from '../meta/types.js'
import type { Tier } from '../tier/tier.js'
import type { TierSet } from '../tier/tier-set.js'
import { lostFiles, type LostFiles } from './recover-lost.js'

export type ReconcileDeps = { meta: Meta; tiers: TierSet }

export interface ReconcileReport {
  packs: {
    /** Records whose pack is on a configured tier with its recorded size. */
    kept: number
    /** Records dropped, per tier: the tier is gone (the lost block tier) or the pack is missing. */
    dropped: Record<string, number>
    /** Packs found on a surviving tier without a record (written after the checkpoint): recorded. */
    adopted: number
    /** Packs on surviving tiers that could not be read (tier:key: why). */
    unreadable: string[]
    /** Unrecorded packs on tiers that need a recall to be read: not inspected. */
    uninspected: number
  }
  chunks: {
    /** Chunk records pointed at a copy in a surviving pack. */
    repointed: number
    /** Chunks with no surviving copy (their records are removed). */
    lost: number
    /** Refcounts corrected by the recount. */
    refsFixed: number
  }
  /** Pack liveBytes corrected by the recount. */
  liveBytesFixed: number
  lost: LostFiles
}

/** Operations per commit: keeps each batch (and the commit lock) short. */
const COMMIT_OPS = 10_000

/**
 * Makes freshly loaded checkpoint metadata agree with the packs that exist (run on a recovered
 * store before anything else uses it):
 *  1. every tier's packs are listed; a pack record whose tier is gone or whose object is missing
 *     (or of another size) is dropped;
 *  2. chunk records that pointed into dropped packs are looked for in the trailers of every pack
 *     on the surviving tiers and repointed to the copy found; packs found there without a record
 *     (a migration after the checkpoint) are recorded; chunks found nowhere are lost and their
 *     records removed;
 *  3. refcounts and pack liveBytes are recounted from every stored filemap version (fsck's rule);
 *  4. the files that reference a lost chunk are listed by path, in the current tree and in
 *     every restore point.
 * A tier that cannot be listed fails the whole run (IO): an unreachable tier is not a lost one.
 *
 * Memory: the pack keys of every tier, the chunks whose pack was dropped, and one counter per
 * referenced chunk for the recount (as fsck).
 */
export async function reconcile(deps: ReconcileDeps, nowMs = Date.now()): Promise<ReconcileReport> {
  const { meta, tiers } = deps
  const report: ReconcileReport = {
    packs: { kept: 0, dropped: {}, adopted: 0, unreadable: [], uninspected: 0 },
    chunks: { repointed: 0, lost: 0, refsFixed: 0 },
    liveBytesFixed: 0,
    lost: { current: [], restorePoints: [] },
  }
  const w = new Batched(meta)

  const present = new Map<TierId, Map<string, number>>()
  for (const [id, { tier }] of tiers.all()) {
    const keys = new Map<string, number>()
    for await (const o of tier.list('packs/')) if (o.key.endsWith('.pack')) keys.set(o.key, o.size)
    present.set(id, keys)
  }

  const kept = new Map<string, PackId>()
  const keptIds = new Set<PackId>()
  for await (const p of meta.packs()) {
    const size = tiers.has(p.tier) ? present.get(p.tier)?.get(p.key) : undefined
    if (size === undefined || (p.state !== 'open' && size !== p.size)) {
      report.packs.dropped[p.tier] = (report.packs.dropped[p.tier] ?? 0) + 1
      await w.run((t) => t.deletePack(p.id))
    } else {
      kept.set(`${p.tier}\0${p.key}`, p.id)
      keptIds.add(p.id)
      report.packs.kept++
    }
  }
  await w.flush()

  const homeless = new Map<ChunkId, ChunkRecord>()
  for await (const c of meta.chunks()) if (!keptIds.has(c.pack)) homeless.set(c.id, c)

  const found = new Map<ChunkId, { pack: PackId; entry: PackEntry }>()
  for (const [id, { tier }] of tiers.all()) {
    for (const [key, size] of present.get(id) ?? []) {
      const known = kept.get(`${id}\0${key}`)
      if (known !== undefined && found.size === homeless.size) continue
      if (tier.capabilities.needsWarmup) {
        if (known === undefined) report.packs.uninspected++
        continue
      }
      let listed: { packId: PackId; entries: PackEntry[] }
      try {
        listed = await packEntries(tier, key, size)
      } catch (err) {
        report.packs.unreadable.push(`${id}:${key}: ${(err as Error).message}`)
        continue
      }
      let pack = known
      if (pack === undefined) {
        const named = key.slice(key.lastIndexOf('/') + 1, -'.pack'.length)
        if (listed.packId !== named || keptIds.has(listed.packId)) {
          report.packs.unreadable.push(`${id}:${key}: holds pack ${listed.packId}, which ${keptIds.has(listed.packId) ? 'is recorded elsewhere' : 'does not match its name'}`)
          continue
        }
        pack = listed.packId
        keptIds.add(pack)
        report.packs.adopted++
        const rec = { id: pack, tier: id, key, state: 'sealed' as const, size, liveBytes: 0, chunkCount: listed.entries.length, createdMs: nowMs }
        await w.run((t) => t.putPack(rec))
      }
      for (const e of listed.entries) if (homeless.has(e.id) && !found.has(e.id)) found.set(e.id, { pack, entry: e })
    }
  }
  await w.flush()

  const lost = new Set<ChunkId>()
  for (const [id, rec] of homeless) {
    const f = found.get(id)
    if (f !== undefined) {
      const { offset, length, rawLength, codec } = f.entry
      await w.run((t) => t.putChunk({ ...rec, pack: f.pack, offset, length, rawLength, codec }))
      report.chunks.repointed++
    } else {
      await w.run((t) => t.deleteChunk(id))
      lost.add(id)
    }
  }
  report.chunks.lost = lost.size
  homeless.clear()
  found.clear()
  await w.flush()

  const counted = new Map<ChunkId, number>()
  const suspects = new Set<Ino>()
  for await (const fm of meta.fileMapVersions()) {
    if (fm.map.kind !== 'extents') continue
    for (const e of fm.map.extents) {
      counted.set(e.id, (counted.get(e.id) ?? 0) + 1)
      if (lost.has(e.id)) suspects.add(fm.ino)
    }
  }
  const live = new Map<PackId, number>()
  for await (const c of meta.chunks()) {
    const refs = counted.get(c.id) ?? 0
    if (refs !== c.refs) {
      await w.run((t) => t.putChunk({ ...c, refs }))
      report.chunks.refsFixed++
    }
    if (refs > 0) live.set(c.pack, (live.get(c.pack) ?? 0) + c.length)
  }
  counted.clear()
  await w.flush()
  for await (const p of meta.packs()) {
    const want = live.get(p.id) ?? 0
    if (want !== p.liveBytes) {
      await w.run((t) => t.addPackLive(p.id, want - p.liveBytes))
      report.liveBytesFixed++
    }
  }
  await w.flush()

  report.lost = await lostFiles(meta, lost, suspects)
  return report
}

/** A chunk list of one pack: its trailer, or a scan of its records when the trailer is damaged. */
async function packEntries(tier: Tier, key: string, size: number): Promise<{ packId: PackId; entries: PackEntry[] }> {
  const local = tier.localPath(key)
  const ra: RandomAccess & { close?: () => Promise<void> } = local !== undefined
    ? fileRandomAccess(local)
    : { size: async () => size, read: (o, l) => tier.get(key, { offset: o, length: l }) }
  try {
    try {
      return await readTrailer(ra)
    } catch (err) {
      if (!(err instanceof TierfsError) || err.code !== 'CORRUPT') throw err
      return await scanPack(ra)
    }
  } finally {
    await ra.close?.()
  }
}

/** Applies operations in commits of at most COMMIT_OPS. */
class Batched {
  private txn: Txn | undefined

  constructor(private readonly meta: Meta) {}

  async run(add: (txn: Txn) => void): Promise<void> {
    this.txn ??= this.meta.begin()
    add(this.txn)
    if (this.txn.size >= COMMIT_OPS) await this.flush()
  }

  async flush(): Promise<void> {
    const txn = this.txn
    this.txn = undefined
    if (txn !== undefined && txn.size > 0) await txn.commit({ sync: true })
  }
}
