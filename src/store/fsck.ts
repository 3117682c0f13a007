import { TierfsError } from '../errors.js'
import { asIno, type ChunkId, type PackId } from '../ids.js'
import { fileRandomAccess, packEntryOf, readChunk, readTrailer, scanPack, type PackEntry, type RandomAccess } from '../chunk/pack-reader.js'
import type { Meta } from '../meta/meta.js'
import type { ChunkRecord, PackRecord } from '../meta/types.js'
import type { Tier } from '../tier/tier.js'
import type { TierSet } from '../tier/tier-set.js'
import type { Staging } from '../vfs/staging.js'
import { strayName } from './stray-objects.js'

export type ProblemKind =
  | 'missing-chunk' | 'refcount' | 'chunk-pack-missing' | 'pack-file-missing' | 'pack-unreadable'
  | 'chunk-corrupt' | 'chunk-not-in-pack' | 'pack-live-bytes' | 'dead-index' | 'orphan-staging' | 'orphan-pack'

export interface Problem {
  kind: ProblemKind
  message: string
  /** Fixed by --repair in this run. */
  repaired: boolean
}

export interface FsckReport {
  ok: boolean
  problems: Problem[]
  /** coldUnverified: chunks on tiers that need a recall to be read; their packs were checked by size. */
  checked: { fileMaps: number; chunks: number; packs: number; bytesVerified: number; coldUnverified: number }
  /** Staging files of existing files: not problems, they are resealed at the next mount. */
  pendingStaging: number
  /** Pack objects without a record that a failed or interrupted migration noted (stray-objects.ts): removed at the next mount. */
  pendingStrays: number
}

export type FsckDeps = { meta: Meta; tiers: TierSet; staging: Staging }

/**
 * Offline consistency check of a store (nothing else may have it open):
 * every filemap's chunks are indexed; refcounts equal the references counted from all filemap
 * versions; every chunk's pack exists, lists it, and its bytes verify (SHA-256); pack liveBytes add
 * up; the dead index lists exactly the records with refs 0; no staging file without its inode; no
 * pack file without a record.
 * With `repair`: the index is rebuilt from the packs themselves (trailers, or a record scan where a
 * trailer is damaged), refcounts and liveBytes are recounted, orphans removed. A filemap whose
 * chunk exists in no pack cannot be repaired and stays reported.
 *
 * Memory: one counter per unique chunk id (about 100 bytes each).
 */
export async function fsck(deps: FsckDeps, opts: { repair: boolean }): Promise<FsckReport> {
  const { meta, tiers } = deps
  const report: FsckReport = { ok: true, problems: [], checked: { fileMaps: 0, chunks: 0, packs: 0, bytesVerified: 0, coldUnverified: 0 }, pendingStaging: 0, pendingStrays: 0 }
  const problem = (kind: ProblemKind, message: string, repaired = false): void => { report.problems.push({ kind, message, repaired }) }
  const txn = meta.begin()

  // Pass 1: what the packs hold (the second source of truth), per pack.
  const inPacks = new Map<ChunkId, { pack: PackId; entry: PackEntry }>()
  // Further copies of a chunk (pack@offset): a chunk stored again after its dead record was
  // pruned, or moved by a repack or migration, leaves its old bytes behind until that pack goes.
  const copies = new Map<ChunkId, string[]>()
  const packRecords = new Map<PackId, PackRecord>()
  // Packs whose entries pass 1 listed: only for those does "not at its place" mean anything.
  const scanned = new Set<PackId>()
  for await (const p of meta.packs()) packRecords.set(p.id, p)
  for (const [, { tier }] of tiers.all()) for await (const obj of tier.list('packs/')) {
    if (!obj.key.endsWith('.pack')) continue
    if (tier.capabilities.needsWarmup) continue
    const id = obj.key.slice(obj.key.lastIndexOf('/') + 1, -'.pack'.length) as PackId
    // A noted upload that never committed may be cut short (not every server's PUT is atomic):
    // it is garbage the next mount removes, not something to read.
    if (!packRecords.has(id) && (await meta.getSys(strayName(tier.id, obj.key))) !== undefined) {
      report.pendingStrays++
      continue
    }
    const ra = access(tier, obj.key)
    let entries: PackEntry[]
    try {
      entries = await packEntries(ra)
    } catch (err) {
      problem('pack-unreadable', `pack ${obj.key}: ${(err as Error).message}`)
      continue
    } finally {
      await (ra as { close?: () => Promise<void> }).close?.()
    }
    scanned.add(id)
    for (const entry of entries) {
      const first = inPacks.get(entry.id)
      if (first === undefined) inPacks.set(entry.id, { pack: id, entry })
      else copies.set(entry.id, [...(copies.get(entry.id) ?? []), `${id}@${entry.offset}`])
    }
    if (!packRecords.has(id)) {
      const rec: PackRecord = { id, tier: tier.id, key: obj.key, state: 'sealed', size: obj.size, liveBytes: 0, chunkCount: entries.length, createdMs: Date.now() }
      problem('orphan-pack', `pack file ${obj.key} has no record`, opts.repair)
      if (opts.repair) { txn.putPack(rec); packRecords.set(id, rec) }
    }
  }

  // Pass 2: references from every filemap version.
  const counted = new Map<ChunkId, number>()
  for await (const fm of meta.fileMapVersions()) {
    report.checked.fileMaps++
    if (fm.map.kind !== 'extents') continue
    for (const e of fm.map.extents) counted.set(e.id, (counted.get(e.id) ?? 0) + 1)
  }

  // Pass 3: the index against references and packs; verify every chunk's bytes.
  const live = new Map<PackId, number>()
  const seen = new Set<ChunkId>()
  const packAccess = new Map<PackId, RandomAccess>()
  // The dead index, merge-joined with the chunk index (both in id order): an entry exactly for
  // each record with refs 0. A put of the record (repair) writes its entry right.
  const dead = new DeadCursor(meta)
  const strayDead = (id: ChunkId): void => {
    problem('dead-index', `dead-index entry ${id} has no chunk record`, opts.repair)
    if (opts.repair) txn.deleteChunk(id)
  }
  for await (const c of meta.chunks()) {
    report.checked.chunks++
    seen.add(c.id)
    const listed = await dead.take(c.id, strayDead)
    const refs = counted.get(c.id) ?? 0
    if (refs !== c.refs) {
      problem('refcount', `chunk ${c.id}: ${c.refs} refs recorded, ${refs} counted`, opts.repair)
      if (opts.repair) txn.putChunk({ ...c, refs })
    } else if (listed !== (c.refs === 0)) {
      problem('dead-index', `chunk ${c.id} has ${c.refs} refs but is ${listed ? '' : 'not '}in the dead index`, opts.repair)
      if (opts.repair) txn.putChunk({ ...c })
    }
    const pack = packRecords.get(c.pack)
    if (pack === undefined) {
      const found = inPacks.get(c.id)
      problem('chunk-pack-missing', `chunk ${c.id}: pack ${c.pack} does not exist`, opts.repair && found !== undefined)
      if (opts.repair && found !== undefined) txn.putChunk(fromEntry(found.pack, found.entry, refs))
      continue
    }
    // A chunk no scan saw is judged by reading it where the index says: a scan of an unfinished
    // pack stops at the first damaged record, and the intact records after it are not missing.
    const where = inPacks.get(c.id)
    if (where !== undefined && scanned.has(c.pack) && (where.pack !== c.pack || where.entry.offset !== c.offset) && !copies.get(c.id)?.includes(`${c.pack}@${c.offset}`)) {
      problem('chunk-not-in-pack', `chunk ${c.id}: not at ${c.pack}@${c.offset}`, opts.repair)
      if (opts.repair) txn.putChunk(fromEntry(where.pack, where.entry, refs))
    }
    if (refs > 0) live.set(c.pack, (live.get(c.pack) ?? 0) + c.length)
    const tier = tiers.get(pack.tier)
    if (tier.capabilities.needsWarmup) {
      report.checked.coldUnverified++
      continue
    }
    let ra = packAccess.get(c.pack)
    if (ra === undefined) { ra = access(tier, pack.key); packAccess.set(c.pack, ra) }
    try {
      await readChunk(ra, packEntryOf(c))
      report.checked.bytesVerified += c.length
    } catch (err) {
      problem('chunk-corrupt', `chunk ${c.id} in pack ${c.pack}: ${(err as Error).message}`)
    }
  }
  await dead.rest(strayDead)
  for (const ra of packAccess.values()) await (ra as { close?: () => Promise<void> }).close?.()
  for (const [id, refs] of counted) {
    if (seen.has(id)) continue
    const found = inPacks.get(id)
    problem('missing-chunk', `chunk ${id} is referenced ${refs} times but not indexed${found ? ` (found in pack ${found.pack})` : ' and in no pack'}`, opts.repair && found !== undefined)
    if (opts.repair && found !== undefined) {
      txn.putChunk(fromEntry(found.pack, found.entry, refs))
      live.set(found.pack, (live.get(found.pack) ?? 0) + found.entry.length)
    }
  }

  // Pass 4: packs.
  for (const p of packRecords.values()) {
    report.checked.packs++
    // A 'deleting' pack is one a prune retired and stopped deleting: its object may be gone already.
    if (p.state !== 'deleting' && (await tiers.get(p.tier).head(p.key)) === undefined) problem('pack-file-missing', `pack ${p.id}: ${p.key} is missing on tier ${p.tier}`)
    const want = live.get(p.id) ?? 0
    if (want !== p.liveBytes) {
      problem('pack-live-bytes', `pack ${p.id}: liveBytes ${p.liveBytes} recorded, ${want} counted`, opts.repair)
      if (opts.repair) txn.addPackLive(p.id, want - p.liveBytes)
    }
  }

  // Pass 5: staging.
  for (const ino of await deps.staging.leftovers().catch(() => [])) {
    const a = await meta.getInode(asIno(ino))
    if (a === undefined || a.nlink === 0) {
      problem('orphan-staging', `staging file for inode ${ino} whose file is gone`, opts.repair)
      if (opts.repair) await deps.staging.remove(ino)
    } else report.pendingStaging++
  }

  if (opts.repair && txn.size > 0) await txn.commit({ sync: true })
  report.ok = report.problems.every((p) => p.repaired)
  return report
}

function access(tier: Tier, key: string): RandomAccess {
  const local = tier.localPath(key)
  if (local !== undefined) return fileRandomAccess(local)
  return { size: async () => (await tier.head(key))?.size ?? 0, read: (o, l) => tier.get(key, { offset: o, length: l }) }
}

async function packEntries(ra: RandomAccess): Promise<PackEntry[]> {
  try {
    return (await readTrailer(ra)).entries
  } catch (err) {
    if (!(err instanceof TierfsError) || err.code !== 'CORRUPT') throw err
    return (await scanPack(ra)).entries
  }
}

function fromEntry(pack: PackId, e: PackEntry, refs: number): ChunkRecord {
  return { id: e.id, pack, offset: e.offset, length: e.length, rawLength: e.rawLength, codec: e.codec, refs }
}

/** Walks the dead index alongside the chunk index (both ascend by id). */
class DeadCursor {
  private readonly it: AsyncIterator<ChunkId[]>
  private batch: ChunkId[] = []
  private at = 0
  private done = false

  constructor(meta: Meta) {
    this.it = meta.deadChunks()[Symbol.asyncIterator]()
  }

  /** Whether `id` has an entry; entries before it (no record) go to `stray`. */
  async take(id: ChunkId, stray: (id: ChunkId) => void): Promise<boolean> {
    for (;;) {
      const next = await this.peek()
      if (next === undefined || next > id) return false
      this.at++
      if (next === id) return true
      stray(next)
    }
  }

  /** Entries after the last chunk record. */
  async rest(stray: (id: ChunkId) => void): Promise<void> {
    for (let next = await this.peek(); next !== undefined; next = await this.peek()) {
      this.at++
      stray(next)
    }
  }

  private async peek(): Promise<ChunkId | undefined> {
    while (this.at >= this.batch.length && !this.done) {
      const r = await this.it.next()
      if (r.done === true) this.done = true
      else {
        this.batch = r.value
        this.at = 0
      }
    }
    return this.at < this.batch.length ? this.batch[this.at] : undefined
  }
}
