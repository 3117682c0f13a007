/**
 * The tiering benchmark: what moving data to an object store and reading it back costs, against
 * tools that do only that, on the same s3rver in the same run; and what planning a policy pass
 * over a million files costs. A report, not a test: it prints the machine and ONE markdown table,
 * and writes a JSON (and the markdown) to bench-out/ ($BENCH_OUT_DIR when set).
 *
 * Run from the project root, as root (FUSE and drop_caches), after `npx tsc -p tsconfig.json`:
 *   node --import @tapjs/typescript/import test/bench/tiering.bench.ts           full (1 GiB, 1,000,000 files, 3 runs)
 *   node --import @tapjs/typescript/import test/bench/tiering.bench.ts --quick   256 MiB, 100,000 files, 2 runs
 *   (--reps N overrides the run count; --no-plan skips the million-file plan; --only migrate,read,plan
 *   runs only those rows)
 * Needs rclone (scripts/setup.sh --bench, or apt-get install -y rclone).
 *
 * Rows:
 *  - migrate: 16 sealed files (1 GiB) block -> s3rver by `tierfs policy apply` (copy, verify,
 *    commit, free), beside `rclone copy` of the same files from a plain directory to the same
 *    s3rver. Between runs tierfs brings the files back to block (policy with the clock set back).
 *  - read: `dd bs=1M` of a 1 GiB file held on the object tier, after a remount (empty chunk
 *    cache) and drop_caches, beside a plain GetObject of each of its pack objects, streamed to
 *    /dev/null by the AWS SDK.
 *  - plan: the migrator's plan (what `tierfs policy plan` runs in the daemon) over 1,000,000 files
 *    whose metadata is written through the Meta API, in this process: time and peak RSS.
 */
import { createWriteStream } from 'node:fs'
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { pipeline } from 'node:stream/promises'
import { fileURLToPath } from 'node:url'
import type { Readable } from 'node:stream'
import { GetObjectCommand, S3Client } from '@aws-sdk/client-s3'
import { log, mustRun, timed, timedProc, workload } from './bench-run.js'
import { describeMachine, machineText } from './machine.js'
import { median } from './report-table.js'
import { cpuSeconds, dropCaches, procMemKb } from './subjects.js'
import { runPlan, type PlanRun } from './tiering-plan-run.js'
import { S3RVER_KEY, S3rverProcess } from '../support/s3rver-process.js'
import { tempMount, type TestMount } from '../support/tierfs-mount.js'
import { waitSealed } from '../support/e2e-io.js'
import { S3RVER_PROFILE, chainPolicy, s3Keys, s3Target, useTieringCredentials, writePolicy } from '../support/tiering-fixture.js'

const MiB = 1024 * 1024
const ROOT = resolve(fileURLToPath(new URL('../..', import.meta.url)))

type Part = 'migrate' | 'read' | 'plan'
interface Options { quick: boolean; reps: number; parts: Set<Part> }

function parseArgs(argv: string[]): Options {
  const quick = argv.includes('--quick')
  const i = argv.indexOf('--reps')
  const reps = i >= 0 ? Number(argv[i + 1]) : quick ? 2 : 3
  if (!Number.isInteger(reps) || reps < 1) throw new Error('--reps needs a positive integer')
  const only = argv.indexOf('--only')
  const parts = new Set<Part>(only >= 0 ? (argv[only + 1] ?? '').split(',') as Part[] : ['migrate', 'read', 'plan'])
  if (argv.includes('--no-plan')) parts.delete('plan')
  return { quick, reps, parts }
}

interface Row {
  test: string
  unit: string
  tierfs: number[]
  peer: number[]
  peerName: string
  /** tierfs / peer must be at least this (speeds: higher is better). */
  target: number
  /** CPU seconds per run, where measured: tierfs's daemon, the peer's process, and the shared server during each. */
  cpu?: { tierfs: number[]; peer: number[]; serverTierfs: number[]; serverPeer: number[] }
}

function fmt(x: number): string {
  return x >= 100 ? Math.round(x).toLocaleString('en-US') : x >= 10 ? x.toFixed(1) : x.toFixed(2)
}

function cell(xs: number[], unit: string): string {
  const m = median(xs)
  if (m === undefined) return '—'
  return xs.length > 1 ? `${fmt(m)} ${unit} (${fmt(Math.min(...xs))}–${fmt(Math.max(...xs))})` : `${fmt(m)} ${unit}`
}

function ratio(r: Row): number | undefined {
  const t = median(r.tierfs)
  const p = median(r.peer)
  return t === undefined || p === undefined || p === 0 ? undefined : t / p
}

/** rclone's S3 remote "s3" on s3rver, configured through the environment only. */
function rcloneEnv(endpoint: string): NodeJS.ProcessEnv {
  // A CA bundle from the host's environment would make rclone build its own TLS transport; the
  // endpoint is plain http on 127.0.0.1.
  const { AWS_CA_BUNDLE: _ca, ...env } = process.env
  return {
    ...env,
    RCLONE_CONFIG_S3_TYPE: 's3', RCLONE_CONFIG_S3_PROVIDER: 'Other', RCLONE_CONFIG_S3_ENDPOINT: endpoint,
    RCLONE_CONFIG_S3_ACCESS_KEY_ID: S3RVER_KEY, RCLONE_CONFIG_S3_SECRET_ACCESS_KEY: S3RVER_KEY,
    RCLONE_CONFIG_S3_REGION: 'us-east-1', RCLONE_CONFIG_S3_FORCE_PATH_STYLE: 'true', RCLONE_CONFIG: '/dev/null',
  }
}

/** Runs rclone; its wall and CPU seconds. */
async function rclone(args: string[], endpoint: string, tmp: string): Promise<{ seconds: number; cpuS: number }> {
  const r = await timedProc('rclone', args, { env: rcloneEnv(endpoint), tmp })
  return { seconds: r.seconds, cpuS: r.cpuS }
}

async function cli(m: TestMount, args: string[]): Promise<string> {
  const r = await m.cli(args)
  if (r.code !== 0) throw new Error(`tierfs ${args.join(' ')}: exit ${r.code}: ${r.stderr}${r.stdout}`)
  return r.stdout
}

/** Starts counting the CPU time of these processes; the returned function gives each one's seconds since. */
async function cpuOf(pids: Array<number | undefined>): Promise<() => Promise<number[]>> {
  const read = (): Promise<number[]> => Promise.all(pids.map(async (pid) => (pid === undefined ? undefined : await cpuSeconds(pid)) ?? Number.NaN))
  const before = await read()
  return async () => (await read()).map((x, i) => x - (before[i] as number))
}

/** `tierfs policy apply` with the clock at `offset`; seconds, and the pass report. */
async function timedApply(m: TestMount, offset: string): Promise<{ seconds: number; report: Record<string, any> }> {
  await cli(m, ['debug', 'clock-offset', m.mnt, offset])
  const t0 = performance.now()
  const out = await cli(m, ['policy', 'apply', m.mnt, '--json'])
  return { seconds: (performance.now() - t0) / 1000, report: JSON.parse(out) as Record<string, any> }
}

async function migrateRows(opts: Options, s3: S3rverProcess, base: string, rows: { migrate: Row }): Promise<void> {
  const files = 16
  const size = (opts.quick ? 256 : 1024) * MiB / files
  const src = join(base, 'migrate-src')
  await mkdir(src, { recursive: true })
  for (let i = 0; i < files; i++) await workload(['gen', join(src, `f${i}.bin`), String(size), `tiering-bench-${i}`])
  await s3.createBucket('tierfs-migrate')
  await s3.createBucket('rclone-migrate')
  const m = await tempMount({ config: { targets: { 's3-bench': s3Target(s3.endpoint, 'tierfs-migrate') }, migrate: { schedule: '' } } })
  try {
    await mkdir(join(m.mnt, 'hbase'))
    await mustRun('cp', ['-r', ...Array.from({ length: files }, (_, i) => join(src, `f${i}.bin`)), join(m.mnt, 'hbase')])
    await waitSealed(m, 600_000)
    await writePolicy(m, 'hbase', chainPolicy({ name: 'hbase', path: '/hbase/**', object: 's3-bench', then: 'keep' }))
    await cli(m, ['policy', 'reload', m.mnt])
    const bytes = files * size
    const cpus: NonNullable<Row['cpu']> = { tierfs: [], peer: [], serverTierfs: [], serverPeer: [] }
    rows.migrate.cpu = cpus
    for (let rep = 0; rep < opts.reps; rep++) {
      const order = rep % 2 === 0 ? ['tierfs', 'rclone'] : ['rclone', 'tierfs']
      for (const who of order) {
        await dropCaches()
        if (who === 'tierfs') {
          log(`run ${rep + 1}/${opts.reps}: tierfs migrate ${bytes / MiB} MiB block -> s3rver`)
          const cpu = await cpuOf([await m.pid(), s3.pid])
          const r = await timedApply(m, '6d')
          const [daemonCpu = Number.NaN, serverCpu = Number.NaN] = await cpu()
          if (r.report.filesMoved !== files || r.report.errors.length > 0) throw new Error(`migration incomplete: ${JSON.stringify(r.report)}`)
          rows.migrate.tierfs.push(bytes / MiB / r.seconds)
          cpus.tierfs.push(daemonCpu)
          cpus.serverTierfs.push(serverCpu)
          log(`  ${r.seconds.toFixed(1)} s, daemon ${daemonCpu.toFixed(1)} cpu-s, s3rver ${serverCpu.toFixed(1)} cpu-s; moving back to block (not timed)`)
          const back = await timedApply(m, '0d')
          if (back.report.filesMoved !== files) throw new Error(`move back incomplete: ${JSON.stringify(back.report)}`)
        } else {
          log(`run ${rep + 1}/${opts.reps}: rclone copy ${bytes / MiB} MiB -> s3rver`)
          const cpu = await cpuOf([s3.pid])
          const { seconds, cpuS } = await rclone(['copy', src, `s3:rclone-migrate/run${rep}`, '--no-check-dest', '--s3-no-check-bucket'], s3.endpoint, base)
          const [serverCpu = Number.NaN] = await cpu()
          rows.migrate.peer.push(bytes / MiB / seconds)
          cpus.peer.push(cpuS)
          cpus.serverPeer.push(serverCpu)
          log(`  ${seconds.toFixed(1)} s, rclone ${cpuS.toFixed(1)} cpu-s, s3rver ${serverCpu.toFixed(1)} cpu-s`)
          await rclone(['purge', `s3:rclone-migrate/run${rep}`], s3.endpoint, base)
        }
      }
    }
  } finally {
    await m.cleanup()
    await rm(src, { recursive: true, force: true })
  }
}

/**
 * The pack objects read as tierfs reads them, without tierfs: one ranged GetObject per MiB (about
 * one chunk), three at a time (a read and two chunks of read-ahead). Says how much of the gap to a
 * whole-object GET is the request count.
 */
async function rangedGets(client: S3Client, bucket: string, keys: Array<{ key: string; size: number }>): Promise<number> {
  const ranges = keys.flatMap((k) => Array.from({ length: Math.ceil(k.size / MiB) }, (_, i) => ({ key: k.key, start: i * MiB, end: Math.min(k.size, (i + 1) * MiB) - 1 })))
  let next = 0
  const t0 = performance.now()
  await Promise.all(Array.from({ length: 3 }, async () => {
    for (let r = ranges[next++]; r !== undefined; r = ranges[next++]) {
      const res = await client.send(new GetObjectCommand({ Bucket: bucket, Key: r.key, Range: `bytes=${r.start}-${r.end}` }))
      await pipeline(res.Body as Readable, createWriteStream('/dev/null'))
    }
  }))
  return (performance.now() - t0) / 1000
}

async function readRows(opts: Options, s3: S3rverProcess, base: string, rows: { read: Row; ranged: number[] }): Promise<{ daemonPeakRssKb: number }> {
  const bytes = (opts.quick ? 256 : 1024) * MiB
  const src = join(base, 'read-src.bin')
  await workload(['gen', src, String(bytes), 'tiering-bench-read'])
  await s3.createBucket('tierfs-read')
  const m = await tempMount({ config: { targets: { 's3-bench': s3Target(s3.endpoint, 'tierfs-read') }, migrate: { schedule: '' } } })
  let daemonPeakRssKb = 0
  try {
    await mkdir(join(m.mnt, 'hbase'))
    const file = join(m.mnt, 'hbase/big.bin')
    await mustRun('dd', [`if=${src}`, `of=${file}`, 'bs=1M', 'status=none'])
    await waitSealed(m, 600_000)
    await writePolicy(m, 'hbase', chainPolicy({ name: 'hbase', path: '/hbase/**', object: 's3-bench', then: 'keep' }))
    await cli(m, ['policy', 'reload', m.mnt])
    const r = await timedApply(m, '6d')
    if (r.report.filesMoved !== 1) throw new Error(`move to s3 incomplete: ${JSON.stringify(r.report)}`)
    const keys = await s3Keys(s3.endpoint, 'tierfs-read')
    const client = new S3Client({ endpoint: s3.endpoint, region: 'us-east-1', profile: S3RVER_PROFILE, forcePathStyle: true })
    try {
      for (let rep = 0; rep < opts.reps; rep++) {
        const order = rep % 2 === 0 ? ['tierfs', 'get'] : ['get', 'tierfs']
        for (const who of order) {
          if (who === 'tierfs') {
            await m.umount()
            await m.mount()
            await dropCaches()
            log(`run ${rep + 1}/${opts.reps}: tierfs sequential read of ${bytes / MiB} MiB on the object tier`)
            const seconds = await timed('dd', [`if=${file}`, 'of=/dev/null', 'bs=1M', 'status=none'])
            rows.read.tierfs.push(bytes / MiB / seconds)
            daemonPeakRssKb = Math.max(daemonPeakRssKb, (await procMemKb(await m.pid()))?.hwm ?? 0)
            log(`  ${seconds.toFixed(1)} s`)
          } else {
            await dropCaches()
            log(`run ${rep + 1}/${opts.reps}: GetObject of its ${keys.length} packs, streamed to /dev/null`)
            const t0 = performance.now()
            let got = 0
            for (const k of keys) {
              const res = await client.send(new GetObjectCommand({ Bucket: 'tierfs-read', Key: k.key }))
              got += res.ContentLength ?? 0
              await pipeline(res.Body as Readable, createWriteStream('/dev/null'))
            }
            const seconds = (performance.now() - t0) / 1000
            // The packs hold the file's bytes plus record headers and trailers: speed of the file's bytes.
            rows.read.peer.push(bytes / MiB / seconds)
            log(`  ${seconds.toFixed(1)} s (${(got / MiB).toFixed(1)} MiB of packs)`)
            await dropCaches()
            const ranged = await rangedGets(client, 'tierfs-read', keys)
            rows.ranged.push(bytes / MiB / ranged)
            log(`  the same in 1 MiB ranged GETs, 3 at a time: ${ranged.toFixed(1)} s`)
          }
        }
      }
    } finally {
      client.destroy()
    }
  } finally {
    await m.cleanup()
    await rm(src, { force: true })
  }
  return { daemonPeakRssKb }
}

async function main(): Promise<void> {
  const opts = parseArgs(process.argv.slice(2))
  await useTieringCredentials()
  const base = await mkdtemp(join(tmpdir(), 'tierfs-tiering-bench-'))
  const started = new Date()
  const big = opts.quick ? '256 MiB' : '1 GiB'
  const ranged: number[] = []
  const rows = {
    migrate: { test: `migrate ${big} of sealed files (16) block -> s3rver (\`policy apply\`)`, unit: 'MiB/s', tierfs: [], peer: [], peerName: 'rclone copy (same files, plain dir -> same s3rver)', target: 1.0 } as Row,
    read: { test: `sequential read of a ${big} file on the object tier, chunk cache and page cache cold (dd bs=1M)`, unit: 'MiB/s', tierfs: [], peer: [], peerName: 'GetObject of its packs, streamed to /dev/null (AWS SDK)', target: 0.8 } as Row,
  }
  let plan: PlanRun | undefined
  let daemonPeakRssKb = 0
  const s3 = await S3rverProcess.start()
  try {
    const machine = await describeMachine(base)
    const rcloneVersion = (await mustRun('rclone', ['version'])).split('\n')[0] ?? 'rclone'
    if (opts.parts.has('migrate')) await migrateRows(opts, s3, base, rows)
    if (opts.parts.has('read')) daemonPeakRssKb = (await readRows(opts, s3, base, { read: rows.read, ranged })).daemonPeakRssKb
    if (opts.parts.has('plan')) {
      const n = opts.quick ? 100_000 : 1_000_000
      log(`plan over ${n.toLocaleString('en-US')} files`)
      plan = await runPlan(n, log)
    }
    const lines = [
      `## tierfs tiering benchmark${opts.quick ? ' (--quick)' : ''}: median of ${opts.reps} runs (min–max)`,
      '',
      machineText(machine),
      `- peers: ${rcloneVersion}; s3rver ${s3.endpoint} (one node process, files in a temp dir on the same disk)`,
      '',
      '| test | tierfs | peer | tierfs / peer | target |',
      '|---|---|---|---|---|',
      ...Object.values(rows).map((r) => {
        const x = ratio(r)
        const verdict = x === undefined ? '' : x >= r.target ? ' **met**' : ' **MISSED**'
        return `| ${r.test} | ${cell(r.tierfs, r.unit)} | ${r.peerName}: ${cell(r.peer, r.unit)} | ${x === undefined ? '—' : `${x.toFixed(2)}x`} | ≥ ${r.target}x${verdict} |`
      }),
      ...(plan === undefined ? [] : [
        `| \`policy plan\` over ${plan.files.toLocaleString('en-US')} files (migrator.plan in-process; metadata written through the Meta API in ${plan.buildSeconds.toFixed(0)} s) | ${plan.planSeconds.toFixed(1)} s (${Math.round(plan.files / plan.planSeconds).toLocaleString('en-US')} files/s), peak RSS ${Math.round(plan.peakRssKb / 1024)} MiB (${Math.round(plan.rssBeforeKb / 1024)} MiB before) | — | — | — |`,
      ]),
      '',
      ...(rows.migrate.cpu === undefined || rows.migrate.cpu.tierfs.length === 0 ? [] : [
        `CPU seconds per migration run (median): tierfs daemon ${cell(rows.migrate.cpu.tierfs, 'cpu-s')}, s3rver meanwhile ${cell(rows.migrate.cpu.serverTierfs, 'cpu-s')}; ` +
        `rclone ${cell(rows.migrate.cpu.peer, 'cpu-s')}, s3rver meanwhile ${cell(rows.migrate.cpu.serverPeer, 'cpu-s')}.`,
      ]),
      ...(ranged.length === 0 ? [] : [`The read row's packs fetched the way tierfs fetches them (one ranged GetObject per MiB, 3 at a time, no tierfs): ${cell(ranged, 'MiB/s')}.`]),
      `tierfs daemon peak RSS over the read rows: ${Math.round(daemonPeakRssKb / 1024)} MiB.`,
      ...(plan === undefined ? [] : [`The plan found ${plan.planned.toLocaleString('en-US')} files to act on: ${plan.rows.map((r) => `${r.policy} ${r.transition} ${r.files.toLocaleString('en-US')}`).join('; ')}.`]),
    ]
    const table = lines.join('\n')
    process.stdout.write(table + '\n')
    const outDir = process.env.BENCH_OUT_DIR ?? join(ROOT, 'bench-out')
    await mkdir(outDir, { recursive: true })
    const name = `tiering${opts.quick ? '-quick' : ''}-${started.toISOString().replace(/[:.]/g, '-')}`
    await writeFile(join(outDir, `${name}.json`), JSON.stringify({
      bench: 'tiering', quick: opts.quick, reps: opts.reps, startedAt: started.toISOString(),
      seconds: Math.round((Date.now() - started.getTime()) / 1000), machine, rows, rangedGets: ranged, plan, daemonPeakRssKb,
    }, null, 2) + '\n')
    await writeFile(join(outDir, `${name}.md`), table + '\n')
    log(`results: ${join(outDir, name)}.json and .md`)
  } finally {
    await s3.destroy()
    await rm(base, { recursive: true, force: true })
  }
}

await main()
