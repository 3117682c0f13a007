import { writeFile } from 'node:fs/promises'
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

/**
 * The memory mode: the tierfs daemon's peak RSS while one large file is written and sealed, and
 * while a million small files are created and sealed (everything 10x smaller with `quick`).
 */
export async function runMemory(quick: boolean, machine: Machine, _base: string, log: (m: string) => void): Promise<{ table: string; rows: Row[]; phases: Phase[] }> {
  const bigBytes = (quick ? 1 : 10) * 1024 * MiB
  const dirs = quick ? 100 : 1000
  const perDir = 1000
  const files = dirs * perDir
  const concurrency = 4
  const t = await tierfsSubject()
  const phases: Phase[] = []
  const rows: Row[] = []
  const mib = (kb: number): string => `${Math.round(kb / 1024)} MiB`
  const cpu = (p: Phase): string => `${p.cpuSeconds.toFixed(1)} cpu-s`
  try {
    const pid = await t.mount.pid()
    const startRss = (await procMemKb(pid))?.rss ?? 0
    log(`memory: writing a ${bigBytes / 1024 / MiB} GiB file`)
    const w = await measure(pid, 'write', () => workload(['gen', join(t.root, 'big'), String(bigBytes), 'memory-bench']))
    phases.push(w.phase)
    log('memory: sealing it')
    const s1 = await measure(pid, 'seal big', () => t.settle())
    phases.push(s1.phase)
    log(`memory: creating ${files} files of 100 bytes`)
    const c = await measure(pid, 'create', () => workload(['create', join(t.root, 'many'), String(files), String(dirs), '100', String(concurrency)]))
    phases.push(c.phase)
    log('memory: sealing them')
    const s2 = await measure(pid, 'seal many', () => t.settle())
    phases.push(s2.phase)
    const st = await measure(pid, 'status', () => t.status())
    phases.push(st.phase)
    const gib = `${bigBytes / 1024 / MiB} GiB`
    const row = (test: string, text: string): void => { rows.push({ test, unit: 'MiB', higherIsBetter: false, runs: {}, text: { tierfs: text }, targetText: 'report' }) }
    row('daemon RSS after mount (idle)', mib(startRss))
    row(`write a ${gib} file (node child, 1 MiB pwrites, fsync)`,
      `peak ${mib(w.phase.peakRssKb)}; ${w.phase.seconds.toFixed(1)} s (${Math.round(bigBytes / MiB / (w.value.ms / 1000))} MiB/s); daemon ${cpu(w.phase)}`)
    row(`↳ its seal (until staging is empty)`, `peak ${mib(s1.phase.peakRssKb)}, after ${mib(s1.phase.endRssKb)}; ${s1.phase.seconds.toFixed(1)} s; daemon ${cpu(s1.phase)}`)
    row(`create ${files.toLocaleString('en-US')} files of 100 bytes in ${dirs} dirs (node writeFile, concurrency ${concurrency})`,
      `peak ${mib(c.phase.peakRssKb)}; ${c.phase.seconds.toFixed(1)} s (${Math.round(files / (c.value.ms / 1000))} files/s); daemon ${cpu(c.phase)}`)
    row(`↳ their seal backlog (until staging is empty)`, `peak ${mib(s2.phase.peakRssKb)}, after ${mib(s2.phase.endRssKb)}; ${s2.phase.seconds.toFixed(1)} s; daemon ${cpu(s2.phase)}`)
    row(`tierfs status --json over ${Number(st.value.files).toLocaleString('en-US')} files`, `peak ${mib(st.phase.peakRssKb)}; ${st.phase.seconds.toFixed(1)} s; daemon ${cpu(st.phase)}`)
  } catch (err) {
    throw await keepLogsOnFailure(err)
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
  return { table, rows, phases }
}
