/**
 * The foundation benchmark: tierfs against a plain directory on the same disk (native) and
 * against PassthroughVfs mounted with the same options (the ceiling of fuse-native + our
 * adapter). A report, not a test: it prints the machine and ONE markdown table, and writes a
 * JSON (and the markdown) to bench-out/ ($BENCH_OUT_DIR when set, as scripts/bench.sh does).
 *
 * Run from the project root, as root (FUSE and drop_caches), after `npx tsc -p tsconfig.json`
 * (tierfs runs from dist/):
 *   node --import @tapjs/typescript/import test/bench/foundation.bench.ts            full (1 GiB, 10,000 files, 3 runs)
 *   node --import @tapjs/typescript/import test/bench/foundation.bench.ts --quick    everything 10x smaller, 2 runs
 *   node --import @tapjs/typescript/import test/bench/foundation.bench.ts --memory   tierfs daemon peak RSS: a 10 GiB
 *                                                                              file, then 1,000,000 small files
 *   (--memory --quick: 1 GiB and 100,000 files; --reps N overrides the run count)
 * Needs fio (scripts/setup.sh --bench, or apt-get install -y fio). A run that fails keeps the
 * tierfs daemon's logs in bench-out/tierfs-failed-<time>/ and exits 1 (the memory mode still
 * prints the phases it measured). Ctrl-C unmounts everything it mounted.
 *
 * Method: every timed row runs `reps` times; the order of the three filesystems alternates
 * (native, passthrough, tierfs; then the reverse) and the table shows the median with the range.
 * "Cold" means `sync; echo 3 > /proc/sys/vm/drop_caches` first and, for tierfs, a remount
 * (its chunk and metadata caches live in the daemon). Workloads run in child processes: dd,
 * fio, find/stat/cat, cp, and test/bench/workload.ts for file creation.
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { benchFailed, cleanupOnInterrupt, fioRandRead, log, mustRun, q, timed, timedSh, workload } from './bench-run.js'
import { busyness, describeMachine, machineText, type Machine } from './machine.js'
import { runMemory } from './memory-run.js'
import { markdownTable, speedRatio, type Row } from './report-table.js'
import { cpuSeconds, keepLogsOnFailure, liveSubjects, nativeSubject, OUT_DIR, passthroughSubject, tierfsSubject, type Subject, type SubjectName } from './subjects.js'

const MiB = 1024 * 1024

interface Options { quick: boolean; memory: boolean; reps: number }

function parseArgs(argv: string[]): Options {
  const quick = argv.includes('--quick')
  const memory = argv.includes('--memory')
  const i = argv.indexOf('--reps')
  const reps = i >= 0 ? Number(argv[i + 1]) : quick ? 2 : 3
  if (!Number.isInteger(reps) || reps < 1) throw new Error('--reps needs a positive integer')
  return { quick, memory, reps }
}

interface Sizes { bigBytes: number; files: number; dirs: number; fileSize: number; fioSeconds: number }

const FULL: Sizes = { bigBytes: 1024 * MiB, files: 10_000, dirs: 10, fileSize: 4096, fioSeconds: 10 }
const QUICK: Sizes = { bigBytes: 100 * MiB, files: 1_000, dirs: 10, fileSize: 4096, fioSeconds: 3 }

function sizeText(bytes: number): string {
  return bytes >= 1024 * MiB ? `${bytes / (1024 * MiB)} GiB` : `${Math.round(bytes / MiB)} MiB`
}

type PerfRows = Record<'write' | 'sealWrite' | 'readCold' | 'readWarm' | 'randWarm' | 'randCold' | 'create' | 'sealCreate'
  | 'stat' | 'readAll' | 'cpOut' | 'rmAll' | 'dedup' | 'rss', Row>

/** The rows of the performance run, filled as it goes. */
function perfRows(z: Sizes, coldOk: () => boolean): PerfRows {
  const big = sizeText(z.bigBytes)
  const n = z.files.toLocaleString('en-US')
  const cold = (): string => (coldOk() ? 'cold' : 'cold? (drop_caches REFUSED: page cache may be warm)')
  return {
    write: { test: `sequential write ${big} (dd bs=1M conv=fsync, random data)`, unit: 'MiB/s', higherIsBetter: true, runs: {}, target: { min: 0.8, of: 'passthrough' } },
    sealWrite: { test: `↳ tierfs: seal of that file after close (until staging is empty)`, unit: 's', higherIsBetter: false, runs: {} },
    readCold: { test: `sequential read ${big}, ${cold()} (dd bs=1M)`, unit: 'MiB/s', higherIsBetter: true, runs: {}, target: { min: 0.8, of: 'passthrough' } },
    readWarm: { test: `sequential read ${big}, warm (dd bs=1M)`, unit: 'MiB/s', higherIsBetter: true, runs: {}, target: { min: 0.8, of: 'passthrough' } },
    randWarm: { test: `random 4 KiB reads, warm page cache (fio psync ${z.fioSeconds} s)`, unit: 'IOPS', higherIsBetter: true, runs: {} },
    randCold: { test: `random 4 KiB reads, ${cold()} start (fio psync ${z.fioSeconds} s)`, unit: 'IOPS', higherIsBetter: true, runs: {} },
    create: { test: `create ${n} 4 KiB files in ${z.dirs} dirs (node writeFile, concurrency 1)`, unit: 'files/s', higherIsBetter: true, runs: {}, target: { min: 0.7, of: 'passthrough' } },
    sealCreate: { test: `↳ tierfs: seal backlog after the create (until staging is empty)`, unit: 's', higherIsBetter: false, runs: {} },
    stat: { test: `stat all, ${cold()} (find -print0 \\| xargs -0 stat)`, unit: 's', higherIsBetter: false, runs: {} },
    readAll: { test: `read all, ${cold()} (find -exec cat {} +)`, unit: 's', higherIsBetter: false, runs: {} },
    cpOut: { test: `cp -a the tree out to a native dir, ${cold()}`, unit: 's', higherIsBetter: false, runs: {}, target: { min: 0.7, of: 'passthrough' } },
    rmAll: { test: `rm -rf the tree`, unit: 's', higherIsBetter: false, runs: {} },
    dedup: { test: `same ${big} written twice under two names: storedBytes after 1st → 2nd`, unit: 'MiB', higherIsBetter: false, runs: {} },
    rss: { test: 'daemon peak RSS over the rows above (VmHWM, max over restarts; passthrough runs under the TS loader, which adds to its RSS)', unit: 'MiB', higherIsBetter: false, runs: {} },
  }
}

function push(row: Row, who: SubjectName, x: number): void {
  ;(row.runs[who] ??= []).push(x)
}

/** Runs one timed workload on `s`, recording the CPU seconds its serving daemon spent for `row`. */
async function withCpu<T>(row: Row, s: Subject, work: () => Promise<T>): Promise<T> {
  const pid = await s.daemonPid()
  const c0 = pid === undefined ? undefined : await cpuSeconds(pid)
  const value = await work()
  const c1 = pid === undefined ? undefined : await cpuSeconds(pid)
  if (c0 !== undefined && c1 !== undefined) ((row.cpu ??= {})[s.name] ??= []).push(c1 - c0)
  return value
}

async function bigFileRows(s: Subject, rep: number, src: string, z: Sizes, r: PerfRows, noteCold: (ok: boolean) => void): Promise<void> {
  const f = join(s.root, `big-${rep}`)
  const ddRead = (): Promise<number> => timed('dd', [`if=${f}`, 'of=/dev/null', 'bs=1M', 'status=none'])
  await timedSh(`cat ${q(src)} > /dev/null`)
  const tw = await withCpu(r.write, s, () => timed('dd', [`if=${src}`, `of=${f}`, 'bs=1M', 'conv=fsync', 'status=none']))
  push(r.write, s.name, z.bigBytes / MiB / tw)
  const seal = await withCpu(r.sealWrite, s, () => s.settle())
  if (s.name === 'tierfs') push(r.sealWrite, s.name, seal / 1000)
  noteCold(await s.cold())
  push(r.readCold, s.name, z.bigBytes / MiB / (await withCpu(r.readCold, s, ddRead)))
  push(r.readWarm, s.name, z.bigBytes / MiB / (await withCpu(r.readWarm, s, ddRead)))
  push(r.randWarm, s.name, await withCpu(r.randWarm, s, () => fioRandRead(f, z.bigBytes, z.fioSeconds, false)))
  noteCold(await s.cold())
  push(r.randCold, s.name, await withCpu(r.randCold, s, () => fioRandRead(f, z.bigBytes, z.fioSeconds, true)))
  await mustRun('rm', ['-f', f])
  await s.settle()
}

async function smallFileRows(s: Subject, rep: number, base: string, z: Sizes, r: PerfRows, noteCold: (ok: boolean) => void): Promise<void> {
  const d = join(s.root, `small-${rep}`)
  const w = await withCpu(r.create, s, () => workload(['create', d, String(z.files), String(z.dirs), String(z.fileSize), '1']))
  push(r.create, s.name, z.files / (w.ms / 1000))
  const seal = await withCpu(r.sealCreate, s, () => s.settle())
  if (s.name === 'tierfs') push(r.sealCreate, s.name, seal / 1000)
  noteCold(await s.cold())
  push(r.stat, s.name, await withCpu(r.stat, s, () => timedSh(`find ${q(d)} -type f -print0 | xargs -0 stat > /dev/null`)))
  noteCold(await s.cold())
  push(r.readAll, s.name, await withCpu(r.readAll, s, () => timedSh(`find ${q(d)} -type f -exec cat {} + > /dev/null`)))
  noteCold(await s.cold())
  const out = join(base, `cp-out-${s.name}`)
  push(r.cpOut, s.name, await withCpu(r.cpOut, s, () => timed('cp', ['-a', d, out])))
  await mustRun('rm', ['-rf', out])
  push(r.rmAll, s.name, await withCpu(r.rmAll, s, () => timed('rm', ['-rf', d])))
  await s.settle()
}

/** The same file written twice under two names on a fresh store: what the second copy costs. */
async function dedupRow(src: string, row: Row): Promise<void> {
  const t = await tierfsSubject()
  try {
    const stored = async (): Promise<number> => Number((await t.status()).storedBytes)
    const s0 = await stored()
    await timedSh(`cat ${q(src)} > /dev/null`)
    await mustRun('dd', [`if=${src}`, `of=${join(t.root, 'copy-1')}`, 'bs=1M', 'conv=fsync', 'status=none'])
    await t.settle()
    const s1 = await stored()
    await mustRun('dd', [`if=${src}`, `of=${join(t.root, 'copy-2')}`, 'bs=1M', 'conv=fsync', 'status=none'])
    await t.settle()
    const s2 = await stored()
    const pct = ((s2 - s1) / (s1 - s0)) * 100
    row.runs.tierfs = [s1 / MiB, s2 / MiB]
    row.text = { tierfs: `${(s1 / MiB).toFixed(1)} MiB → ${(s2 / MiB).toFixed(1)} MiB (+${pct.toFixed(3)}%)` }
    row.targetText = `< 1% increase ${pct < 1 ? '**met**' : '**MISSED**'}`
  } catch (err) {
    throw await keepLogsOnFailure(err)
  } finally {
    await t.close()
  }
}

async function perf(opts: Options, machine: Machine, base: string): Promise<{ table: string; rows: Row[]; coldDropped: boolean }> {
  const z = opts.quick ? QUICK : FULL
  let coldDropped = true
  const noteCold = (ok: boolean): void => { coldDropped &&= ok }
  const rows = perfRows(z, () => coldDropped)
  const src = join(base, 'source.bin')
  await workload(['gen', src, String(z.bigBytes), 'foundation-bench'])
  const subjects: Subject[] = []
  try {
    subjects.push(await nativeSubject(base), await passthroughSubject(base), await tierfsSubject())
    for (let rep = 0; rep < opts.reps; rep++) {
      const order = rep % 2 === 0 ? subjects : [...subjects].reverse()
      for (const s of order) {
        log(`run ${rep + 1}/${opts.reps}: ${s.name}: ${sizeText(z.bigBytes)} file rows`)
        await bigFileRows(s, rep, src, z, rows, noteCold)
      }
      for (const s of order) {
        log(`run ${rep + 1}/${opts.reps}: ${s.name}: ${z.files} small files rows`)
        await smallFileRows(s, rep, base, z, rows, noteCold)
      }
    }
    const rssText = async (s: Subject): Promise<string> => {
      const peak = await s.peakRssKb()
      const mib = (kb: number | undefined): string => (kb === undefined ? '?' : `${Math.round(kb / 1024)} MiB`)
      return peak === undefined ? '—' : `${mib(peak)} (idle after mount: ${mib(s.idleRssKb)})`
    }
    rows.rss.text = { passthrough: await rssText(subjects[1] as Subject), tierfs: await rssText(subjects[2] as Subject) }
  } catch (err) {
    throw await keepLogsOnFailure(err)
  } finally {
    for (const s of subjects) await s.close().catch((err: unknown) => log(`closing ${s.name}: ${String(err)}`))
  }
  log('dedup row (fresh tierfs store)')
  await dedupRow(src, rows.dedup)
  const end = await busyness()
  const list = Object.values(rows)
  const missed = list.filter((r) => r.target !== undefined && (speedRatio(r, r.target.of) ?? 0) < r.target.min).map((r) => r.test)
  const table = [
    `## tierfs foundation benchmark${opts.quick ? ' (--quick)' : ''}: median of ${opts.reps} runs (min–max)`,
    '',
    machineText(machine),
    `- cold = sync + drop_caches${coldDropped ? '' : ' (REFUSED here: cold rows ran with a warm page cache)'}; tierfs is also remounted (its chunk cache is cold only after a remount)`,
    '',
    markdownTable(list),
    '',
    `- at end: load average ${end.load.join(' / ')}, CPU pressure ${end.cpuPressure}`,
    'Ratios are speed ratios (for rows in seconds: the other time ÷ tierfs time), so a ratio at or above the target passes. "daemon N cpu-s": CPU seconds the serving process spent on that row (median), which a busy machine distorts far less than wall time.',
    missed.length > 0 ? `Targets missed: ${missed.length} (${missed.join('; ')}).` : 'All targets met.',
  ].join('\n')
  return { table, rows: list, coldDropped }
}

async function main(): Promise<void> {
  const opts = parseArgs(process.argv.slice(2))
  const base = await mkdtemp(join(tmpdir(), 'tierfs-bench-'))
  cleanupOnInterrupt(base, () => Promise.allSettled([...liveSubjects].map((s) => s.close())))
  const started = new Date()
  try {
    const machine = await describeMachine(base)
    const result = opts.memory ? await runMemory(opts.quick, machine, base, log) : await perf(opts, machine, base)
    process.stdout.write(result.table + '\n')
    if ('failed' in result && result.failed) process.exitCode = 1
    const outDir = OUT_DIR
    await mkdir(outDir, { recursive: true })
    const name = `foundation-${opts.memory ? 'memory' : 'perf'}${opts.quick ? '-quick' : ''}-${started.toISOString().replace(/[:.]/g, '-')}`
    await writeFile(join(outDir, `${name}.json`), JSON.stringify({
      bench: 'foundation', mode: opts.memory ? 'memory' : 'perf', quick: opts.quick, reps: opts.reps,
      startedAt: started.toISOString(), seconds: Math.round((Date.now() - started.getTime()) / 1000), machine, ...result,
    }, null, 2) + '\n')
    await writeFile(join(outDir, `${name}.md`), result.table + '\n')
    log(`results: ${join(outDir, name)}.json and .md`)
  } finally {
    await rm(base, { recursive: true, force: true })
  }
}

await main().catch(benchFailed)
