import { CronJob } from 'cron'
import { join } from 'node:path'
import { TierfsError } from '../src/errors.js'
import { DEFAULT_MIN_COLD_AGE_MS } from '../src/backup/prune.js'
import { asTierId, type Ino, type TierId } from '../src/ids.js'
import type { Logger } from '../src/log.js'
import type { PolicySet } from '../src/policy/decide.js'
import { Migrator, type PassReport } from '../src/policy/migrator.js'
import { walkFiles } from '../src/policy/namespace-walk.js'
import { fileFacts, type PlanSummary } from '../src/policy/planner.js'
import type { OpenStore } from '../src/store/open-store.js'
import type { TierfsVfs } from '../src/vfs/tierfs-vfs.js'

export type TieringDeps = {
  store: OpenStore
  vfs: TierfsVfs
  log: Logger
  policies: () => PolicySet
  /** Wall clock in ms, with the injected offset (TIERFS_CLOCK_OFFSET) applied. */
  nowMs: () => number
}

/**
 * Policy passes, manual moves and recalls for the daemon: owns the cron job of passes and answers
 * the tiering control commands. One pass at a time; a manual command waits for a running pass.
 */
export class Tiering {
  readonly migrator: Migrator
  private job: CronJob | undefined
  private running: Promise<unknown> = Promise.resolve()
  private passes = 0
  private failures = 0
  private last: (PassReport & { at: string }) | undefined
  private busy = false
  private pending = 0
  private failedMovesTotal = 0

  constructor(private readonly deps: TieringDeps) {
    const { store, vfs } = deps
    this.migrator = new Migrator({
      meta: store.meta, chunks: store.chunks, tiers: store.tiers, lock: vfs.lock, log: deps.log,
      outgoing: join(store.layout.tierDir(store.config, 'block'), 'outgoing'),
      deleteFile: (path) => vfs.unlink(path),
      setTier: (ino, tier) => vfs.lock.run(async () => {
        const a = await store.meta.getInode(ino)
        if (a !== undefined && a.tier !== tier) await store.meta.begin().putInode({ ...a, tier }).commit()
      }),
    }, {
      objectPackSize: store.config.migrate.objectPackSize, coldPackSize: store.config.migrate.coldPackSize,
      maxBytesPerPass: store.config.migrate.maxBytesPerPass, compress: true,
      repackBelow: store.config.migrate.repackBelow, coldMinAgeMs: DEFAULT_MIN_COLD_AGE_MS,
    })
  }

  start(): void {
    const schedule = this.deps.store.config.migrate.schedule
    if (schedule === '') return
    this.job = CronJob.from({ cronTime: schedule, onTick: () => { void this.apply().catch(() => undefined) }, start: true })
  }

  stop(): void {
    void this.job?.stop()
    this.job = undefined
  }

  /** Serializes tiering work. */
  private exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.running.then(async () => {
      this.busy = true
      try {
        return await fn()
      } finally {
        this.busy = false
      }
    })
    this.running = run.catch(() => undefined)
    return run
  }

  /** Runs one policy pass now. */
  apply(): Promise<PassReport> {
    return this.exclusive(async () => {
      try {
        const r = await this.migrator.pass(this.deps.policies(), this.deps.nowMs())
        this.passes++
        const { planned, ...report } = r
        // Moves beyond the pass's byte budget (and failed ones) wait for the next pass.
        this.pending = Math.max(0, planned.length - report.filesMoved - report.filesDeleted)
        this.failedMovesTotal += report.filesFailed
        this.last = { ...report, at: new Date().toISOString() }
        this.deps.log.info('policy pass', { ...report, errors: report.errors.slice(0, 20) })
        for (const e of report.errors) this.deps.log.error('policy pass error', e)
        return report
      } catch (err) {
        this.failures++
        this.deps.log.error('policy pass failed', { err })
        throw err
      }
    })
  }

  plan(): Promise<PlanSummary> {
    return this.migrator.plan(this.deps.policies(), this.deps.nowMs())
  }

  async explain(path: string): Promise<unknown> {
    const { vfs, store } = this.deps
    const ino = await vfs.resolve(path)
    const a = await store.meta.getInode(ino)
    if (a === undefined) throw TierfsError.notFound(path)
    const kind = store.tiers.kindOf(a.tier)
    const set = this.deps.policies()
    // The same facts a pass decides on, so explain never disagrees with what the pass does.
    const d = set.decide(fileFacts(path, a, store.tiers), this.deps.nowMs())
    return { path, tier: a.tier, kind, ...d, candidates: set.policies.map((p) => p.name) }
  }

  /** Moves the named files (directories with `recursive`) to a tier or target by hand. */
  migrate(paths: string[], to: string, recursive: boolean): Promise<PassReport> {
    return this.exclusive(async () => {
      const dest = this.toTier(to)
      const files = await this.collect(paths, recursive)
      await this.migrator.clearStrays()
      return this.migrator.moveFiles(files.map((f) => ({ ...f, to: dest })))
    })
  }

  /**
   * Starts recalls of the cold packs the files use (again for any whose job failed or expired;
   * never for one warm or warming), and says how many are warm; `tierfs recall --wait` calls it
   * until all are.
   */
  async recall(paths: string[], recursive: boolean): Promise<unknown> {
    const { store } = this.deps
    const files = await this.collect(paths, recursive)
    const packs = new Map<string, { tier: TierId; key: string }>()
    for (const f of files) {
      const map = await store.meta.getFileMap(f.ino)
      if (map?.kind !== 'extents') continue
      for (const e of map.extents) {
        const c = await store.meta.getChunk(e.id)
        const p = c === undefined ? undefined : await store.meta.getPack(c.pack)
        if (p !== undefined && store.tiers.get(p.tier).capabilities.needsWarmup) packs.set(p.id, { tier: p.tier, key: p.key })
      }
    }
    const recaller = store.chunks.recaller
    let warm = 0
    for (const p of packs.values()) {
      const tier = store.tiers.get(p.tier)
      const w = await recaller.warmth(tier, p.key)
      if (w === 'warm') warm++
      // Never asked, or cold again (the job failed or expired): ask; a warm-up under way goes on.
      else if (w === 'cold') await recaller.recall(tier, p.key)
    }
    return { files: files.length, packs: packs.size, warm }
  }

  status(): Record<string, unknown> {
    return {
      passes: this.passes, failures: this.failures, running: this.busy, moving: this.migrator.movingNow, pending: this.pending,
      failedMoves: this.last?.filesFailed ?? 0, failedMovesTotal: this.failedMovesTotal, lastPass: this.last,
      recallsInFlight: this.deps.store.chunks.recaller.inFlight,
    }
  }

  private toTier(to: string): TierId {
    const tiers = this.deps.store.tiers
    const id = asTierId(to)
    if (!tiers.has(id)) throw new TierfsError('CONFIG', `unknown tier or target ${JSON.stringify(to)} (known: ${tiers.all().map(([k]) => k).join(', ')})`)
    return id
  }

  private async collect(paths: string[], recursive: boolean): Promise<Array<{ ino: Ino; path: string }>> {
    const { vfs, store } = this.deps
    const out = new Map<Ino, { ino: Ino; path: string }>()
    for (const path of paths) {
      const ino = await vfs.resolve(path)
      const a = await store.meta.getInode(ino)
      if (a === undefined) throw TierfsError.notFound(path)
      if (a.type === 'file') out.set(ino, { ino, path })
      else if (a.type === 'dir') {
        if (!recursive) throw TierfsError.isDir(`${path} (use -r)`)
        for await (const f of walkFiles(store.meta, undefined, ino, path)) out.set(f.attrs.ino, { ino: f.attrs.ino, path: f.path })
      }
    }
    return [...out.values()]
  }
}
