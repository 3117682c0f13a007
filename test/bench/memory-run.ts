import { readdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { workload } from './bench-run.js'
import { machineText, type Machine } from './machine.js'
import { markdownTable, type Row } from './report-table.js'
import { cpuSeconds, keepLogsOnFailure, procMemKb, tierfsSubject } from './subjects.js'

const MiB = 1024 * 1024

export interface Phase {
  name: string
  seconds: number
  /** Highest resident set during the phase (kB): VmHWM reset at its start, and 250 ms samples. */
  peakRssKb: number
  /** Resident set when the phase ended (kB). */
  endRssKb: number
  /** CPU seconds the daemon spent in the phase. */
  cpuSeconds: number
}

/**
 * Tracks a process's peak RSS over one phase. The kernel's high-water mark is reset at the start
 * (clear_refs 5, root only); the samples cover kernels or users where that is refused.
 */
async function measure<T>(pid: number, name: string, work: () => Promise<T>): Promise<{ phase: Phase; value: T }> {
  await writeFile(`/proc/${pid}/clear_refs`, '5').catch(() => undefined)
  let peak = 0
  const timer = setInterval(() => {
    void procMemKb(pid).then((m) => { if (m !== undefined) peak = Math.max(peak, m.rss) })
  }, 250)
  const t0 = performance.now()
  const c0 = (await cpuSeconds(pid)) ?? NaN
  try {
    const value = await work()
    const seconds = (performance.now() - t0) / 1000
    const cpu = ((await cpuSeconds(pid)) ?? NaN) - c0
    const m = await procMemKb(pid)
    peak = Math.max(peak, m?.hwm ?? 0, m?.rss ?? 0)
    return { phase: { name, seconds, peakRssKb: peak, endRssKb: m?.rss ?? 0, cpuSeconds: cpu }, value }
  } finally {
    clearInterval(timer)
  }
}

/** Largest staging backlog (files written but not sealed) and daemon fd count seen while `work` runs. */
async function watchBacklog<T>(pid: number, stagingDir: string, work: () => Promise<T>): Promise<{ value: T; files: number; fds: number }> {
  let files = 0
  let fds = 0
  const timer = setInterval(() => {
    void readdir(stagingDir).then((l) => { files = Math.max(files, l.length) }, () => undefined)
    void readdir(`/proc/${pid}/fd`).then((l) => { fds = Math.max(fds, l.length) }, () => undefined)
  }, 1000)
  try {
    return { value: await work(), files, fds }
  } finally {
    clearInterval(timer)
  }
}

/**
 * The memory mode: the tierfs daemon's peak RSS while one large file is written and sealed, and
 * while a million small files are created and sealed (everything 10x smaller with `quick`).
 * A phase that fails ends the run: the table keeps the phases measured so far and the failure.
 */
export async function runMemory(quick: boolean, machine: Machine, _base: string, log: (m: string) => void): Promise<{ table: string; rows: Row[]; phases: Phase[]; failed: boolean }> {
  const bigBytes = (quick ? 1 : 10) * 1024 * MiB
  const gib = `${bigBytes / 1024 / MiB} GiB`
  const dirs = quick ? 100 : 1000
  const files = dirs * 1000
  const concurrency = 4
  const t = await tierfsSubject()
  const phases: Phase[] = []
  const rows: Row[] = []
  let failed = false
  const mib = (kb: number): string => `${Math.round(kb / 1024)} MiB`
  const cpu = (p: Phase): string => `${p.cpuSeconds.toFixed(1)} cpu-s`
  const row = (test: string, text: string): void => { rows.push({ test, unit: 'MiB', higherIsBetter: false, runs: {}, text: { tierfs: text }, targetText: 'report' }) }
  const createTest = `create ${files.toLocaleString('en-US')} files of 100 bytes in ${dirs} dirs (node writeFile, concurrency ${concurrency})`
  let current = `write a ${gib} file (node child, 1 MiB pwrites, fsync)`
  try {
    const pid = await t.mount.pid()
    row('daemon RSS after mount (idle)', mib((await procMemKb(pid))?.rss ?? 0))
    log(`memory: writing a ${gib} file`)
    const w = await measure(pid, 'write', () => workload(['gen', join(t.root, 'big'), String(bigBytes), 'memory-bench']))
    phases.push(w.phase)
    row(current, `peak ${mib(w.phase.peakRssKb)}; ${w.phase.seconds.toFixed(1)} s (${Math.round(bigBytes / MiB / (w.value.ms / 1000))} MiB/s); daemon ${cpu(w.phase)}`)
    log('memory: sealing it')
    current = '↳ its seal (until staging is empty)'
    const s1 = await measure(pid, 'seal big', () => t.settle())
    phases.push(s1.phase)
    row(current, `peak ${mib(s1.phase.peakRssKb)}, after ${mib(s1.phase.endRssKb)}; ${s1.phase.seconds.toFixed(1)} s; daemon ${cpu(s1.phase)}`)
    log(`memory: creating ${files} files of 100 bytes`)
    current = createTest
    const stagingDir = join(t.mount.store, 'block', 'staging')
    const c = await measure(pid, 'create', () => watchBacklog(pid, stagingDir, () =>
      workload(['create', join(t.root, 'many'), String(files), String(dirs), '100', String(concurrency)])))
    phases.push(c.phase)
    row(current, `peak ${mib(c.phase.peakRssKb)}; ${c.phase.seconds.toFixed(1)} s (${Math.round(files / (c.value.value.ms / 1000))} files/s); daemon ${cpu(c.phase)}; seal backlog up to ${c.value.files} files, ${c.value.fds} open fds`)
    log('memory: sealing them')
    current = '↳ their seal backlog (until staging is empty)'
    const s2 = await measure(pid, 'seal many', () => t.settle())
    phases.push(s2.phase)
    row(current, `peak ${mib(s2.phase.peakRssKb)}, after ${mib(s2.phase.endRssKb)}; ${s2.phase.seconds.toFixed(1)} s; daemon ${cpu(s2.phase)}`)
    current = 'tierfs status --json'
    const st = await measure(pid, 'status', () => t.status())
    phases.push(st.phase)
    row(`tierfs status --json over ${Number(st.value.files).toLocaleString('en-US')} files`, `peak ${mib(st.phase.peakRssKb)}; ${st.phase.seconds.toFixed(1)} s; daemon ${cpu(st.phase)}`)
  } catch (err) {
    failed = true
    const annotated = await keepLogsOnFailure(err)
    const lines = (annotated instanceof Error ? annotated.message : String(annotated)).split('\n')
    // The errno line of the failed child and where the daemon logs were kept.
    const msg = [...new Set(lines.filter((l) => /\bE[A-Z]{2,}\b.*:|kept in/.test(l)).map((l) => l.trim().slice(0, 200)))].slice(-3).join(' ')
    row(current, `**FAILED**: ${msg.replace(/\|/g, '\\|')}`)
    log(`memory: ${current} failed`)
  } finally {
    await t.close()
  }
  const table = [
    `## tierfs foundation benchmark --memory${quick ? ' --quick' : ''}: tierfs daemon peak RSS (VmHWM reset per phase, plus 250 ms VmRSS samples)`,
    '',
    machineText(machine),
    '',
    markdownTable(rows),
  ].join('\n')
  return { table, rows, phases, failed }
}
