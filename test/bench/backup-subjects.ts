/**
 * The tools the backup benchmark (test/bench/backup.bench.ts) drives: tierfs (an ingest-mode
 * workflow on a fresh store), restic and borg, each backing up the same export directory night
 * after night, restoring a night, and forgetting one. Restores through a FUSE mount (`restic
 * mount`, `borg mount`) run the tool's mount in the foreground as a child, wait for its tree to
 * appear, `cp -a` out of it and unmount.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { cp, mkdir, rm, stat, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { duBytes, mustRun, timedProc, type Proc, type RunOpts } from './bench-run.js'
import { cpuSeconds, OUT_DIR, procMemKb, startPassthrough } from './subjects.js'
import { childEnv, CLI, RUN_DIR, run, tempMount, type TestMount } from '../support/tierfs-mount.js'

/** One step's figures. */
export interface Step { seconds: number; cpuS: number; rssKb: number; note?: Record<string, unknown> }

export interface BackupSubject {
  readonly who: 'tierfs' | 'restic' | 'borg'
  /** Backs up the export directory as night `n` (1-based). */
  backup(n: number): Promise<Step>
  /** Repository / store bytes (what the size rows compare). */
  size(): Promise<number>
  /** Restores night `n` into `dest` (empty, created by the caller) with the tool's restore command. */
  restore(dest: string, n: number): Promise<Step>
  /** Forgets night 1 and frees what only it used. */
  prune(): Promise<Step>
  /** Peak RSS seen (kB). */
  peakRssKb(): Promise<number>
  close(): Promise<void>
}

/** Mounts not cleaned up yet (an interrupted run unmounts them): tierfs stores and peers' FUSE mounts. */
const live = new Set<{ cleanup(): Promise<unknown> }>()

/** Unmounts everything still mounted (SIGINT/SIGTERM). */
export function cleanupMounts(): Promise<unknown> {
  return Promise.allSettled([...live].map((m) => m.cleanup()))
}

/** Store settings of the benchmark's tierfs stores besides compression (see the bench's header). */
const TIERFS_CONFIG = { history: { windowHours: 0 }, checkpoint: { everyHours: 0 }, migrate: { schedule: '' }, prune: { schedule: '' } }

/** A fresh tierfs store for a benchmark, with `policies` (name -> YAML) in force; cleaned up by `cleanupMounts` if interrupted. */
export async function benchStore(config: Record<string, unknown>, policies: Record<string, string>): Promise<TestMount> {
  const m = await tempMount({ config: { ...TIERFS_CONFIG, ...config } })
  live.add(m)
  try {
    await mkdir(join(m.store, 'policies'), { recursive: true })
    for (const [name, text] of Object.entries(policies)) await writeFile(join(m.store, 'policies', `${name}.yaml`), text)
    const r = await m.cli(['policy', 'reload', m.mnt])
    if (r.code !== 0) throw new Error(`tierfs policy reload: ${r.stderr}${r.stdout}`)
    return m
  } catch (err) {
    await closeStore(m)
    throw err
  }
}

export async function closeStore(m: TestMount): Promise<void> {
  live.delete(m)
  await m.cleanup()
}

/** The environment of tierfs CLI processes the bench times. */
export function tierfsEnv(): NodeJS.ProcessEnv {
  return { ...childEnv(), TIERFS_RUN_DIR: RUN_DIR }
}

export class TierfsBackup implements BackupSubject {
  readonly who = 'tierfs'
  private points: string[] = []
  private peak = 0
  private constructor(readonly m: TestMount, private readonly tmp: string) {}

  /** A store with an ingest-mode workflow `hbase`: the export directory `src` copied into /hbase. */
  static async create(src: string, tmp: string, compression: boolean): Promise<TierfsBackup> {
    const m = await benchStore({ compression }, {
      hbase: [
        '# backup benchmark: the export directory ingested into /hbase, one restore point per run',
        'name: hbase',
        'match: { path: "/hbase/**" }',
        'tiers:',
        '  - { tier: block }',
        'backup:',
        `  source: ${JSON.stringify(src)}`,
        '  dest: /hbase',
        '',
      ].join('\n'),
    })
    return new TierfsBackup(m, tmp)
  }

  /** A CLI command under /usr/bin/time, with the daemon's CPU over it added. */
  private async cli(args: string[]): Promise<Proc> {
    return this.withDaemon(() => timedProc(process.execPath, [CLI, ...args], { env: tierfsEnv(), tmp: this.tmp }))
  }

  private async withDaemon(work: () => Promise<Proc>): Promise<Proc> {
    const pid = await this.m.pid()
    const c0 = await cpuSeconds(pid)
    const p = await work()
    const c1 = await cpuSeconds(pid)
    await this.notePeak()
    return { ...p, cpuS: p.cpuS + (c0 === undefined || c1 === undefined ? 0 : c1 - c0) }
  }

  private async notePeak(): Promise<void> {
    const mem = await procMemKb(await this.m.pid())
    if (mem !== undefined) this.peak = Math.max(this.peak, mem.hwm)
  }

  async backup(n: number): Promise<Step> {
    const p = await this.cli(['backup', 'run', this.m.mnt, 'hbase', '--json'])
    const rec = JSON.parse(p.stdout) as { ok: boolean; summary?: Record<string, any>; error?: unknown }
    if (!rec.ok || rec.summary === undefined) throw new Error(`tierfs backup run (night ${n}) failed: ${p.stdout}`)
    const s = rec.summary
    if (Number(s.errors) > 0) throw new Error(`tierfs backup run (night ${n}): ${s.errors} source entries could not be read`)
    this.points.push(String(s.restorePoint.name))
    const note = {
      filesNew: s.filesNew, filesChanged: s.filesChanged, filesUnchanged: s.filesUnchanged, deleted: s.deleted,
      bytesRead: s.bytesRead, bytesStored: s.bytesStored, elapsedMs: s.elapsedMs, restorePoint: s.restorePoint.name,
    }
    return { seconds: p.seconds, cpuS: p.cpuS, rssKb: this.peak, note }
  }

  /**
   * storedBytes once nothing is staged (the run seals before it answers; this only makes sure).
   * Files still staged 120 s later mean failing seals: an error, not a size.
   */
  async size(): Promise<number> {
    const t0 = performance.now()
    for (;;) {
      const s = await this.m.status()
      if (s.stagingFiles === 0 && s.openHandles === 0) return Number(s.storedBytes)
      if (performance.now() - t0 > 120_000) {
        throw new Error(`tierfs: ${String(s.stagingFiles)} files still staged (${String(s.openHandles)} open handles) 120 s after the step: seals failing? (see the daemon log)`)
      }
      await new Promise((r) => setTimeout(r, 100))
    }
  }

  /** Packs and LevelDB on disk (the store without its log, run and policy directories). */
  onDisk(): Promise<number> {
    return duBytes(...['meta', 'block', 'object', 'cold'].map((d) => join(this.m.store, d)))
  }

  /** Restarts the daemon (its chunk cache is cold only after that): before a cold restore. */
  async remountCold(): Promise<void> {
    await this.notePeak()
    await this.m.umount()
    await this.m.mount()
  }

  private point(n: number): string {
    const p = this.points[n - 1]
    if (p === undefined) throw new Error(`tierfs: night ${n} has no restore point`)
    return p
  }

  /** `cp -a` out of the restore point's folder (the bench remounts and drops caches first). */
  async restore(dest: string, n: number): Promise<Step> {
    const p = await this.withDaemon(() => timedProc('cp', ['-a', `${this.m.mnt}/.snapshots/hbase/${this.point(n)}/.`, dest], { tmp: this.tmp }))
    return { seconds: p.seconds, cpuS: p.cpuS, rssKb: this.peak }
  }

  /** The same restore with `tierfs restore` (parallel copy through the mount). */
  async restoreCli(dest: string, n: number): Promise<Step> {
    const p = await this.cli(['restore', this.m.mnt, `hbase/${this.point(n)}`, dest, '--json'])
    const s = JSON.parse(p.stdout) as Record<string, unknown>
    if (Number(s.errors) !== 0) throw new Error(`tierfs restore reported errors: ${p.stdout}${p.stderr}`)
    return { seconds: p.seconds, cpuS: p.cpuS, rssKb: this.peak, note: { files: s.files, bytes: s.bytes, times: s.times } }
  }

  async prune(): Promise<Step> {
    const del = await this.cli(['snapshot', 'delete', this.m.mnt, '--workflow', 'hbase', this.point(1)])
    const pr = await this.cli(['prune', this.m.mnt, '--json'])
    const r = JSON.parse(pr.stdout) as Record<string, any>
    if (Array.isArray(r.problems) && r.problems.length > 0) throw new Error(`tierfs prune reported problems: ${pr.stdout}`)
    return {
      seconds: del.seconds + pr.seconds, cpuS: del.cpuS + pr.cpuS, rssKb: this.peak,
      note: { bytesFreed: r.bytesFreed, packsDeleted: r.packsDeleted, packsRepacked: r.packsRepacked, bytesRepacked: r.bytesRepacked, versionsDropped: r.versionsDropped, chunksFreed: r.chunksFreed },
    }
  }

  async peakRssKb(): Promise<number> {
    await this.notePeak().catch(() => undefined)
    return this.peak
  }

  /** Copies the daemon's logs to the output directory (a failed run); returns where. */
  async keepLogs(): Promise<string> {
    const dest = join(OUT_DIR, `tierfs-failed-backup-${new Date().toISOString().replace(/[:.]/g, '-')}`)
    await mkdir(dest, { recursive: true })
    await cp(join(this.m.store, 'log'), dest, { recursive: true }).catch(() => undefined)
    return dest
  }

  close(): Promise<void> {
    return closeStore(this.m)
  }
}

/** A FUSE mount command that exited before serving its tree (e.g. borg without llfuse/pyfuse3). */
export class MountUnavailable extends Error {}

/**
 * A restore through a tool's FUSE mount: starts `cmd args` (a mount serving in the foreground),
 * waits until `ready` exists, `cp -a from/. dest`, reads the mount process's CPU and peak RSS,
 * unmounts (fusermount -u) and waits for it to exit. Seconds run from the start of the mount
 * command to the end of the copy; CPU is the mount process's plus cp's.
 */
export async function mountAndCopy(o: RunOpts & { cmd: string; args: string[]; mnt: string; ready: string; from: string; dest: string; tmp: string }): Promise<Step> {
  await mkdir(o.mnt, { recursive: true })
  const t0 = performance.now()
  const child = spawn(o.cmd, o.args, { ...(o.env === undefined ? {} : { env: o.env }), ...(o.cwd === undefined ? {} : { cwd: o.cwd }), stdio: ['ignore', 'pipe', 'pipe'] })
  let output = ''
  const keep = (d: Buffer): void => { output = (output + d.toString()).slice(-4000) }
  child.stdout?.on('data', keep)
  child.stderr?.on('data', keep)
  const exited = new Promise<void>((ok) => child.once('exit', () => ok()))
  const handle = { cleanup: () => unmount(o.mnt, child, exited) }
  live.add(handle)
  try {
    for (;;) {
      if (child.exitCode !== null || child.signalCode !== null) {
        throw new MountUnavailable(`\`${o.cmd} ${o.args[0] ?? ''}\` exited (${child.exitCode ?? child.signalCode}) before serving: ${output.trim() || '(no output)'}`)
      }
      if (await stat(o.ready).then(() => true, () => false)) break
      if (performance.now() - t0 > 300_000) throw new Error(`${o.cmd} ${o.args.join(' ')}: ${o.ready} did not appear within 300 s:\n${output}`)
      await new Promise((r) => setTimeout(r, 20))
    }
    const copy = await timedProc('cp', ['-a', `${o.from}/.`, o.dest], { tmp: o.tmp })
    const seconds = (performance.now() - t0) / 1000
    const pid = child.pid as number
    const cpu = (await cpuSeconds(pid)) ?? 0
    const rssKb = (await procMemKb(pid))?.hwm ?? 0
    return { seconds, cpuS: cpu + copy.cpuS, rssKb, note: { cpSeconds: copy.seconds } }
  } finally {
    live.delete(handle)
    await handle.cleanup()
  }
}

/**
 * `cp -a` of `src` through a passthrough FUSE mount of it at `mnt` (PassthroughVfs on fuse-native
 * with tierfs's adapter and mount options; no chunks, no metadata store): the best any filesystem
 * on this binding can restore. Times the cp alone; CPU is the mount process's over it plus cp's.
 */
export async function passthroughCopy(src: string, dest: string, mnt: string, tmp: string): Promise<Step> {
  await mkdir(mnt, { recursive: true })
  const mount = await startPassthrough(src, mnt)
  const handle = { cleanup: mount.stop }
  live.add(handle)
  try {
    const c0 = (await cpuSeconds(mount.pid)) ?? 0
    const copy = await timedProc('cp', ['-a', `${mnt}/.`, dest], { tmp })
    const c1 = (await cpuSeconds(mount.pid)) ?? 0
    return { seconds: copy.seconds, cpuS: c1 - c0 + copy.cpuS, rssKb: (await procMemKb(mount.pid))?.hwm ?? 0 }
  } finally {
    live.delete(handle)
    await mount.stop()
  }
}

async function unmount(mnt: string, child: ChildProcess, exited: Promise<void>): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return
  await run('fusermount', ['-u', mnt])
  const gone = await Promise.race([exited.then(() => true), new Promise<boolean>((ok) => setTimeout(() => ok(false), 30_000))])
  if (!gone) {
    child.kill('SIGKILL')
    await run('fusermount', ['-uz', mnt])
    await exited
  }
}

export class ResticBackup implements BackupSubject {
  readonly who = 'restic'
  private ids: string[] = []
  private peak = 0
  readonly env: NodeJS.ProcessEnv
  constructor(private readonly repo: string, private readonly src: string, private readonly tmp: string) {
    this.env = { ...process.env, RESTIC_REPOSITORY: repo, RESTIC_PASSWORD: 'backup-bench', RESTIC_CACHE_DIR: `${repo}-cache`, RESTIC_PROGRESS_FPS: '0.016' }
  }

  async init(): Promise<void> {
    await mustRun('restic', ['init'], { env: this.env })
  }

  private async restic(args: string[], cwd?: string): Promise<Proc> {
    const p = await timedProc('restic', args, { env: this.env, tmp: this.tmp, ...(cwd === undefined ? {} : { cwd }) })
    this.peak = Math.max(this.peak, p.maxRssKb)
    return p
  }

  /** `restic backup .` in `dir` (the export directory unless given). */
  async backupDir(n: number, dir: string = this.src): Promise<Step> {
    const p = await this.restic(['backup', '.', '--json', '--host', 'bench', '--tag', `night${n}`], dir)
    const summary = p.stdout.trim().split('\n').map((l) => { try { return JSON.parse(l) as Record<string, any> } catch { return {} } })
      .find((j) => j.message_type === 'summary')
    if (summary === undefined) throw new Error(`restic backup printed no summary: ${p.stdout.slice(-2000)}`)
    this.ids.push(String(summary.snapshot_id))
    return {
      seconds: p.seconds, cpuS: p.cpuS, rssKb: p.maxRssKb,
      note: { filesNew: summary.files_new, filesChanged: summary.files_changed, filesUnmodified: summary.files_unmodified, dataAdded: summary.data_added, snapshot: summary.snapshot_id },
    }
  }

  backup(n: number): Promise<Step> {
    return this.backupDir(n)
  }

  size(): Promise<number> {
    return duBytes(this.repo)
  }

  private id(n: number): string {
    const id = this.ids[n - 1]
    if (id === undefined) throw new Error(`restic: no night ${n} snapshot`)
    return id
  }

  async restore(dest: string, n: number): Promise<Step> {
    const p = await this.restic(['restore', this.id(n), '--target', dest])
    return { seconds: p.seconds, cpuS: p.cpuS, rssKb: p.maxRssKb }
  }

  /** `restic mount MNT` (foreground), `cp -a MNT/ids/<id>/.`, unmount. */
  async mountRestore(dest: string, n: number, mnt: string): Promise<Step> {
    const dir = join(mnt, 'ids', this.id(n).slice(0, 8))
    const s = await mountAndCopy({ cmd: 'restic', args: ['mount', mnt], env: this.env, mnt, ready: dir, from: dir, dest, tmp: this.tmp })
    this.peak = Math.max(this.peak, s.rssKb)
    return s
  }

  async prune(): Promise<Step> {
    const p = await this.restic(['forget', this.id(1), '--prune'])
    return { seconds: p.seconds, cpuS: p.cpuS, rssKb: p.maxRssKb }
  }

  async peakRssKb(): Promise<number> {
    return this.peak
  }

  async close(): Promise<void> {
    await rm(this.repo, { recursive: true, force: true })
    await rm(`${this.repo}-cache`, { recursive: true, force: true })
  }
}

export class BorgBackup implements BackupSubject {
  readonly who = 'borg'
  private peak = 0
  private nights = 0
  private readonly env: NodeJS.ProcessEnv
  constructor(private readonly repo: string, private readonly src: string, private readonly tmp: string) {
    this.env = {
      ...process.env, BORG_REPO: repo, BORG_BASE_DIR: `${repo}-home`,
      BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK: 'yes', BORG_RELOCATED_REPO_ACCESS_IS_OK: 'yes',
    }
  }

  async init(): Promise<void> {
    await mkdir(`${this.repo}-home`, { recursive: true })
    await mustRun('borg', ['init', '-e', 'none'], { env: this.env })
  }

  private async borg(args: string[], cwd?: string): Promise<Proc> {
    const p = await timedProc('borg', args, { env: this.env, tmp: this.tmp, ...(cwd === undefined ? {} : { cwd }) })
    this.peak = Math.max(this.peak, p.maxRssKb)
    return p
  }

  async backup(n: number): Promise<Step> {
    const p = await this.borg(['create', '--json', `::night${n}`, '.'], this.src)
    this.nights = Math.max(this.nights, n)
    const j = JSON.parse(p.stdout) as { archive: { stats: Record<string, number> } }
    return {
      seconds: p.seconds, cpuS: p.cpuS, rssKb: p.maxRssKb,
      note: { nfiles: j.archive.stats.nfiles, originalSize: j.archive.stats.original_size, deduplicatedSize: j.archive.stats.deduplicated_size },
    }
  }

  size(): Promise<number> {
    return duBytes(this.repo)
  }

  async restore(dest: string, n: number): Promise<Step> {
    const p = await this.borg(['extract', `::night${n}`], dest)
    return { seconds: p.seconds, cpuS: p.cpuS, rssKb: p.maxRssKb }
  }

  /** `borg mount -f ::nightN MNT` (foreground, llfuse), `cp -a MNT/.`, unmount. */
  async mountRestore(dest: string, n: number, mnt: string): Promise<Step> {
    const s = await mountAndCopy({ cmd: 'borg', args: ['mount', '-f', `::night${n}`, mnt], env: this.env, mnt, ready: join(mnt, 'data'), from: mnt, dest, tmp: this.tmp })
    this.peak = Math.max(this.peak, s.rssKb)
    return s
  }

  /** Forgets night 1 (keeps the later nights) and compacts. */
  async prune(): Promise<Step> {
    const a = await this.borg(['prune', '--keep-last', String(this.nights - 1)])
    const b = await this.borg(['compact'])
    return { seconds: a.seconds + b.seconds, cpuS: a.cpuS + b.cpuS, rssKb: Math.max(a.maxRssKb, b.maxRssKb) }
  }

  async peakRssKb(): Promise<number> {
    return this.peak
  }

  async close(): Promise<void> {
    await rm(this.repo, { recursive: true, force: true })
    await rm(`${this.repo}-home`, { recursive: true, force: true })
  }
}
