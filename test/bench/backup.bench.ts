/**
 * The backup engine benchmark: tierfs's ingest-mode backup workflow against restic and borgbackup
 * on the same data in the same run. The scenario is the motivating one: an HBase table exported
 * every night into a plain directory (test/bench/backup-scenario.ts), backed up three nights:
 *   night 1  the whole table (2 GiB in 40 region files + 2,000 small files; --quick 256 MiB + 300)
 *   night 2  a compaction: f3, f4, f5 of one region deleted, a new file written as their concatenation
 *            (3x the real change: dedup must make it cost almost nothing), one expired region file
 *            deleted, small files changed and added
 *   night 3  a flush of ~1% of the table, small files changed and added
 * then night 1 is restored into an empty directory by each tool (checked file by file against
 * night 1's source: sha256, size, mode, owner, mtime; a mismatch fails the run), and night 1 is
 * forgotten and pruned. A report, not a test: it prints the machine and ONE markdown table, and
 * writes a JSON (and the markdown) to bench-out/ ($BENCH_OUT_DIR when set).
 *
 * Run from the project root, as root (FUSE and drop_caches), after `npx tsc -p tsconfig.json`
 * (tierfs runs from dist/):
 *   node --import @tapjs/typescript/import test/bench/backup.bench.ts           full: 2 GiB, 3 runs
 *   node --import @tapjs/typescript/import test/bench/backup.bench.ts --quick   256 MiB, 2 runs
 *   (--reps N overrides the run count)
 * Needs restic and borgbackup (scripts/setup.sh --bench, or apt-get install -y restic borgbackup).
 *
 * Subjects, each with its defaults:
 *  - tierfs: a fresh store (`tierfs init`), mounted with `tierfs mount`; a policy file with a
 *    `backup:` section in ingest mode (source = the export directory, dest = /hbase); each night
 *    is `tierfs backup run MOUNT hbase` (copies new and changed files into the namespace,
 *    dedups, seals, creates the restore point). Restore = `cp -a MOUNT/.snapshots/hbase/<t>/. DEST`
 *    (and `tierfs restore`), prune = `tierfs snapshot delete` + `tierfs prune`. Store settings
 *    that differ from the default: history.windowHours 0 (so versions no restore point needs can
 *    be pruned now, not after 7 days), checkpoint.everyHours 0 and migrate.schedule '' (no
 *    background checkpoint or tiering pass during the run). No encryption, no compression.
 *  - restic: `restic init` (repository v2: AES-256 encryption, zstd auto compression), each
 *    night `restic backup .` in the export directory, restore = `restic restore ID --target DEST`,
 *    prune = `restic forget ID --prune`.
 *  - borg: `borg init -e none` (no encryption; lz4 compression, the default), each night
 *    `borg create ::nightN .`, restore = `borg extract ::night1` in DEST, prune =
 *    `borg prune --keep-last 2` + `borg compact`.
 *
 * Method: every timed step starts cold: `sync; echo 3 > /proc/sys/vm/drop_caches` first (the
 * export directory, the repositories and the store are read from disk); tierfs is also remounted
 * before each restore (its chunk cache lives in the daemon; during the nights it stays mounted,
 * as on a backup host). Subjects take turns in a rotating order per run. Sizes: tierfs store =
 * `storedBytes` of `tierfs status --json` (pack bytes), with the on-disk size of the store
 * (packs + LevelDB, `du -sb`) on its own row; restic and borg = `du -sb` of the repository.
 * CPU seconds: user+sys of the tool (/usr/bin/time); for tierfs, the daemon's CPU over the step
 * plus the CLI's (or cp's).
 */
import { execFile } from 'node:child_process'
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describeMachine, busyness, machineText } from './machine.js'
import { median } from './report-table.js'
import { cpuSeconds, dropCaches, OUT_DIR, procMemKb } from './subjects.js'
import { FULL, QUICK, makeNight1, makeNight2, makeNight3, mib, treeDiff, treeOf, treeTotals, type NightInfo, type Sizes, type Tree } from './backup-scenario.js'
import { childEnv, CLI, ROOT, RUN_DIR, run, tempMount, type TestMount } from '../support/tierfs-mount.js'

const MiB = 1024 * 1024
type Who = 'tierfs' | 'restic' | 'borg'
const SUBJECTS: readonly Who[] = ['tierfs', 'restic', 'borg']

interface Options { quick: boolean; reps: number }

function parseArgs(argv: string[]): Options {
  const quick = argv.includes('--quick')
  const i = argv.indexOf('--reps')
  const reps = i >= 0 ? Number(argv[i + 1]) : quick ? 2 : 3
  if (!Number.isInteger(reps) || reps < 1) throw new Error('--reps needs a positive integer')
  return { quick, reps }
}

function log(msg: string): void {
  process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${msg}\n`)
}

// ---------------------------------------------------------------------------------------------
// Processes

interface Proc { seconds: number; cpuS: number; maxRssKb: number; stdout: string; stderr: string }

/** Runs a command under /usr/bin/time: wall seconds, user+sys CPU seconds and peak RSS. Rejects on failure. */
async function timedProc(cmd: string, args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv; tmp: string }): Promise<Proc> {
  const tfile = join(opts.tmp, `time-${process.pid}-${Math.random().toString(36).slice(2)}.txt`)
  const t0 = performance.now()
  const { stdout, stderr } = await new Promise<{ stdout: string; stderr: string }>((ok, fail) => {
    execFile('/usr/bin/time', ['-f', '%U %S %M', '-o', tfile, cmd, ...args], {
      maxBuffer: 512 * MiB, ...(opts.cwd === undefined ? {} : { cwd: opts.cwd }), ...(opts.env === undefined ? {} : { env: opts.env }),
    }, (err, out, errOut) => {
      if (err !== null) fail(new Error(`${cmd} ${args.join(' ')} failed: ${err.message}\n${String(errOut).slice(-4000)}\n${String(out).slice(-4000)}`))
      else ok({ stdout: String(out), stderr: String(errOut) })
    })
  })
  const seconds = (performance.now() - t0) / 1000
  const [u, s, m] = (await readFile(tfile, 'utf8')).trim().split('\n').pop()!.split(' ').map(Number)
  await rm(tfile, { force: true })
  return { seconds, cpuS: (u ?? 0) + (s ?? 0), maxRssKb: m ?? 0, stdout, stderr }
}

/** Runs a command to completion; rejects with its output on failure. */
function mustRun(cmd: string, args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): Promise<string> {
  return new Promise((ok, fail) => {
    execFile(cmd, args, { maxBuffer: 256 * MiB, ...opts }, (err, stdout, stderr) => {
      if (err !== null) fail(new Error(`${cmd} ${args.join(' ')} failed: ${err.message}\n${String(stderr)}${String(stdout)}`))
      else ok(String(stdout))
    })
  })
}

async function duBytes(...paths: string[]): Promise<number> {
  const out = await mustRun('du', ['-sbc', ...paths])
  const total = out.trim().split('\n').pop() ?? ''
  return Number(total.split(/\s+/)[0])
}

// ---------------------------------------------------------------------------------------------
// Subjects

/** One step's figures. */
interface Step { seconds: number; cpuS: number; rssKb: number; note?: Record<string, unknown> }

interface BackupSubject {
  readonly who: Who
  /** Backs up the export directory as night `n` (1-based). */
  backup(n: number): Promise<Step>
  /** Repository / store bytes (what the size rows compare). */
  size(): Promise<number>
  /** Restores night 1 into `dest` (empty, created by the caller). */
  restore(dest: string): Promise<Step>
  /** Forgets night 1 and frees what only it used. */
  prune(): Promise<Step>
  /** Peak RSS seen (kB). */
  peakRssKb(): Promise<number>
  close(): Promise<void>
}

class TierfsBackup implements BackupSubject {
  readonly who = 'tierfs'
  private points: string[] = []
  private peak = 0
  private constructor(readonly m: TestMount, private readonly src: string, private readonly tmp: string) {}

  static async create(src: string, tmp: string): Promise<TierfsBackup> {
    const m = await tempMount({ config: { history: { windowHours: 0 }, checkpoint: { everyHours: 0 }, migrate: { schedule: '' } } })
    try {
      await mkdir(join(m.store, 'policies'), { recursive: true })
      await writeFile(join(m.store, 'policies/hbase.yaml'), [
        '# backup benchmark: the export directory ingested into /hbase, one restore point per run',
        'name: hbase',
        'match: { path: "/hbase/**" }',
        'tiers:',
        '  - { tier: block }',
        'backup:',
        `  source: ${JSON.stringify(src)}`,
        '  dest: /hbase',
        '',
      ].join('\n'))
      const r = await m.cli(['policy', 'reload', m.mnt])
      if (r.code !== 0) throw new Error(`tierfs policy reload: ${r.stderr}${r.stdout}`)
      liveMounts.add(m)
      return new TierfsBackup(m, src, tmp)
    } catch (err) {
      await m.cleanup()
      throw err
    }
  }

  private env(): NodeJS.ProcessEnv {
    return { ...childEnv(), TIERFS_RUN_DIR: RUN_DIR }
  }

  /** A CLI command under /usr/bin/time, with the daemon's CPU over it added. */
  private async cli(args: string[]): Promise<Proc> {
    return this.withDaemon(() => timedProc(process.execPath, [CLI, ...args], { env: this.env(), tmp: this.tmp }))
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

  /** storedBytes once nothing is staged (the run seals before it answers; this only makes sure). */
  async size(): Promise<number> {
    for (let i = 0; ; i++) {
      const s = await this.m.status()
      if ((s.stagingFiles === 0 && s.openHandles === 0) || i > 600) return Number(s.storedBytes)
      await new Promise((r) => setTimeout(r, 100))
    }
  }

  /** Packs and LevelDB on disk (the store without its log, run and policy directories). */
  onDisk(): Promise<number> {
    return duBytes(...['meta', 'block', 'object', 'cold'].map((d) => join(this.m.store, d)))
  }

  private async remountCold(): Promise<void> {
    await this.notePeak()
    await this.m.umount()
    await this.m.mount()
  }

  private night1(): string {
    const p = this.points[0]
    if (p === undefined) throw new Error('tierfs: night 1 has no restore point')
    return p
  }

  async restore(dest: string): Promise<Step> {
    await this.remountCold()
    await dropCaches()
    const p = await this.withDaemon(() => timedProc('cp', ['-a', `${this.m.mnt}/.snapshots/hbase/${this.night1()}/.`, dest], { tmp: this.tmp }))
    return { seconds: p.seconds, cpuS: p.cpuS, rssKb: this.peak }
  }

  /** The same restore with `tierfs restore` (parallel copy through the mount). */
  async restoreCli(dest: string): Promise<Step> {
    await this.remountCold()
    await dropCaches()
    const p = await this.cli(['restore', this.m.mnt, `hbase/${this.night1()}`, dest, '--json'])
    const s = JSON.parse(p.stdout) as Record<string, unknown>
    if (Number(s.errors) !== 0) throw new Error(`tierfs restore reported errors: ${p.stdout}${p.stderr}`)
    return { seconds: p.seconds, cpuS: p.cpuS, rssKb: this.peak, note: { files: s.files, bytes: s.bytes, times: s.times } }
  }

  async prune(): Promise<Step> {
    const del = await this.cli(['snapshot', 'delete', this.m.mnt, '--workflow', 'hbase', this.night1()])
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
    await mustRun('cp', ['-a', join(this.m.store, 'log'), dest]).catch(() => undefined)
    return dest
  }

  async close(): Promise<void> {
    liveMounts.delete(this.m)
    await this.m.cleanup()
  }
}

/** Mounts not cleaned up yet (an interrupted run unmounts them). */
const liveMounts = new Set<TestMount>()

class ResticBackup implements BackupSubject {
  readonly who = 'restic'
  private ids: string[] = []
  private peak = 0
  private readonly env: NodeJS.ProcessEnv
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

  async backup(n: number): Promise<Step> {
    const p = await this.restic(['backup', '.', '--json', '--host', 'bench', '--tag', `night${n}`], this.src)
    const summary = p.stdout.trim().split('\n').map((l) => { try { return JSON.parse(l) as Record<string, any> } catch { return {} } })
      .find((j) => j.message_type === 'summary')
    if (summary === undefined) throw new Error(`restic backup printed no summary: ${p.stdout.slice(-2000)}`)
    this.ids.push(String(summary.snapshot_id))
    return {
      seconds: p.seconds, cpuS: p.cpuS, rssKb: p.maxRssKb,
      note: { filesNew: summary.files_new, filesChanged: summary.files_changed, filesUnmodified: summary.files_unmodified, dataAdded: summary.data_added, snapshot: summary.snapshot_id },
    }
  }

  size(): Promise<number> {
    return duBytes(this.repo)
  }

  async restore(dest: string): Promise<Step> {
    const id = this.ids[0]
    if (id === undefined) throw new Error('restic: no night 1 snapshot')
    const p = await this.restic(['restore', id, '--target', dest])
    return { seconds: p.seconds, cpuS: p.cpuS, rssKb: p.maxRssKb }
  }

  async prune(): Promise<Step> {
    const id = this.ids[0]
    if (id === undefined) throw new Error('restic: no night 1 snapshot')
    const p = await this.restic(['forget', id, '--prune'])
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

class BorgBackup implements BackupSubject {
  readonly who = 'borg'
  private peak = 0
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
    const j = JSON.parse(p.stdout) as { archive: { stats: Record<string, number> } }
    return {
      seconds: p.seconds, cpuS: p.cpuS, rssKb: p.maxRssKb,
      note: { nfiles: j.archive.stats.nfiles, originalSize: j.archive.stats.original_size, deduplicatedSize: j.archive.stats.deduplicated_size },
    }
  }

  size(): Promise<number> {
    return duBytes(this.repo)
  }

  async restore(dest: string): Promise<Step> {
    const p = await this.borg(['extract', '::night1'], dest)
    return { seconds: p.seconds, cpuS: p.cpuS, rssKb: p.maxRssKb }
  }

  async prune(): Promise<Step> {
    const a = await this.borg(['prune', '--keep-last', '2'])
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

// ---------------------------------------------------------------------------------------------
// Rows and the table

type Kind = 'seconds' | 'bytes' | 'bytesMore'

interface Row {
  test: string
  kind: Kind
  runs: Partial<Record<Who, number[]>>
  cpu?: Partial<Record<Who, number[]>>
  /** Peer cells shown as text instead of figures (the ratios still use `runs`). */
  text?: Partial<Record<Who, string>>
}

function push(row: Row, who: Who, x: number, cpuS?: number): void {
  ;(row.runs[who] ??= []).push(x)
  if (cpuS !== undefined) ((row.cpu ??= {})[who] ??= []).push(cpuS)
}

function fmt(x: number): string {
  if (x >= 100) return Math.round(x).toLocaleString('en-US')
  if (x >= 10) return x.toFixed(1)
  if (x >= 1) return x.toFixed(2)
  if (x === 0) return '0'
  return x.toPrecision(2)
}

/** MiB from 1 MiB up, then KiB, then bytes. */
function bytesText(x: number): string {
  const a = Math.abs(x)
  if (a >= MiB) return `${fmt(x / MiB)} MiB`
  if (a >= 1024) return `${fmt(x / 1024)} KiB`
  return `${Math.round(x)} B`
}

function cell(row: Row, who: Who): string {
  const text = row.text?.[who]
  if (text !== undefined) return text
  const xs = row.runs[who] ?? []
  const m = median(xs)
  if (m === undefined) return '—'
  const v = (x: number): string => (row.kind === 'seconds' ? `${fmt(x)} s` : bytesText(x))
  const cpu = median(row.cpu?.[who] ?? [])
  const cpuText = cpu === undefined ? '' : ` · ${cpu.toFixed(1)} cpu-s`
  const lo = v(Math.min(...xs))
  const hi = v(Math.max(...xs))
  // The range without its unit when both ends have the median's unit; none when min = max.
  const unit = (t: string): string => t.replace(/^[-\d.,]+ /, '')
  const range = lo === hi ? '' : unit(lo) === unit(v(m)) && unit(hi) === unit(v(m)) ? ` (${lo.split(' ')[0]}–${hi.split(' ')[0]})` : ` (${lo}–${hi})`
  return v(m) + range + cpuText
}

/**
 * tierfs relative to `other`, > 1 in tierfs's favour: seconds and bytes stored, other ÷ tierfs
 * (faster, smaller); bytes freed ('bytesMore'), tierfs ÷ other (reclaimed more).
 */
function ratio(row: Row, other: Who): string {
  const t = median(row.runs.tierfs ?? [])
  const o = median(row.runs[other] ?? [])
  if (t === undefined || o === undefined) return '—'
  // Bytes freed: both next to nothing is no comparison.
  if (row.kind === 'bytesMore' && Math.max(t, o) < MiB) return '— (both < 1 MiB)'
  const r = row.kind === 'bytesMore' ? t / o : o / t
  if (!Number.isFinite(r) || Number.isNaN(r)) return '—'
  return `${r >= 10 ? fmt(r) : r.toFixed(2)}x`
}

function markdownTable(rows: readonly Row[]): string {
  return [
    '| measurement | tierfs | restic | borg | tierfs/restic | tierfs/borg |',
    '|---|---|---|---|---|---|',
    ...rows.map((r) => `| ${r.test} | ${cell(r, 'tierfs')} | ${cell(r, 'restic')} | ${cell(r, 'borg')} | ${ratio(r, 'restic')} | ${ratio(r, 'borg')} |`),
  ].join('\n')
}

// ---------------------------------------------------------------------------------------------
// The run

interface Rows {
  night1: Row; size1: Row; disk1: Row
  night2: Row; grow2: Row
  night3: Row; grow3: Row
  restore: Row; restoreCli: Row
  prune: Row; freed: Row; sizeAfter: Row
  rss: Row
}

function makeRows(z: Sizes, cold: () => boolean): Rows {
  const c = (): string => (cold() ? 'cold' : 'cold? (drop_caches REFUSED: page cache may be warm)')
  const rows: Rows = {
    night1: { test: `night 1: initial backup of ${mib(z.tableBytes)} + ${z.smallFiles.toLocaleString('en-US')} small files, ${c()}`, kind: 'seconds', runs: {} },
    size1: { test: 'repository after night 1 (tierfs: storedBytes, packs only; restic, borg: du -sb)', kind: 'bytes', runs: {} },
    disk1: { test: '↳ on disk with index and metadata (tierfs: du -sb of packs + LevelDB; restic, borg: as above)', kind: 'bytes', runs: {} },
    night2: { test: `night 2: incremental backup after a compaction, ${c()}`, kind: 'seconds', runs: {} },
    grow2: { test: 'repository growth over night 2 (the compacted file is new data to a file-level tool)', kind: 'bytes', runs: {} },
    night3: { test: `night 3: incremental backup after a flush, ${c()}`, kind: 'seconds', runs: {} },
    grow3: { test: 'repository growth over night 3', kind: 'bytes', runs: {} },
    restore: { test: `restore night 1 into an empty dir, ${c()} (tierfs: cp -a of .snapshots/hbase/<t>/.; restic restore; borg extract)`, kind: 'seconds', runs: {} },
    restoreCli: { test: '↳ tierfs: the same with `tierfs restore` (peers: as above)', kind: 'seconds', runs: {}, text: { restic: '(as above)', borg: '(as above)' } },
    prune: { test: `forget + prune night 1, ${c()} (tierfs snapshot delete + prune; restic forget --prune; borg prune + compact)`, kind: 'seconds', runs: {} },
    freed: { test: 'bytes freed by that prune (ratio: tierfs ÷ other, > 1 = tierfs reclaimed more)', kind: 'bytesMore', runs: {} },
    sizeAfter: { test: 'repository after the prune', kind: 'bytes', runs: {} },
    rss: { test: 'peak RSS over all steps (tierfs: daemon VmHWM; restic, borg: max RSS of their processes)', kind: 'bytes', runs: {} },
  }
  return rows
}

interface RepRecord {
  rep: number
  order: Who[]
  nights: Array<Partial<Record<Who, Step & { size: number }>>>
  restores: Record<string, Step & { verified: string }>
  prune: Partial<Record<Who, Step & { freed: number; after: number }>>
  tierfsOnDisk: number[]
}

async function oneRep(opts: Options, z: Sizes, base: string, rep: number, rows: Rows, noteCold: (ok: boolean) => void, nightInfo: NightInfo[]): Promise<RepRecord> {
  const dir = join(base, `rep${rep}`)
  const src = join(dir, 'export')
  const tmp = join(dir, 'tmp')
  await mkdir(src, { recursive: true })
  await mkdir(tmp, { recursive: true })
  log(`run ${rep + 1}/${opts.reps}: writing night 1's export (${mib(z.tableBytes)} + ${z.smallFiles} small files)`)
  const n1 = await makeNight1(src, z)
  nightInfo[0] = n1
  const want: Tree = await treeOf(src)
  const totals = treeTotals(want)
  log(`  ${totals.files} files, ${mib(totals.bytes)}, ${totals.dirs} dirs`)
  const order = SUBJECTS.map((_, i) => SUBJECTS[(i + rep) % SUBJECTS.length] as Who)
  const record: RepRecord = { rep: rep + 1, order, nights: [], restores: {}, prune: {}, tierfsOnDisk: [] }
  const subjects = new Map<Who, BackupSubject>()
  let tierfs: TierfsBackup | undefined
  try {
    tierfs = await TierfsBackup.create(src, tmp)
    subjects.set('tierfs', tierfs)
    const restic = new ResticBackup(join(dir, 'restic-repo'), src, tmp)
    await restic.init()
    subjects.set('restic', restic)
    const borg = new BorgBackup(join(dir, 'borg-repo'), src, tmp)
    await borg.init()
    subjects.set('borg', borg)
    const get = (who: Who): BackupSubject => subjects.get(who) as BackupSubject
    const sizes: Partial<Record<Who, number>> = {}
    for (const who of order) sizes[who] = await get(who).size()

    const nightRows: Array<[Row, Row | undefined]> = [[rows.night1, undefined], [rows.night2, rows.grow2], [rows.night3, rows.grow3]]
    for (let n = 1; n <= 3; n++) {
      if (n === 2) nightInfo[1] = await makeNight2(src, z)
      if (n === 3) nightInfo[2] = await makeNight3(src, z)
      const night: Partial<Record<Who, Step & { size: number }>> = {}
      for (const who of order) {
        noteCold(await dropCaches())
        log(`run ${rep + 1}/${opts.reps}: night ${n}: ${who} backup`)
        const step = await get(who).backup(n)
        const size = await get(who).size()
        const [timeRow, growRow] = nightRows[n - 1] as [Row, Row | undefined]
        push(timeRow, who, step.seconds, step.cpuS)
        if (growRow !== undefined) push(growRow, who, size - (sizes[who] ?? 0))
        if (n === 1) {
          push(rows.size1, who, size)
          const disk = who === 'tierfs' ? await (get(who) as TierfsBackup).onDisk() : size
          push(rows.disk1, who, disk)
          if (who === 'tierfs') record.tierfsOnDisk.push(disk)
        }
        log(`  ${step.seconds.toFixed(1)} s, ${step.cpuS.toFixed(1)} cpu-s; repository ${mib(size)} (${size - (sizes[who] ?? 0) >= 0 ? '+' : ''}${mib(size - (sizes[who] ?? 0))})${step.note === undefined ? '' : ` ${JSON.stringify(step.note)}`}`)
        sizes[who] = size
        night[who] = { ...step, size }
      }
      record.nights.push(night)
    }
    if (tierfs !== undefined) record.tierfsOnDisk.push(await tierfs.onDisk())

    // Restores of night 1, each checked against night 1's source.
    const restoreOne = async (label: string, row: Row, who: Who, go: (dest: string) => Promise<Step>): Promise<void> => {
      const dest = join(dir, `restore-${label}`)
      await mkdir(dest)
      // tierfs remounts (empty chunk cache) and drops the caches after that, in its restore methods.
      if (who !== 'tierfs') noteCold(await dropCaches())
      log(`run ${rep + 1}/${opts.reps}: restore night 1: ${label}`)
      const step = await go(dest)
      push(row, who, step.seconds, step.cpuS)
      const diff = treeDiff(await treeOf(dest), want)
      if (diff.length > 0) {
        throw new Error(`RESTORE MISMATCH: ${label} restored night 1 into ${dest} with ${diff.length} differences from night 1's source:\n  ${diff.slice(0, 30).join('\n  ')}`)
      }
      log(`  ${step.seconds.toFixed(1)} s, ${step.cpuS.toFixed(1)} cpu-s; verified: ${totals.files} files equal to night 1's source (sha256, size, mode, owner, mtime)`)
      record.restores[label] = { ...step, verified: `${totals.files} files, ${totals.bytes} bytes` }
      await rm(dest, { recursive: true, force: true })
    }
    for (const who of order) {
      if (who === 'tierfs' && tierfs !== undefined) {
        const t = tierfs
        await restoreOne('tierfs-cp', rows.restore, 'tierfs', (d) => t.restore(d))
        await restoreOne('tierfs-restore', rows.restoreCli, 'tierfs', (d) => t.restoreCli(d))
      } else {
        await restoreOne(who, rows.restore, who, (d) => get(who).restore(d))
      }
    }
    for (const who of ['restic', 'borg'] as const) for (const x of rows.restore.runs[who]?.slice(-1) ?? []) push(rows.restoreCli, who, x)

    for (const who of order) {
      noteCold(await dropCaches())
      log(`run ${rep + 1}/${opts.reps}: ${who}: forget + prune night 1`)
      const before = await get(who).size()
      const step = await get(who).prune()
      const after = await get(who).size()
      push(rows.prune, who, step.seconds, step.cpuS)
      push(rows.freed, who, before - after)
      push(rows.sizeAfter, who, after)
      record.prune[who] = { ...step, freed: before - after, after }
      log(`  ${step.seconds.toFixed(1)} s, ${step.cpuS.toFixed(1)} cpu-s; freed ${mib(before - after)}, repository ${mib(after)}${step.note === undefined ? '' : ` ${JSON.stringify(step.note)}`}`)
    }
    for (const who of order) push(rows.rss, who, (await get(who).peakRssKb()) * 1024)
    return record
  } catch (err) {
    if (tierfs !== undefined && err instanceof Error) err.message += `\n(tierfs daemon logs kept in ${await tierfs.keepLogs()})`
    throw err
  } finally {
    for (const s of subjects.values()) await s.close().catch((e: unknown) => log(`closing ${s.who}: ${String(e)}`))
    await rm(dir, { recursive: true, force: true })
  }
}

async function versions(): Promise<string> {
  const restic = (await mustRun('restic', ['version'])).trim().split('\n')[0] ?? 'restic ?'
  const borg = (await mustRun('borg', ['--version'])).trim()
  const rev = (await run('git', ['-C', ROOT, 'rev-parse', '--short', 'HEAD'])).stdout.trim()
  const dirty = (await run('git', ['-C', ROOT, 'status', '--porcelain', '--untracked-files=no'])).stdout.trim() !== ''
  return `tierfs ${rev || '?'}${dirty ? ' + uncommitted changes' : ''} (dist/); ${restic}; ${borg}`
}

async function main(): Promise<void> {
  const opts = parseArgs(process.argv.slice(2))
  const z = opts.quick ? QUICK : FULL
  const base = await mkdtemp(join(tmpdir(), 'tierfs-backup-bench-'))
  const interrupted = (sig: string): void => {
    stopping = true
    log(`${sig}: unmounting and removing ${base}`)
    void Promise.allSettled([...liveMounts].map((m) => m.cleanup()))
      .then(() => rm(base, { recursive: true, force: true }))
      .finally(() => process.exit(130))
  }
  process.once('SIGINT', interrupted)
  process.once('SIGTERM', interrupted)
  const started = new Date()
  let coldDropped = true
  const noteCold = (ok: boolean): void => { coldDropped &&= ok }
  const nightInfo: NightInfo[] = []
  const rows = makeRows(z, () => coldDropped)
  try {
    const machine = await describeMachine(base)
    const peers = await versions()
    const reps: RepRecord[] = []
    for (let rep = 0; rep < opts.reps; rep++) reps.push(await oneRep(opts, z, base, rep, rows, noteCold, nightInfo))
    const last = reps[reps.length - 1] as RepRecord
    const n2 = last.nights[1] ?? {}
    const n3 = last.nights[2] ?? {}
    const seen = (n: Partial<Record<Who, Step & { size: number }>>): string => {
      const t = n.tierfs?.note ?? {}
      const r = n.restic?.note ?? {}
      const b = n.borg?.note ?? {}
      return `tierfs read ${mib(Number(t.bytesRead))} (${String(t.filesNew)} new, ${String(t.filesChanged)} changed, ${String(t.deleted)} deleted entries) and reported ${mib(Number(t.bytesStored))} stored; ` +
        `restic: ${String(r.filesNew)} new, ${String(r.filesChanged)} changed files, data_added ${mib(Number(r.dataAdded))}; borg: deduplicated_size ${mib(Number(b.deduplicatedSize))}`
    }
    const written = (i: number): string => mib(nightInfo[i]?.bytesWritten ?? 0)
    rows.grow2.test = `repository growth over night 2 (the export got ${written(1)} of new or rewritten file data, almost all of it the compacted file: new to a file-level tool, old to a deduplicating one)`
    rows.grow3.test = `repository growth over night 3 (the export got ${written(2)} of new or rewritten file data)`
    const pruned = Object.entries(last.prune).map(([who, p]) => `${who} freed ${mib(p.freed)}${p.note === undefined ? '' : ` (${Object.entries(p.note).map(([k, v]) => `${k} ${String(v)}`).join(', ')})`}`).join('; ')
    const end = await busyness()
    const list = Object.values(rows) as Row[]
    const table = [
      `## tierfs backup benchmark${opts.quick ? ' (--quick)' : ''}: median of ${opts.reps} run${opts.reps > 1 ? 's' : ''} (min–max)`,
      '',
      machineText(machine),
      `- subjects: ${peers}`,
      `- scenario (each run: fresh repositories, the same data): night 1 = ${nightInfo[0]?.text ?? '?'}; night 2 = ${nightInfo[1]?.text ?? '?'}; night 3 = ${nightInfo[2]?.text ?? '?'}`,
      '- settings: tierfs defaults (no compression, no encryption) except history.windowHours 0, checkpoint.everyHours 0, migrate.schedule \'\'; restic defaults (repository v2: encrypted, zstd auto compression); borg `init -e none` (not encrypted), lz4 (default)',
      `- cold = sync + drop_caches before every timed step${coldDropped ? '' : ' (REFUSED here: steps ran with a warm page cache)'}; tierfs is also remounted before each restore (its daemon stays mounted across nights, as on a backup host)`,
      '',
      markdownTable(list),
      '',
      `- at end: load average ${end.load.join(' / ')}, CPU pressure ${end.cpuPressure}`,
      'Ratios: for seconds and repository sizes, other ÷ tierfs, so > 1 means tierfs is faster / stores less; for "bytes freed", tierfs ÷ other. "cpu-s": user+sys CPU seconds of the step (median; tierfs: daemon + CLI or cp), which a busy machine distorts far less than wall time.',
      `Every restore was checked against night 1's source, file by file (sha256, size, mode, owner, mtime; symlink targets): all equal (${Object.keys(last.restores).join(', ')}).`,
      `Night 2 as the tools saw it (last run): ${seen(n2)}.`,
      `Night 3 as the tools saw it (last run): ${seen(n3)}.`,
      `Prune of night 1 (last run): ${pruned}. What each frees depends on its repacking rule: tierfs deletes packs with no live chunk and repacks those under 50% live; restic repacks until at most 5% of the repository is unused (--max-unused default); borg compact rewrites segments with at least 10% free space.`,
    ].join('\n')
    process.stdout.write(table + '\n')
    await mkdir(OUT_DIR, { recursive: true })
    const name = `backup${opts.quick ? '-quick' : ''}-${started.toISOString().replace(/[:.]/g, '-')}`
    await writeFile(join(OUT_DIR, `${name}.json`), JSON.stringify({
      bench: 'backup', quick: opts.quick, reps: opts.reps, startedAt: started.toISOString(),
      seconds: Math.round((Date.now() - started.getTime()) / 1000), machine, subjects: peers, coldDropped,
      scenario: { sizes: z, nights: nightInfo }, rows, runs: reps,
    }, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v), 2) + '\n')
    await writeFile(join(OUT_DIR, `${name}.md`), table + '\n')
    log(`results: ${join(OUT_DIR, name)}.json and .md`)
  } finally {
    await rm(base, { recursive: true, force: true })
  }
}

/** Set on SIGINT/SIGTERM: the cleanup exits; failures of work cut short are not reported. */
let stopping = false

await main().catch((err: unknown) => {
  if (stopping) return
  process.stderr.write(`${err instanceof Error ? err.stack ?? err.message : String(err)}\n`)
  process.exitCode = 1
})
