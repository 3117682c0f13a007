/**
 * The two tierfs-at-scale parts of the backup benchmark (test/bench/backup.bench.ts):
 *  - a snapshot-mode restore point of many files: `files` small files written through a fresh
 *    mount under /many (a policy whose `backup:` section has no `source`), then `tierfs snapshot
 *    create` and `tierfs backup run` timed several times, with restic backing up a native tree
 *    of the same shape (first backup, then again with nothing changed) as the reference;
 *  - prune planning at 1,000,000 chunks: test/bench/prune-scale.bench.ts in a child process.
 */
import { spawn } from 'node:child_process'
import { readdir, rm } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { mustRun, workload } from './bench-run.js'
import { benchStore, closeStore, ResticBackup, tierfsEnv } from './backup-subjects.js'
import { TS_LOADER } from './subjects.js'
import { CLI } from '../support/tierfs-mount.js'

export interface PinRun {
  files: number
  dirs: number
  fileSize: number
  writers: number
  /** Seconds to create the files through the mount, and the same shape natively (restic's copy). */
  createSeconds: number
  nativeCreateSeconds: number
  /** Files found in the last restore point of each command (must be `files`). */
  pointFiles: { snapshotCreate: number; backupRun: number }
  /** `tierfs snapshot create`: the process, spawn to exit, and its own `elapsedMs` (the control call). */
  snapshotCli: number[]
  snapshotRoundTrip: number[]
  /** `tierfs backup run` (snapshot mode): the process, and the run in the daemon (finishedAt - startedAt). */
  runCli: number[]
  runDaemon: number[]
  /** `node -e 0`: what any node CLI costs before it does anything. */
  nodeStart: number[]
  /** restic backup of the native tree: the first, then again with nothing changed. */
  restic: { first: number; firstCpu: number; again: number; againCpu: number }
}

async function seconds<T>(work: () => Promise<T>): Promise<[number, T]> {
  const t0 = performance.now()
  const v = await work()
  return [(performance.now() - t0) / 1000, v]
}

/** Regular files under `dir` (readdir only: the count of a restore point's tree). */
async function countFiles(dir: string): Promise<number> {
  let n = 0
  for (const e of await readdir(dir, { withFileTypes: true })) n += e.isDirectory() ? await countFiles(join(dir, e.name)) : e.isFile() ? 1 : 0
  return n
}

export async function snapshotModeRun(o: { files: number; times: number; base: string; tmp: string; log: (m: string) => void }): Promise<PinRun> {
  const dirs = Math.max(1, Math.round(o.files / 1000))
  const fileSize = 16
  const writers = 8
  const m = await benchStore({}, {
    many: [
      '# backup benchmark: a snapshot-mode workflow (no source): a run pins /many as it is',
      'name: many',
      'match: { path: "/many/**" }',
      'tiers:',
      '  - { tier: block }',
      'backup: { name: many }',
      '',
    ].join('\n'),
  })
  const native = join(o.base, 'many-native')
  try {
    o.log(`snapshot mode: creating ${o.files.toLocaleString('en-US')} files of ${fileSize} B in ${dirs} dirs through the mount (${writers} writers)`)
    const made = await workload(['create', join(m.mnt, 'many'), String(o.files), String(dirs), String(fileSize), String(writers)])
    o.log(`  ${(made.ms / 1000).toFixed(1)} s (${Math.round(o.files / (made.ms / 1000))} files/s)`)
    const cli = async (args: string[]): Promise<[number, string]> => seconds(() => mustRun(process.execPath, [CLI, ...args], { env: tierfsEnv() }))
    const run: Omit<PinRun, 'restic' | 'nativeCreateSeconds' | 'pointFiles'> = {
      files: o.files, dirs, fileSize, writers, createSeconds: made.ms / 1000,
      snapshotCli: [], snapshotRoundTrip: [], runCli: [], runDaemon: [], nodeStart: [],
    }
    let lastCreate = ''
    let lastRun = ''
    for (let i = 0; i < o.times; i++) {
      const [s1, out1] = await cli(['snapshot', 'create', m.mnt, '--workflow', 'many', '--path', '/many', '--json'])
      const rp = JSON.parse(out1) as { name: string; elapsedMs: number }
      run.snapshotCli.push(s1)
      run.snapshotRoundTrip.push(rp.elapsedMs / 1000)
      lastCreate = rp.name
      const [s2, out2] = await cli(['backup', 'run', m.mnt, 'many', '--json'])
      const rec = JSON.parse(out2) as { ok: boolean; startedAt: string; finishedAt: string; summary?: { restorePoint?: { name: string } } }
      if (!rec.ok || rec.summary?.restorePoint === undefined) throw new Error(`tierfs backup run many failed: ${out2}`)
      run.runCli.push(s2)
      run.runDaemon.push((Date.parse(rec.finishedAt) - Date.parse(rec.startedAt)) / 1000)
      lastRun = rec.summary.restorePoint.name
      run.nodeStart.push((await seconds(() => mustRun(process.execPath, ['-e', '0'])))[0])
      o.log(`  snapshot create ${(s1 * 1000).toFixed(0)} ms (elapsedMs ${rp.elapsedMs}); backup run ${(s2 * 1000).toFixed(0)} ms (in the daemon ${Date.parse(rec.finishedAt) - Date.parse(rec.startedAt)} ms)`)
    }
    const pointFiles = {
      snapshotCreate: await countFiles(join(m.mnt, '.snapshots/many', lastCreate)),
      backupRun: await countFiles(join(m.mnt, '.snapshots/many', lastRun)),
    }
    if (pointFiles.snapshotCreate !== o.files || pointFiles.backupRun !== o.files) {
      throw new Error(`snapshot mode: restore points hold ${pointFiles.snapshotCreate} and ${pointFiles.backupRun} files, not ${o.files}`)
    }
    o.log(`  restore points checked: ${o.files} files in each; restic reference on a native tree of the same shape`)
    const nativeMade = await workload(['create', native, String(o.files), String(dirs), String(fileSize), String(writers)])
    const restic = new ResticBackup(join(o.base, 'many-restic'), native, o.tmp)
    try {
      await restic.init()
      const first = await restic.backupDir(1)
      const again = await restic.backupDir(2)
      o.log(`  restic backup: first ${first.seconds.toFixed(1)} s, again (nothing changed) ${again.seconds.toFixed(1)} s`)
      return { ...run, nativeCreateSeconds: nativeMade.ms / 1000, pointFiles, restic: { first: first.seconds, firstCpu: first.cpuS, again: again.seconds, againCpu: again.cpuS } }
    } finally {
      await restic.close()
    }
  } finally {
    await closeStore(m)
    await rm(native, { recursive: true, force: true })
  }
}

export interface PlanningRun {
  chunks: number
  buildSeconds?: number
  /** One per timed planning pass: wall ms, chunks/s, chunks per CPU second. */
  passes: Array<{ ms: number; chunksPerSecond: number; chunksPerCpuSecond: number; loadAvg1: number }>
  dryRun?: Record<string, unknown>
  /** The real prune on the throw-away store: collectMs, planningMs (dead records removed), chunksPerSecond. */
  real?: Record<string, unknown>
  memory?: Record<string, unknown>
}

/** Runs test/bench/prune-scale.bench.ts (build a `chunks`-chunk store, then `runs` timed planning passes) and parses its JSON lines. */
export async function prunePlanningRun(chunks: number, runs: number, log: (m: string) => void): Promise<PlanningRun> {
  const script = fileURLToPath(new URL('./prune-scale.bench.ts', import.meta.url))
  const child = spawn(process.execPath, ['--import', TS_LOADER, script, '--chunks', String(chunks), '--runs', String(runs)], { stdio: ['ignore', 'pipe', 'pipe'] })
  const lines: string[] = []
  let out = ''
  let err = ''
  child.stdout.on('data', (d: Buffer) => {
    out += d.toString()
    for (let i = out.indexOf('\n'); i >= 0; i = out.indexOf('\n')) {
      lines.push(out.slice(0, i))
      log(`  prune-scale: ${out.slice(0, i)}`)
      out = out.slice(i + 1)
    }
  })
  child.stderr.on('data', (d: Buffer) => { err = (err + d.toString()).slice(-4000) })
  const code = await new Promise<number | null>((ok) => child.once('close', ok))
  if (code !== 0) throw new Error(`prune-scale.bench.ts exited ${code}:\n${err}`)
  const recs = lines.map((l) => { try { return JSON.parse(l) as Record<string, any> } catch { return {} } })
  const r: PlanningRun = { chunks, passes: [] }
  for (const j of recs) {
    if (j.built !== undefined) r.buildSeconds = Number(j.seconds)
    else if (j.planning !== undefined) r.passes.push({ ms: j.ms, chunksPerSecond: j.chunksPerSecond, chunksPerCpuSecond: j.chunksPerCpuSecond, loadAvg1: j.loadAvg1 })
    else if (j.prune === 'real') r.real = j
    else if (j.prune !== undefined) r.dryRun = j
    else if (j.peakRssMiB !== undefined) r.memory = j
  }
  if (r.passes.length === 0) throw new Error(`prune-scale.bench.ts printed no planning pass:\n${lines.join('\n')}`)
  return r
}
