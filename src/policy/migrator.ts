import { randomBytes } from 'node:crypto'
import { mkdir, rm } from 'node:fs/promises'
import { join } from 'node:path'
import { isCode, TierfsError } from '../errors.js'
import { asIno, asPackId, type ChunkId, type Ino, type PackId, type TierId } from '../ids.js'
import { packKey } from '../chunk/chunk-store.js'
import { CODEC_NONE, encodeChunk } from '../chunk/codec.js'
import { PackWriter } from '../chunk/pack-writer.js'
import { readTrailer, type PackEntry, type RandomAccess } from '../chunk/pack-reader.js'
import { crashPoint } from '../crash-point.js'
import type { Logger } from '../log.js'
import type { Meta } from '../meta/meta.js'
import type { ChunkRecord, PackRecord } from '../meta/types.js'
import type { TierSet } from '../tier/tier-set.js'
import { clearStrays, dropStray, noteStray, noteStrayIn, strayName } from '../store/stray-objects.js'
import type { Mutex } from '../vfs/mutex.js'
import type { PolicySet } from './decide.js'
import { CompressionProbe } from './compress-probe.js'
import { visitWarmerFiles } from './file-demand.js'
import { CopySource, type CopyChunks, type CopyItem } from './copy-source.js'
import { PackImage } from './pack-image.js'
import { planPass, PlanTally, type PlanSummary, type PlannedItem } from './planner.js'
import { findPointCandidates, visitWarmerPoints, type PointCandidates, type PointResume } from './point-candidates.js'

export interface MigratorConfig {
  objectPackSize: number
  coldPackSize: number
  maxBytesPerPass: number
  /** Compress chunks written to object and cold tiers (bytes there cost money). */
  compress: boolean
  /** A pack off the write tier whose live bytes fall below this fraction of its size is repacked. */
  repackBelow: number
  /** Cold packs younger than this are not repacked (an archive deleted early is billed as if kept). */
  coldMinAgeMs: number
}

export type MigratorDeps = {
  meta: Meta
  /**
   * Verified chunk reads, from whatever tier holds them (CopyChunks: cached reads and prefetches,
   * records as stored); `forgetPack` closes a freed pack's cached access; `packEntries` lists a
   * pack's records from its trailer; packs on `writeTier` are prune's to repack.
   */
  chunks: CopyChunks & { forgetPack(id: PackId): void; packEntries(id: PackId): Promise<PackEntry[]>; readonly writeTier: TierId }
  tiers: TierSet
  /** The namespace lock: freeing a pack re-checks references under it, so no seal interleaves. */
  lock: Mutex
  /** Local scratch directory (on the block tier) where outgoing packs too big to hold in memory are built. */
  outgoing: string
  log: Logger
  /** Removes a file from the namespace (then: delete). */
  deleteFile: (path: string) => Promise<void>
  /** Records the tier a file's data now lives on (user.tierfs.tier). */
  setTier: (ino: Ino, tier: TierId) => Promise<void>
}

export interface PassReport {
  filesMoved: number
  bytesMoved: number
  chunksCopied: number
  packsWritten: number
  packsFreed: number
  bytesFreed: number
  filesDeleted: number
  /** Files whose move failed (their data stays readable where it was; the next pass retries). */
  filesFailed: number
  /** Chunks left where they are because a warmer referrer needs them. */
  chunksHeldWarm: number
  /** Chunks that only restore points reference, moved to where their workflows' chains want them. */
  pointChunksMoved: number
  /** Their uncompressed bytes. */
  pointBytesMoved: number
  /** Sparse packs off the write tier whose live chunks were copied into new packs on their tier. */
  packsRepacked: number
  /** Sparse cold packs waiting for the recall a repack of them started. */
  repacksWaiting: number
  errors: Array<{ path?: string; message: string }>
}

/**
 * Executes policy decisions: copy -> verify -> commit -> free.
 *  1. copy: chunks of the files to move are read (verified) and appended to new packs for the
 *     destination (pack size per destination kind; built in memory, or as scratch files on the
 *     block tier when too big to hold), several uploads at a time;
 *  2. verify: the uploaded object's size, and where the tier can be read back, its trailer;
 *  3. commit: one metadata batch repoints every chunk (refs kept) and records the new pack;
 *  4. free: source packs left with no live bytes are deleted from their tier, after a commit made
 *     under the namespace lock proves no chunk record points into them.
 * Files whose move has started are marked in metadata (sys `moving/<ino>`) until it is seen
 * through: a crash mid-move leaves some of their chunks on each tier while their recorded tier
 * is still the old one, and the next pass moves every marked file to where its policy wants it
 * now, even when that is the tier it is recorded on (the policy may have changed meanwhile).
 * Every object that could outlive a crash without a record is noted first (stray-objects.ts):
 * a crash or failure before 3 leaves a noted upload, removed at start-up or before the next
 * pass; after 3 and before 4, a dead source pack, which the next pass frees (every pass ends by
 * freeing the dead sealed packs it finds); during 4, a noted object whose record is gone, removed
 * like an upload. Nothing is ever the only copy while it is being moved.
 *
 * Placement: a chunk goes to the warmest tier any current file referencing it demands, so files
 * that share chunks do not drag each other colder. Data that only restore points reference
 * (files rewritten or deleted since) follows the chains of the points' workflows, age counted
 * from each point's time, at the warmest tier any of its points or current files demands
 * (point-candidates.ts); it is moved by the same copy -> verify -> commit -> free, after the
 * file moves and within what is left of the pass's byte budget. Those moves need no marks: no
 * file's recorded tier changes, and every chunk's move is its own compare-and-set.
 */
export class Migrator {
  /** Where the next pass's scan for restore-point data goes on (in memory: a restart begins anew). */
  private pointResume: PointResume | undefined
  private moving = 0

  /** Files whose move is under way now (copying, verifying or committing). */
  get movingNow(): number {
    return this.moving
  }

  constructor(private readonly deps: MigratorDeps, private readonly config: MigratorConfig) {}

  /**
   * What `pass` would do now, added up while the namespace streams by (memory: one row per policy
   * and transition, and the inodes with several names), for `tierfs policy plan`.
   */
  async plan(set: PolicySet, nowMs: number): Promise<PlanSummary> {
    const tally = new PlanTally()
    const errors: PlanSummary['errors'] = []
    let errorCount = 0
    const links = new Set<Ino>()
    const unsettled = await this.unsettled()
    let bytes = 0
    const onError = (path: string, message: string): void => {
      if (errorCount++ < MAX_PLAN_ERRORS) errors.push({ path, message })
    }
    for await (const item of planPass(this.deps, set, nowMs, onError, unsettled)) {
      if (item.nlink > 1) {
        if (links.has(item.ino)) continue
        links.add(item.ino)
      }
      if (item.action === 'move') {
        if (bytes >= this.config.maxBytesPerPass) continue
        bytes += item.size
      }
      tally.add(item)
    }
    const points = await this.pointCandidates(set, nowMs, bytes)
    for (const e of points.errors) if (errorCount++ < MAX_PLAN_ERRORS) errors.push(e)
    for (const c of points.chunks.values()) tally.addPointChunk(c.policy, c.from, c.to, c.rawLength)
    return { rows: tally.result(), errors, errorCount, files: tally.files, bytes: tally.bytes }
  }

  async pass(set: PolicySet, nowMs: number, opts: { dryRun?: boolean } = {}): Promise<PassReport & { planned: PlannedItem[] }> {
    const report = emptyReport()
    const moves: PlannedItem[] = []
    const deletes: PlannedItem[] = []
    const seen = new Set<Ino>()
    const unsettled = await this.unsettled()
    let bytes = 0
    let unlisted = 0
    const onError = (path: string, message: string): void => {
      if (report.errors.length < MAX_PLAN_ERRORS) report.errors.push({ path, message })
      else unlisted++
    }
    for await (const item of planPass(this.deps, set, nowMs, onError, unsettled)) {
      if (seen.has(item.ino)) continue
      seen.add(item.ino)
      if (item.action === 'delete') deletes.push(item)
      else if (bytes < this.config.maxBytesPerPass) {
        moves.push(item)
        bytes += item.size
      }
    }
    if (unlisted > 0) report.errors.push({ message: `and ${unlisted} more files whose policy could not be applied` })
    if (opts.dryRun === true) return { ...report, planned: [...moves, ...deletes] }
    await this.clearStrays()
    // Marked files no policy moves any more (deleted, or unmatched): their chunks stay readable
    // wherever they are; there is nothing left to see through.
    const stale = [...unsettled].filter((ino) => !seen.has(ino))
    if (stale.length > 0) await this.settle(stale)
    for (const d of deletes) {
      try {
        await this.deps.deleteFile(d.path)
        report.filesDeleted++
      } catch (err) {
        report.errors.push({ path: d.path, message: (err as Error).message })
      }
    }
    await this.moveFiles(moves.map((m) => ({ ino: m.ino, path: m.path, to: m.to as TierId })), report, set, nowMs)
    await this.movePointData(set, nowMs, bytes, report)
    await this.tendPacks(nowMs, bytes + report.pointBytesMoved, report)
    return { ...report, planned: [...moves, ...deletes] }
  }

  /** Restore-point data to move now, within what the file moves (`fileBytes`) left of the budget. */
  private pointCandidates(set: PolicySet, nowMs: number, fileBytes: number): Promise<PointCandidates> {
    const budget = this.config.maxBytesPerPass - fileBytes
    return findPointCandidates(this.deps, set, nowMs, { budget, from: this.pointResume })
  }

  /**
   * Moves data that only restore points reference to where their workflows' chains want it
   * (see the class comment); a failure is reported and leaves the data readable where it is.
   */
  private async movePointData(set: PolicySet, nowMs: number, fileBytes: number, report: PassReport): Promise<void> {
    let found: PointCandidates
    try {
      found = await this.pointCandidates(set, nowMs, fileBytes)
    } catch (err) {
      report.errors.push({ message: `finding restore-point data to move: ${(err as Error).message}` })
      return
    }
    this.pointResume = found.resume
    report.errors.push(...found.errors)
    report.chunksHeldWarm += found.held
    const byDest = new Map<TierId, ChunkId[]>()
    for (const [id, c] of found.chunks) {
      const g = byDest.get(c.to)
      if (g === undefined) byDest.set(c.to, [id])
      else g.push(id)
    }
    for (const [dest, ids] of byDest) {
      const { items, sources } = await this.locate(ids, dest)
      const moved = { chunks: 0, bytes: 0 }
      try {
        await this.copyTo(dest, items, report, moved)
      } catch (err) {
        report.errors.push({ message: `moving ${items.length} restore-point chunks to ${dest}: ${(err as Error).message}` })
        this.deps.log.error('restore-point data move failed; it stays readable where it is and is retried', { dest, err })
        continue
      } finally {
        report.pointChunksMoved += moved.chunks
        report.pointBytesMoved += moved.bytes
      }
      for (const p of sources) await this.freeIfDead(p, report)
    }
    if (found.chunks.size > 0 || found.held > 0) {
      this.deps.log.info('restore-point data pass', { chunks: report.pointChunksMoved, bytes: report.pointBytesMoved, held: found.held, more: found.resume !== undefined })
    }
  }

  /** Files marked as being moved (a pass that stopped before seeing them through). */
  private async unsettled(): Promise<Set<Ino>> {
    const names = await this.deps.meta.sysNames(MOVING)
    return new Set(names.map((n) => asIno(Number(n.slice(MOVING.length)))))
  }

  private async settle(inos: Ino[]): Promise<void> {
    const txn = this.deps.meta.begin()
    for (const ino of inos) txn.deleteSys(MOVING + ino)
    await txn.commit()
  }

  /** Removes what failed or interrupted moves left behind (see stray-objects.ts). */
  async clearStrays(): Promise<void> {
    await clearStrays(this.deps.meta, this.deps.tiers, this.deps.log)
  }

  /**
   * Repacks sparse packs off the write tier (the write tier's are prune's): a sealed pack whose
   * live bytes fell below `repackBelow` of its size has its live chunks copied into new packs on
   * its own tier (copy -> verify -> commit, a compare-and-set per chunk, as any move), after which
   * no live chunk points into it and it is freed (at once on object tiers; prune frees dead cold
   * packs). Within what is left of the pass's byte budget (`spent` so far). A cold pack is listed
   * and read through recalls: the pass that first wants it starts them and counts it waiting; a
   * later pass finds it staged.
   */
  private async repackSparse(sparse: PackRecord[], spent: number, report: PassReport): Promise<void> {
    const { meta, chunks } = this.deps
    for (const p of sparse) {
      if (spent >= this.config.maxBytesPerPass) break
      try {
        const entries = await chunks.packEntries(p.id)
        const recs = await meta.getChunks(entries.map((e) => e.id))
        const items = recs.filter((r, k): r is ChunkRecord => r !== undefined && r.pack === p.id && r.offset === entries[k]?.offset && r.refs > 0)
        // No live record in its trailer (the counts disagree) is fsck's to report, not a repack.
        if (items.length === 0) continue
        await this.copyTo(p.tier, items, report)
        spent += p.liveBytes
        report.packsRepacked++
        await this.freeIfDead(p.id, report)
      } catch (err) {
        if (isCode(err, 'AGAIN')) report.repacksWaiting++
        else report.errors.push({ message: `repacking sparse pack ${p.id} on ${p.tier}: ${(err as Error).message}` })
      }
    }
  }

  /**
   * One scan of the pack index at the end of a pass, then:
   * - sparse packs off the write tier are repacked (`repackSparse`): below `repackBelow` live,
   *   and for cold tiers at least `coldMinAgeMs` old;
   * - every sealed pack with no live bytes on a tier that can be read without a recall is freed:
   *   the sources of a move that was interrupted between commit and free, and the write tier's
   *   open pack of moved files once it has been finished. Dead packs on cold tiers are prune's
   *   (it honours their minimum storage age and checks the whole chunk index).
   */
  private async tendPacks(nowMs: number, spent: number, report: PassReport): Promise<void> {
    const { meta, tiers, chunks } = this.deps
    const dead: PackId[] = []
    const sparse: PackRecord[] = []
    for await (const p of meta.packs()) {
      if (p.state !== 'sealed' || !tiers.has(p.tier)) continue
      if (p.liveBytes === 0) {
        if (!tiers.get(p.tier).capabilities.needsWarmup) dead.push(p.id)
      } else if (p.tier !== chunks.writeTier && p.liveBytes < p.size * this.config.repackBelow
        && (tiers.kindOf(p.tier) !== 'cold' || nowMs - p.createdMs >= this.config.coldMinAgeMs)) {
        sparse.push(p)
      }
    }
    await this.repackSparse(sparse, spent, report)
    for (const id of dead) {
      try {
        await this.freeIfDead(id, report)
      } catch (err) {
        report.errors.push({ message: `freeing dead pack ${id}: ${(err as Error).message}` })
      }
    }
  }

  /**
   * Moves the data of these files to their destination tiers. With a policy set, chunks that a
   * file staying warmer, or a restore point whose workflow wants them warmer, also references
   * are held back (placement rule); without one (manual `tierfs migrate`), the named files'
   * chunks move regardless.
   */
  async moveFiles(files: Array<{ ino: Ino; path: string; to: TierId }>, report = emptyReport(), set?: PolicySet, nowMs = Date.now()): Promise<PassReport> {
    const { meta, tiers } = this.deps
    const byDest = new Map<TierId, Array<{ ino: Ino; path: string }>>()
    for (const f of files) {
      const g = byDest.get(f.to)
      if (g === undefined) byDest.set(f.to, [f])
      else g.push(f)
    }
    for (const [dest, group] of byDest) {
      const mark = meta.begin()
      for (const f of group) mark.putSys(MOVING + f.ino, Buffer.from(dest))
      await mark.commit({ sync: true })
      crashPoint('migrate:marked')
      const want = new Map<ChunkId, number>()
      for (const f of group) {
        const map = await meta.getFileMap(f.ino)
        if (map?.kind === 'extents') for (const e of map.extents) want.set(e.id, e.length)
      }
      const held = set === undefined ? new Set<ChunkId>() : await this.holdWarm(want, tiers.rank(dest), set, nowMs, new Set(group.map((g) => g.ino)))
      report.chunksHeldWarm += held.size
      const { items: toCopy, sources } = await this.locate(want.keys(), dest)
      this.moving = group.length
      try {
        await this.copyTo(dest, toCopy, report)
      } catch (err) {
        report.filesFailed += group.length
        report.errors.push({ message: `moving ${group.length} files to ${dest}: ${(err as Error).message}` })
        this.deps.log.error('migration failed; files stay readable where they are and the move is retried', { dest, err })
        continue
      } finally {
        this.moving = 0
      }
      for (const f of group) {
        // A file whose chunks were partly held warm keeps its tier, so later passes retry it;
        // so does one with a chunk that moved elsewhere meanwhile (a seal or repack got it first).
        if (!(await this.allOn(f.ino, dest, held))) continue
        await this.deps.setTier(f.ino, dest)
        report.filesMoved++
        report.bytesMoved += (await meta.getInode(f.ino))?.size ?? 0
      }
      // Seen through: moved, or held (a decision, retried by the next pass like any other).
      await this.settle(group.map((f) => f.ino))
      for (const p of sources) await this.freeIfDead(p, report)
    }
    return report
  }

  /** True when every chunk of the file is on `dest` and none was held back. */
  private async allOn(ino: Ino, dest: TierId, held: Set<ChunkId>): Promise<boolean> {
    const { meta } = this.deps
    const map = await meta.getFileMap(ino)
    if (map?.kind !== 'extents') return true
    const packs = new Map<PackId, TierId | undefined>()
    for (const e of map.extents) {
      if (held.has(e.id)) return false
      const rec = await meta.getChunk(e.id)
      if (rec === undefined) return false
      if (!packs.has(rec.pack)) packs.set(rec.pack, (await meta.getPack(rec.pack))?.tier)
      if (packs.get(rec.pack) !== dest) return false
    }
    return true
  }

  /**
   * Moves from `want` to the returned set the chunks that a current file outside `moving`, or a
   * restore point (by its workflow's chain), needs warmer than the destination.
   */
  private async holdWarm(want: Map<ChunkId, number>, destRank: number, set: PolicySet, nowMs: number, moving: Set<Ino>): Promise<Set<ChunkId>> {
    const held = new Set<ChunkId>()
    const hold = { visit: (id: ChunkId) => { if (want.delete(id)) held.add(id) }, done: () => want.size === 0 }
    await visitWarmerFiles(this.deps, set, nowMs, { below: destRank, skip: moving, ...hold })
    if (want.size > 0) await visitWarmerPoints(this.deps, set, nowMs, { below: destRank, ...hold })
    return held
  }

  /**
   * The chunks to copy to `dest` (those not there already), each with its location now (the
   * compare-and-set origin of its move), and the packs they leave.
   */
  private async locate(ids: Iterable<ChunkId>, dest: TierId): Promise<{ items: CopyItem[]; sources: Set<PackId> }> {
    const { meta } = this.deps
    const items: CopyItem[] = []
    const sources = new Set<PackId>()
    for (const id of ids) {
      const rec = await meta.getChunk(id)
      if (rec === undefined) continue
      const pack = await meta.getPack(rec.pack)
      if (pack === undefined || pack.tier === dest) continue
      items.push(rec)
      sources.add(rec.pack)
    }
    return { items, sources }
  }

  /**
   * Copies chunks into new packs on `dest`, verifies each upload and commits the new locations.
   * Packs are built one at a time (reading and encoding chunks is work on this thread) while up to
   * `uploads` finished ones travel, so building overlaps the network. An upload's slot is free once
   * its bytes are sent: its verify and commit go on while the next pack travels. In-memory packs
   * held at once are at most uploads + 1, within SCRATCH_BYTES (scratch files of big cold packs
   * may outlive their slot by a verify, a HEAD). Each pack's commit stands alone. Each move is a
   * compare-and-set on the chunk's location when it was read, so a chunk that a seal or repack
   * relocated meanwhile stays where they put it. The first failure stops the building; uploads
   * under way finish (or fail) before it is thrown. `moved` adds up the chunks (and their
   * uncompressed bytes) of the packs committed, failure or not.
   */
  private async copyTo(dest: TierId, items: CopyItem[], report: PassReport, moved = { chunks: 0, bytes: 0 }): Promise<void> {
    const tier = this.deps.tiers.get(dest)
    const packSize = this.deps.tiers.kindOf(dest) === 'cold' ? this.config.coldPackSize : this.config.objectPackSize
    const uploads = Math.max(1, Math.min(MAX_UPLOADS, tier.capabilities.maxConnections, Math.floor(SCRATCH_BYTES / packSize)))
    await mkdir(this.deps.outgoing, { recursive: true })
    // Uploads in flight (each holds a slot until its put returns) and whole ships (verify, commit).
    const running = new Set<Promise<void>>()
    const shipping = new Set<Promise<void>>()
    const probe = new CompressionProbe(this.config.compress)
    const source = new CopySource(items, this.deps.chunks, READ_AHEAD)
    // Memory of packs shipped, for the next ones (in-memory packs only; see PackImage).
    const spare: Buffer[] = []
    let failed: { err: unknown } | undefined
    let i = 0
    try {
      while (i < items.length && failed === undefined) {
        const built = await this.buildPack(items, i, packSize, { probe, source, spare })
        i = built.next
        while (running.size >= uploads && failed === undefined) await Promise.race(running)
        if (failed !== undefined) {
          await discard(built)
          break
        }
        let release = (): void => undefined
        const upload: Promise<void> = new Promise<void>((done) => { release = done }).finally(() => running.delete(upload))
        running.add(upload)
        // The next upload starts once this one's bytes are sent; its verify and commit go on meanwhile.
        const ship: Promise<void> = this.ship(tier, built, report, moved, () => {
          if (built.memory !== undefined) spare.push(built.memory)
          release()
        })
          .catch((err: unknown) => { failed ??= { err } })
          .finally(() => {
            release()
            shipping.delete(ship)
          })
        shipping.add(ship)
      }
    } finally {
      await Promise.all(shipping)
    }
    if (failed !== undefined) throw failed.err
  }

  /**
   * Appends chunks from `items[from]` on into a new pack until it reaches `packSize`: in memory
   * when a pack that size may be held (object tiers), else as a file in the scratch directory.
   */
  private async buildPack(items: CopyItem[], from: number, packSize: number, use: { probe: CompressionProbe; source: CopySource; spare: Buffer[] }): Promise<BuiltPack> {
    const { probe, source, spare } = use
    const packId = asPackId(randomBytes(16).toString('hex'))
    const inMemory = packSize <= MEMORY_PACK_MAX
    const local = join(this.deps.outgoing, `${packId}.pack`)
    const image = inMemory ? new PackImage(packId, spare.pop() ?? Buffer.allocUnsafe(packSize + IMAGE_SLACK)) : undefined
    const writer = inMemory ? undefined : await PackWriter.create(local, packId)
    const out = (image ?? writer) as PackImage | PackWriter
    const moved: BuiltPack['moved'] = []
    let i = from
    try {
      while (i < items.length && out.size < packSize) {
        const item = items[i] as CopyItem
        // The next chunks' reads (disk, or a colder tier) overlap this one's hashing and encoding.
        const { raw, stored } = await source.get(i++)
        // A record stored raw is compressed now if the probe says so; one stored compressed stays.
        const encoded = stored !== undefined && (stored.codec !== CODEC_NONE || !probe.tryNext) ? stored : encodeChunk(raw, { compress: probe.tryNext })
        probe.record(encoded.codec !== CODEC_NONE)
        const entry = image !== undefined ? image.append(item.id, encoded, raw.length) : await (writer as PackWriter).append(item.id, encoded, raw.length)
        moved.push({ item, offset: entry.offset, length: entry.length, codec: entry.codec })
      }
      const key = packKey(packId)
      if (image !== undefined) {
        const { data, entries } = image.finish()
        return { packId, key, source: { data }, memory: image.memory, size: data.length, entries: entries.length, moved, next: i }
      }
      const { size, entries } = await (writer as PackWriter).finish()
      return { packId, key, source: { file: local }, size, entries: entries.length, moved, next: i }
    } catch (err) {
      if (writer !== undefined) await rm(local, { force: true })
      throw err
    } finally {
      await writer?.close()
    }
  }

  /**
   * Uploads a built pack (noted first), verifies it and commits it; removes the local file.
   * `uploaded` is called once the put has returned: the pack's memory is no longer read.
   */
  private async ship(tier: ReturnType<TierSet['get']>, p: BuiltPack, report: PassReport, moved: { chunks: number; bytes: number }, uploaded: () => void): Promise<void> {
    const { meta } = this.deps
    let noted = false
    let committed = false
    try {
      await noteStray(meta, tier.id, p.key)
      noted = true
      crashPoint('migrate:noted')
      await tier.put(p.key, p.source)
      crashPoint('migrate:uploaded')
      uploaded()
      await verifyUpload(tier, p.key, p.size, p.entries)
      crashPoint('migrate:verified')
      const rec: PackRecord = { id: p.packId, tier: tier.id, key: p.key, state: 'sealed', size: p.size, liveBytes: 0, chunkCount: p.entries, createdMs: Date.now() }
      const txn = meta.begin().putPack(rec).deleteSys(strayName(tier.id, p.key))
      for (const m of p.moved) txn.moveChunk(m.item.id, { pack: p.packId, offset: m.offset, length: m.length, codec: m.codec }, { from: { pack: m.item.pack, offset: m.item.offset } })
      await txn.commit({ sync: true })
      crashPoint('migrate:committed')
      committed = true
      report.packsWritten++
      report.chunksCopied += p.moved.length
      moved.chunks += p.moved.length
      for (const m of p.moved) moved.bytes += m.item.rawLength
    } finally {
      await discard(p)
      if (noted && !committed) await this.removeUpload(tier, p.key)
    }
  }

  /** Best effort after a failed upload or commit: what stays is removed by `clearStrays` later. */
  private async removeUpload(tier: ReturnType<TierSet['get']>, key: string): Promise<void> {
    try {
      await tier.delete(key)
      await dropStray(this.deps.meta, tier.id, key)
    } catch (err) {
      this.deps.log.warn('a failed upload could not be removed now; it is retried before the next pass', { tier: tier.id, key, err })
    }
  }

  /**
   * Deletes a pack that no referenced chunk uses any more. Under the namespace lock (no seal can
   * commit a new reference meanwhile): dead chunk records that still point into it are deleted
   * with the pack record in one commit; only then is the object removed from its tier.
   */
  async freeIfDead(id: PackId, report: PassReport): Promise<void> {
    const { meta, tiers } = this.deps
    const pack = await meta.getPack(id)
    if (pack === undefined || pack.state !== 'sealed' || pack.liveBytes > 0) return
    const tier = tiers.get(pack.tier)
    // Listing a cold pack's chunks would need a recall, and a dead chunk record left pointing
    // into a deleted pack is damage: prune frees those, from the whole chunk index.
    if (tier.capabilities.needsWarmup && tier.localPath(pack.key) === undefined) return
    const ra: RandomAccess = { size: async () => pack.size, read: (o, l) => tier.get(pack.key, { offset: o, length: l }) }
    let ids: ChunkId[]
    try {
      ids = (await readTrailer(ra)).entries.map((e) => e.id)
    } catch (err) {
      this.deps.log.warn('cannot list a dead pack; kept for fsck', { pack: id, err })
      return
    }
    const freed = await this.deps.lock.run(async () => {
      const txn = meta.begin()
      for (const cid of ids) {
        const c = await meta.getChunk(cid)
        if (c === undefined || c.pack !== id) continue
        if (c.refs > 0) return false
        txn.deleteChunk(cid)
      }
      const again = await meta.getPack(id)
      if (again === undefined || again.state !== 'sealed' || again.liveBytes > 0) return false
      await noteStrayIn(txn.deletePack(id), pack.tier, pack.key).commit({ sync: true })
      return true
    })
    if (!freed) return
    crashPoint('migrate:unrecorded')
    this.deps.chunks.forgetPack(id)
    await tier.delete(pack.key)
    crashPoint('migrate:freed')
    await dropStray(meta, pack.tier, pack.key)
    report.packsFreed++
    report.bytesFreed += pack.size
  }
}

async function verifyUpload(tier: ReturnType<TierSet['get']>, key: string, size: number, entries: number): Promise<void> {
  const head = await tier.head(key)
  if (head === undefined || head.size !== size) {
    throw TierfsError.corrupt(`upload of ${key} to ${tier.id} did not verify: ${head?.size ?? 'no object'} bytes, expected ${size}`)
  }
  if (tier.capabilities.needsWarmup || !tier.capabilities.rangeReads) return
  const back = await readTrailer({ size: async () => size, read: (o, l) => tier.get(key, { offset: o, length: l }) })
  if (back.entries.length !== entries) throw TierfsError.corrupt(`upload of ${key} to ${tier.id}: trailer lists ${back.entries.length} chunks, expected ${entries}`)
}

/** Chunks read ahead while a pack is built. */
const READ_AHEAD = 3
/** Packs uploaded at once by one move (bounded again by the tier's maxConnections). */
const MAX_UPLOADS = 4
/** Memory or scratch space a move may use for packs being uploaded: uploads * pack size stays within it. */
const SCRATCH_BYTES = 128 * 1024 * 1024

/** Packs up to this size are built in memory (at most MAX_UPLOADS + 1 of them at a time). */
const MEMORY_PACK_MAX = 32 * 1024 * 1024
/** Room past the pack size for the record that crosses it and the trailer (more is allocated if needed). */
const IMAGE_SLACK = 5 * 1024 * 1024

/** A pack built in memory or in the scratch directory, ready to upload. */
interface BuiltPack {
  packId: PackId
  key: string
  source: { data: Buffer } | { file: string }
  /** The memory an in-memory pack was built in (`source.data` is a view of it). */
  memory?: Buffer
  size: number
  entries: number
  moved: Array<{ item: CopyItem; offset: number; length: number; codec: number }>
  /** Index of the first item not in this pack. */
  next: number
}

/** Errors a plan lists (it counts them all). */
const MAX_PLAN_ERRORS = 1000

/** Sys name prefix of the marks of files being moved: `moving/<ino>` -> destination tier id. */
const MOVING = 'moving/'

/** Removes a built pack's scratch file, if it has one. */
async function discard(p: BuiltPack): Promise<void> {
  if ('file' in p.source) await rm(p.source.file, { force: true })
}

/** A report of nothing done yet. */
export function emptyReport(): PassReport {
  return {
    filesMoved: 0, bytesMoved: 0, chunksCopied: 0, packsWritten: 0, packsFreed: 0, bytesFreed: 0, filesDeleted: 0, filesFailed: 0, chunksHeldWarm: 0,
    pointChunksMoved: 0, pointBytesMoved: 0, packsRepacked: 0, repacksWaiting: 0, errors: [],
  }
}
