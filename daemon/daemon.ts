import { createWriteStream, type WriteStream } from 'node:fs'
import { mkdir } from 'node:fs/promises'
import type { Server } from 'node:net'
import { TierfsError } from '../src/errors.js'
import { DEFAULT_MOUNT_OPTIONS, mountVfs, type Mounted } from '../src/fuse/mount.js'
import { jsonLogger, type Logger } from '../src/log.js'
import { serveControl, type ControlRequest } from '../src/store/control.js'
import { StoreLayout } from '../src/store/layout.js'
import { openStore, type OpenStore } from '../src/store/open-store.js'
import { register, unregister } from '../src/store/registry.js'
import { computeStatus } from '../src/store/status.js'
import { Staging } from '../src/vfs/staging.js'
import { TierfsVfs } from '../src/vfs/tierfs-vfs.js'
import { RestorePoints } from '../src/backup/restore-points.js'

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
  private mounted: Mounted | undefined
  private control: Server | undefined
  private timers: NodeJS.Timeout[] = []
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
    const store = (this.store = await openStore(this.args.store, this.log))
    this.log = jsonLogger(this.args.foreground ? (l) => { toFile(l); process.stderr.write(l) } : toFile, store.config.log.level)
    const staging = new Staging(layout.staging(store.config))
    const vfs = (this.vfs = new TierfsVfs(
      { meta: store.meta, chunks: store.chunks, staging, blockTier: store.block, log: this.log },
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
    this.log.info('mounted', { store: layout.root, mountpoint: this.mounted.mountpoint, pid: process.pid })
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
          rssBytes: process.memoryUsage().rss,
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
      case 'snapshot-delete':
        return this.restorePoints?.delete(String(req.args?.workflow), String(req.args?.name))
      case 'threads':
        return this.mounted?.threadLocals()
      case 'umount':
        setImmediate(() => { void this.stop('umount requested').then(() => process.exit(0)) })
        return { stopping: true }
      default:
        throw new TierfsError('INVALID', `unknown control command ${JSON.stringify(req.cmd)}`)
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
      this.control?.close()
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
