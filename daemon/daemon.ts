import { CronJob } from 'cron'
import { createWriteStream, type WriteStream } from 'node:fs'
import { mkdir } from 'node:fs/promises'
import { isAbsolute, join } from 'node:path'
import type { Server } from 'node:net'
import { TierfsError } from '../src/errors.js'
import { checkMountpoint, DEFAULT_MOUNT_OPTIONS, mountedAt, mountVfs, type Mounted } from '../src/fuse/mount.js'
import { jsonLogger, type Logger } from '../src/log.js'
import { serveControl, type ControlRequest } from '../src/store/control.js'
import { StoreLayout } from '../src/store/layout.js'
import { openStore, type OpenStore } from '../src/store/open-store.js'
import { register, unregister } from '../src/store/registry.js'
import { computeStatus } from '../src/store/status.js'
import { tierState } from '../src/store/tier-state.js'
import { Staging } from '../src/vfs/staging.js'
import { TierfsVfs } from '../src/vfs/tierfs-vfs.js'
import { RestorePoints } from '../src/backup/restore-points.js'
import { BackupService } from '../src/backup/backup-service.js'
import { prune, type PruneReport } from '../src/backup/prune.js'
import type { Retention } from '../src/policy/policy-file.js'
import { PolicyDir } from '../src/policy/policy-dir.js'
import { unusableTargets } from '../src/policy/planner.js'
import { Tiering } from './tiering.js'
import { Checkpoints } from './checkpoints.js'
import { serveMetrics } from './metrics-server.js'
import { clockOffsetMs } from './clock-offset.js'
import { armCrash, armedCrash, crashPointNamed } from '../src/crash-point.js'

export interface DaemonArgs {
  store: string
  mountpoint: string
  /** Raw `-o` options. */
  options: string[]
  /** Log to stderr as well as the log file. */
  foreground: boolean
}

/** Errors that are ordinary POSIX answers, not worth a log line. */
const QUIET = new Set(['NOT_FOUND', 'EXISTS', 'NOT_EMPTY', 'NO_XATTR', 'RANGE', 'NOT_DIR', 'IS_DIR', 'ACCESS', 'PERM', 'INVALID', 'NAME_TOO_LONG', 'NOT_SUPPORTED', 'READ_ONLY', 'AGAIN'])

/**
 * The composition root: opens the store, builds the layers bottom-up, mounts, serves the control
 * socket, owns the timers and the shutdown sequence. Only this process-level code calls exit.
 */
export class Daemon {
  private store: OpenStore | undefined
  private vfs: TierfsVfs | undefined
  private restorePoints: RestorePoints | undefined
  private policies: PolicyDir | undefined
  private tiering: Tiering | undefined
  private checkpoints: Checkpoints | undefined
  private metricsServer: Server | undefined
  private backup: BackupService | undefined
  /** Injected clock offset (TIERFS_CLOCK_OFFSET or the 'clock-offset' command), for tests and demos. */
  private clockOffset = clockOffsetMs(process.env.TIERFS_CLOCK_OFFSET)
  /** Wall clock plus the injected offset: what policy ages and schedules see. */
  readonly nowMs = (): number => Date.now() + this.clockOffset
  private mounted: Mounted | undefined
  private control: Server | undefined
  private timers: NodeJS.Timeout[] = []
  private pruneJob: CronJob | undefined
  private logStream: WriteStream | undefined
  private stopping: Promise<void> | undefined
  log: Logger = jsonLogger((l) => process.stderr.write(l))

  constructor(private readonly args: DaemonArgs) {}

  async start(): Promise<void> {
    const layout = new StoreLayout(this.args.store)
    await mkdir(layout.logDir, { recursive: true })
    this.logStream = createWriteStream(layout.log, { flags: 'a' })
    const toFile = (l: string): void => { this.logStream?.write(l) }
    this.log = jsonLogger(this.args.foreground ? (l) => { toFile(l); process.stderr.write(l) } : toFile)
    // The mount point is checked first: a bad one is the error to report even when the store is busy.
    await checkMountpoint(this.args.mountpoint, this.args.options.includes('nonempty'))
    const store = (this.store = await openStore(this.args.store, this.log))
    this.log = jsonLogger(this.args.foreground ? (l) => { toFile(l); process.stderr.write(l) } : toFile, store.config.log.level)
    const staging = new Staging(layout.staging(store.config))
    const vfs = (this.vfs = new TierfsVfs(
      {
        meta: store.meta, chunks: store.chunks, staging, blockTier: store.block, log: this.log,
        historyWindowMs: store.config.history.windowHours * 3_600_000,
        tierState: (a, asOf) => tierState(a, store.meta, store.tiers, store.chunks, asOf),
      },
      { inlineMax: store.config.inlineMax, ...store.config.seal },
    ))
    await vfs.ready()
    this.restorePoints = new RestorePoints({
      meta: store.meta, sealAll: () => vfs.sealAll(), invalidateViews: () => vfs.views.invalidate(), nowMs: () => Date.now(),
      resolveDir: async (path) => {
        const st = await vfs.getattr(path)
        if ((st.mode & 0o170000) !== 0o040000) throw TierfsError.notDir(path)
        return vfs.resolve(path)
      },
    })
    const extra = this.args.options.filter((o) => o !== '' && o !== 'defaults' && o !== 'rw')
    this.mounted = await mountVfs(this.args.mountpoint, vfs, {
      ...DEFAULT_MOUNT_OPTIONS, ...store.config.mount, extra, debug: extra.includes('debug'),
    }, (op, path, err) => {
      if (err instanceof TierfsError && QUIET.has(err.code)) return
      this.log.error('operation failed', { op, path, err })
    })
    await mkdir(layout.runDir, { recursive: true })
    this.control = await serveControl(layout.socket, (req) => this.handle(req))
    await register({ mountpoint: this.mounted.mountpoint, store: layout.root, socket: layout.socket, pid: process.pid })
    this.scheduleCollect()
    this.watchMount(this.mounted.mountpoint)
    this.backup = new BackupService({
      meta: store.meta, vfs, restorePoints: this.restorePoints, log: this.log, nowMs: this.nowMs,
      historyWindowMs: store.config.history.windowHours * 3_600_000,
      excludeFromIngest: [this.mounted.mountpoint, layout.root],
      reloadPolicies: async () => { await this.reloadPolicies() },
    })
    const policyDir = isAbsolute(store.config.policies.dir) ? store.config.policies.dir : join(layout.root, store.config.policies.dir)
    this.policies = new PolicyDir(policyDir)
    await this.reloadPolicies()
    this.backup.start()
    const reload = setInterval(() => { void this.reloadPolicies() }, store.config.policies.reloadSeconds * 1000)
    reload.unref()
    this.timers.push(reload)
    this.tiering = new Tiering({ store, vfs, log: this.log, policies: () => this.policies?.set ?? new PolicyDir('').set, nowMs: this.nowMs })
    this.tiering.start()
    this.schedulePrune(store.config.prune.schedule)
    this.checkpoints = new Checkpoints({ store, sealAll: () => vfs.sealAll(), log: this.log })
    await this.checkpoints.start()
    if (store.config.metrics.port > 0) {
      this.metricsServer = await serveMetrics(store.config.metrics.port, async () => (await this.handle({ cmd: 'status' })) as Record<string, unknown>)
    }
    this.log.info('mounted', { store: layout.root, mountpoint: this.mounted.mountpoint, pid: process.pid })
  }

  /** Re-reads policy files; broken ones are logged with file:line:col and keep their last good version. */
  async reloadPolicies(): Promise<{ errors: Array<{ file: string; message: string }>; policies: string[] }> {
    const dir = this.policies
    if (dir === undefined) return { errors: [], policies: [] }
    try {
      const r = await dir.reload()
      // A step naming a target the config does not define (or one of another kind) is reported
      // now; the policy stays in force and its files stay where they are, each pass saying why.
      const targets = this.store === undefined ? [] : unusableTargets(dir.set, this.store.tiers)
      if (r.changed || r.errors.length > 0) {
        for (const e of r.errors) this.log.error('policy file rejected; its last good version stays in force', { file: e.file, error: e.message })
        if (r.changed) {
          this.log.info('policies loaded', { dir: dir.dir, policies: dir.set.policies.map((p) => p.name) })
          for (const e of targets) this.log.error('policy names a target it cannot use; its files stay where they are', { file: e.file, error: e.message })
          this.backup?.setPolicies(dir.set)
        }
      }
      return { errors: [...r.errors, ...targets], policies: dir.set.policies.map((p) => p.name) }
    } catch (err) {
      this.log.error('policies directory unreadable; keeping the last good set', { dir: dir.dir, err })
      return { errors: [{ file: dir.dir, message: (err as Error).message }], policies: dir.set.policies.map((p) => p.name) }
    }
  }

  /** A plain `umount` (or fusermount -u) ends the mount behind our back: stop cleanly then. */
  private watchMount(mountpoint: string): void {
    const t = setInterval(() => {
      void mountedAt(mountpoint).then((type) => {
        if (type === undefined && this.stopping === undefined) void this.stop('unmounted externally').then(() => process.exit(0))
      })
    }, 2000)
    t.unref()
    this.timers.push(t)
  }

  /** Prunes on the config's schedule (retention, then garbage collection), logging what it freed. */
  private schedulePrune(schedule: string): void {
    if (schedule === '') return
    const tick = async (): Promise<void> => {
      try {
        const r = await this.prune(false)
        this.log.info('scheduled prune finished', {
          pointsRemoved: r.pointsRemoved.length, versionsDropped: r.versionsDropped, chunksFreed: r.chunksFreed,
          packsDeleted: r.packsDeleted, packsRepacked: r.packsRepacked, bytesFreed: r.bytesFreed, totalMs: Math.round(r.totalMs),
        })
      } catch (err) {
        this.log.error('scheduled prune failed; the next one retries', { err })
      }
    }
    this.pruneJob = CronJob.from({ cronTime: schedule, onTick: () => { void tick() }, start: true })
  }

  private scheduleCollect(): void {
    const cfg = this.store?.config.history
    if (cfg === undefined || cfg.collectEveryMinutes <= 0) return
    const t = setInterval(() => { void this.collect() }, cfg.collectEveryMinutes * 60_000)
    t.unref()
    this.timers.push(t)
  }

  /** Drops versions older than the history window that no restore point needs. */
  async collect(): Promise<{ versionsDropped: number; chunksFreed: number }> {
    const store = this.store
    if (store === undefined) return { versionsDropped: 0, chunksFreed: 0 }
    const horizonMs = Date.now() - store.config.history.windowHours * 3_600_000
    const r = await store.meta.collect(store.meta.versionAt(horizonMs))
    this.log.info('collected old versions', { versionsDropped: r.versionsDropped, chunksFreed: r.chunksFreed.length })
    return { versionsDropped: r.versionsDropped, chunksFreed: r.chunksFreed.length }
  }

  /**
   * Applies each workflow's retention (policies' backup.retain), drops versions nothing needs and
   * frees unreferenced chunks and packs, while the mount stays in use (see src/backup/prune.ts).
   */
  async prune(dryRun: boolean): Promise<PruneReport> {
    const store = this.store
    const vfs = this.vfs
    if (store === undefined || vfs === undefined) throw new TierfsError('NO_DAEMON', 'daemon is starting')
    const retention = new Map<string, Retention>()
    for (const p of this.policies?.set.policies ?? []) {
      if (p.backup !== undefined && !retention.has(p.backup.name)) retention.set(p.backup.name, p.backup.retain)
    }
    return prune({
      meta: store.meta, chunks: store.chunks, tiers: store.tiers, packSize: store.config.packSize,
      invalidateViews: () => vfs.views.invalidate(), log: this.log,
    }, {
      dryRun, retention, nowMs: this.nowMs(), historyWindowMs: store.config.history.windowHours * 3_600_000,
      packLiveThreshold: store.config.migrate.repackBelow,
    })
  }

  private async handle(req: ControlRequest): Promise<unknown> {
    const store = this.store
    const vfs = this.vfs
    if (store === undefined || vfs === undefined) throw new TierfsError('NO_DAEMON', 'daemon is starting')
    switch (req.cmd) {
      case 'ping':
        return { pid: process.pid, mountpoint: this.mounted?.mountpoint }
      case 'status': {
        const stagingBytes = vfs.files.stagingBytes()
        return {
          mountpoint: this.mounted?.mountpoint, store: store.layout.root, pid: process.pid,
          ...(await computeStatus(store.meta, stagingBytes)),
          openHandles: vfs.files.openHandles,
          sealer: { sealedFiles: vfs.sealer.sealedFiles, sealedBytes: vfs.sealer.sealedBytes, failures: vfs.sealer.failures },
          migrations: this.tiering?.status(),
          readCache: store.chunks.readCache(),
          tierMetrics: store.tiers.metrics(),
          workflows: this.backup?.status(),
          checkpoints: this.checkpoints?.status(),
          ...memoryFigures(),
        }
      }
      case 'flush':
        await vfs.sealAll()
        return { sealed: true }
      case 'collect':
        return this.collect()
      case 'snapshot-create': {
        const a = req.args ?? {}
        return this.restorePoints?.create(String(a.workflow), String(a.path ?? '/'))
      }
      case 'snapshot-list':
        return this.restorePoints?.list(req.args?.workflow === undefined ? undefined : String(req.args.workflow))
      case 'prune':
        return this.prune(req.args?.dryRun === true)
      case 'snapshot-delete':
        return this.restorePoints?.delete(String(req.args?.workflow), String(req.args?.name))
      case 'clock-offset':
        if (req.args?.offset !== undefined) this.clockOffset = clockOffsetMs(String(req.args.offset))
        return { offsetMs: this.clockOffset, now: new Date(this.nowMs()).toISOString() }
      case 'crash-at':
        armCrash(crashPointNamed(String(req.args?.point)), Number(req.args?.nth ?? 1))
        return { armed: armedCrash() ?? null }
      case 'policy-reload':
        return this.reloadPolicies()
      case 'policy-plan':
        return this.tiering?.plan()
      case 'policy-apply':
        return this.tiering?.apply()
      case 'policy-explain':
        return this.tiering?.explain(String(req.args?.path))
      case 'migrate':
        return this.tiering?.migrate((req.args?.paths as string[]) ?? [], String(req.args?.to), req.args?.recursive === true)
      case 'recall':
        return this.tiering?.recall((req.args?.paths as string[]) ?? [], req.args?.recursive === true)
      case 'checkpoint':
        if (this.checkpoints === undefined) throw new TierfsError('NO_DAEMON', 'daemon is starting')
        return this.checkpoints.run(req.args?.full === true)
      case 'threads':
        return this.mounted?.threadLocals()
      case 'umount':
        setImmediate(() => { void this.stop('umount requested').then(() => process.exit(0)) })
        return { stopping: true }
      default: {
        const answer = this.backup?.handle(req.cmd, req.args ?? {})
        if (answer !== undefined) return answer
        throw new TierfsError('INVALID', `unknown control command ${JSON.stringify(req.cmd)}`)
      }
    }
  }

  /**
   * Clean stop: seal staged files, unmount, close the store. Idempotent. A second signal during
   * the stop is ignored; the seals are what make the next start fast, not what makes data safe.
   */
  stop(reason: string): Promise<void> {
    this.stopping ??= (async () => {
      this.log.info('stopping', { reason })
      for (const t of this.timers) clearInterval(t)
      this.tiering?.stop()
      void this.pruneJob?.stop()
      this.checkpoints?.stop()
      await this.backup?.stop()
      this.control?.close()
      this.metricsServer?.close()
      try {
        await this.vfs?.close()
      } catch (err) {
        this.log.error('sealing at stop failed; staging is kept and resealed at the next mount', { err })
      }
      if (this.mounted !== undefined) {
        await this.mounted.unmount().catch((err) => this.log.error('unmount failed', { err }))
        await unregister(this.mounted.mountpoint)
      }
      // Writes that raced the unmount are sealed too.
      await this.vfs?.close().catch((err) => this.log.error('sealing after unmount failed; staging kept', { err }))
      await this.store?.close()
      this.log.info('stopped', { reason })
      await new Promise<void>((ok) => (this.logStream ? this.logStream.end(ok) : ok()))
    })()
    return this.stopping
  }
}

/** The daemon's memory: resident in all, and the JS heap and buffers inside it (the rest is native: LevelDB, libfuse). */
function memoryFigures(): { rssBytes: number; heapUsedBytes: number; buffersBytes: number } {
  const m = process.memoryUsage()
  return { rssBytes: m.rss, heapUsedBytes: m.heapUsed, buffersBytes: m.external }
}
