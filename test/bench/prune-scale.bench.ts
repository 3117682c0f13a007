/**
 * Prune planning at scale: a metadata store with 1,000,000 chunk records in 32,768 packs, 10,000
 * files with 100 days of history (each day 100 files rewritten with fresh chunks, then a restore
 * point: 100 pins), built directly through the Meta API (no file data: planning reads metadata
 * only). Then, in a fresh child process (so its peak RSS is the planner's, not the builder's),
 * dry-run prunes with a restic-style retention are timed: retention, collection (dry) and the
 * planning pass over the pack index and the dead index; then, on a throw-away store, one real
 * prune (collection and planning that remove what died).
 *
 *   node --import @tapjs/typescript/import test/bench/prune-scale.bench.ts [--chunks N] [--runs R] [--dir D] [--max-heap-mib M]
 *
 * Prints one JSON line per planning run and a summary; target >= 500,000 chunks/s planning.
 * On a shared machine wall time depends on the load: cpuSeconds (all threads) and
 * mainThreadCpuSeconds (LevelDB's reads run on the libuv pool beside it) show the work itself.
 * --dir keeps (and reuses) the built store; without it a temp dir is built and removed.
 * --max-heap-mib caps the planner's V8 heap (--max-old-space-size), to show the pass fits in it.
 */
import { execFileSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises'
import { loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { prune } from '../../src/backup/prune.js'
import { scanDead } from '../../src/backup/prune-scan.js'
import { asChunkId, asPackId, asTierId, asIno, ROOT_INO, type PackId } from '../../src/ids.js'
import { LevelMeta } from '../../src/meta/level-meta.js'
import type { Extent, InodeAttrs } from '../../src/meta/types.js'
import { TierSet } from '../../src/tier/tier-set.js'

const DAY = 86_400_000
const FILES = 10_000
const DAYS = 100
const REWRITES_PER_DAY = 100
const MiB = 1024 * 1024

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(name)
  return i >= 0 ? process.argv[i + 1] : undefined
}

const hex = (s: string, n: number): string => createHash('sha256').update(s).digest('hex').slice(0, n)

/** CPU seconds (user + system) of the main thread, from /proc (clock ticks of 10 ms). */
async function mainThreadCpuS(): Promise<number> {
  const stat = await readFile(`/proc/self/task/${process.pid}/stat`, 'utf8')
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  return (Number(fields[11]) + Number(fields[12])) / 100
}

async function vmHwmKb(): Promise<number> {
  const m = /VmHWM:\s+(\d+)/.exec(await readFile('/proc/self/status', 'utf8'))
  return m === null ? 0 : Number(m[1])
}

/** Builds the store: chunks are numbered in write order and packed in order, ~30 per pack. */
async function build(dir: string, chunks: number): Promise<void> {
  const meta = new LevelMeta({ path: dir })
  await meta.ready()
  const packs = Math.max(1, Math.round(chunks / 30.5))
  const packOf = (k: number): PackId => asPackId(hex(`pack-${Math.floor((k * packs) / chunks)}`, 32))
  const chunkLength = Math.floor((32 * MiB) / 30.5)
  const perFile = Math.floor(chunks / (FILES + DAYS * REWRITES_PER_DAY))
  let next = 0
  const fresh = (): Extent[] => {
    const out: Extent[] = []
    for (let e = 0; e < perFile; e++) out.push({ offset: e * chunkLength, length: chunkLength, id: asChunkId(hex(`chunk-${next + e}`, 64)) })
    return out
  }
  // Pack records first (sealed, 32 MiB, liveBytes of their chunks).
  for (let p = 0; p < packs; p += 5000) {
    const txn = meta.begin()
    for (let q = p; q < Math.min(packs, p + 5000); q++) {
      const first = Math.ceil((q * chunks) / packs)
      const last = Math.ceil(((q + 1) * chunks) / packs)
      txn.putPack({
        id: asPackId(hex(`pack-${q}`, 32)), tier: asTierId('block'), key: `packs/${q}`, state: 'sealed', size: 32 * MiB,
        liveBytes: (last - first) * chunkLength, chunkCount: last - first, createdMs: Date.now() - DAYS * DAY,
      })
    }
    await txn.commit()
  }
  const attrs = (ino: number, size: number): InodeAttrs => ({
    ino: asIno(ino), type: 'file', mode: 0o644, uid: 0, gid: 0, size, blocks: Math.ceil(size / 512), nlink: 1, rdev: 0,
    atimeNs: 0n, mtimeNs: 0n, ctimeNs: 0n, btimeNs: 0n, tier: asTierId('block'),
  })
  const writeFiles = async (inos: number[]): Promise<void> => {
    const txn = meta.begin()
    for (const ino of inos) {
      const extents = fresh()
      for (const e of extents) {
        txn.putChunk({ id: e.id, pack: packOf(next), offset: 88 + (next % 31) * chunkLength, length: chunkLength, rawLength: chunkLength, codec: 0, refs: 1 })
        next++
      }
      txn.putInode(attrs(ino, perFile * chunkLength)).putFileMap(asIno(ino), { kind: 'extents', extents })
    }
    await txn.commit()
  }
  const inos = Array.from({ length: FILES }, () => meta.allocIno())
  for (let i = 0; i < FILES; i += 200) {
    const batch = inos.slice(i, i + 200)
    const txn = meta.begin()
    for (const ino of batch) txn.putDentry(ROOT_INO, `f${ino}`, ino)
    await txn.commit()
    await writeFiles(batch)
  }
  const t0 = Date.now() - DAYS * DAY
  for (let d = 0; d < DAYS; d++) {
    await meta.begin().putPin({ workflow: 'nightly', timeMs: t0 + d * DAY, version: meta.head, root: ROOT_INO }).commit()
    await writeFiles(inos.slice((d * REWRITES_PER_DAY) % FILES, (d * REWRITES_PER_DAY) % FILES + REWRITES_PER_DAY))
  }
  // The rest (rounding) as unreferenced chunks: dead records a prune removes.
  for (let txn = meta.begin(); next < chunks; next++) {
    txn.putChunk({ id: asChunkId(hex(`chunk-${next}`, 64)), pack: packOf(next), offset: 88, length: chunkLength, rawLength: chunkLength, codec: 0, refs: 0 })
    if (txn.size >= 5000 || next === chunks - 1) { await txn.commit(); txn = meta.begin() }
  }
  await meta.close()
}

/**
 * Child process: open the store, run one whole dry-run prune (retention, dry collection,
 * planning), then time the planning pass alone `runs` times (wall and CPU), with the kernel's
 * RSS high-water mark reset first (root only) so the TypeScript loader's start-up does not count.
 */
async function plan(dir: string, runs: number): Promise<void> {
  const meta = new LevelMeta({ path: dir })
  await meta.ready()
  const gc = (globalThis as { gc?: () => void }).gc
  gc?.()
  await writeFile('/proc/self/clear_refs', '5').catch(() => undefined)
  const baseRssMiB = Math.round(process.memoryUsage().rss / MiB)
  const deps = { meta, chunks: { writeTier: asTierId('block'), forgetPack: () => undefined }, tiers: new TierSet(), packSize: 32 * MiB }
  const retention = new Map([['nightly', { last: 7, daily: 30, weekly: 8, monthly: 3 }]])
  const cpu0 = process.cpuUsage()
  const rep = await prune(deps, { dryRun: true, retention, nowMs: Date.now(), historyWindowMs: 0 })
  const cpu = process.cpuUsage(cpu0)
  console.log(JSON.stringify({
    prune: 'dry run', totalMs: Math.round(rep.totalMs), collectMs: Math.round(rep.collectMs), planningMs: Math.round(rep.planningMs),
    cpuSeconds: Math.round((cpu.user + cpu.system) / 1e5) / 10, pointsRemoved: rep.pointsRemoved.length, pointsKept: rep.pointsKept.length,
    versionsDropped: rep.versionsDropped, packsScanned: rep.packsScanned, chunksFreed: rep.chunksFreed,
    packsDeleted: rep.packsDeleted, packsRepacked: rep.packsRepacked, bytesFreedGiB: Math.round(rep.bytesFreed / 2 ** 30),
  }))
  const planned = await meta.collect(meta.versionAt(Date.now()), { dryRun: true, ignorePins: rep.pointsRemoved })
  let chunks = 0
  for await (const _ of meta.chunks()) chunks++
  for (let r = 0; r < runs; r++) {
    const c0 = process.cpuUsage()
    const m0 = await mainThreadCpuS()
    const t0 = performance.now()
    const scan = await scanDead(meta, { dryRun: true, planned })
    const ms = performance.now() - t0
    const mainS = (await mainThreadCpuS()) - m0
    const c = process.cpuUsage(c0)
    const cpuS = (c.user + c.system) / 1e6
    gc?.()
    console.log(JSON.stringify({
      planning: r + 1, chunks, packs: scan.table.size, chunksToFree: scan.chunksFreed, ms: Math.round(ms),
      chunksPerSecond: Math.round(chunks / (ms / 1000)), cpuSeconds: Math.round(cpuS * 100) / 100,
      chunksPerCpuSecond: Math.round(chunks / cpuS), loadAvg1: Math.round(loadavg()[0]! * 10) / 10,
      // CPU of the main thread alone; LevelDB's reads run beside it on the libuv pool.
      mainThreadCpuSeconds: Math.round(mainS * 100) / 100,
      packTableKiB: Math.round(scan.table.bytes / 1024), heapAfterGcMiB: gc === undefined ? undefined : Math.round(process.memoryUsage().heapUsed / MiB),
    }))
  }
  if (process.argv.includes('--real')) {
    // The prune itself on this (throw-away) store: collection writes refcounts down and fills the
    // dead index, planning removes every dead record (batches of 2,000 under the fence). The
    // bench has no tiers, so pack actions stop at "tier not configured" (problems, not timed).
    const c0 = process.cpuUsage()
    const real = await prune(deps, { dryRun: false, retention, nowMs: Date.now(), historyWindowMs: 0 })
    const c = process.cpuUsage(c0)
    console.log(JSON.stringify({
      prune: 'real', chunks, collectMs: Math.round(real.collectMs), planningMs: Math.round(real.planningMs),
      chunksPerSecond: Math.round(chunks / (real.planningMs / 1000)), chunksFreed: real.chunksFreed,
      versionsDropped: real.versionsDropped, cpuSeconds: Math.round((c.user + c.system) / 1e4) / 100,
    }))
  }
  console.log(JSON.stringify({ baseRssMiB, peakRssMiB: Math.round((await vmHwmKb()) / 1024), endRssMiB: Math.round(process.memoryUsage().rss / MiB), dryRunFreed: planned.chunksFreed.length }))
  await meta.close()
}

async function main(): Promise<void> {
  const planDir = arg('--plan')
  const runs = Number(arg('--runs') ?? 3)
  if (planDir !== undefined) return plan(planDir, runs)
  const chunks = Number(arg('--chunks') ?? 1_000_000)
  const keep = arg('--dir')
  const dir = keep ?? (await mkdtemp(join(tmpdir(), 'tierfs-prune-bench-')))
  try {
    const built = await stat(join(dir, 'CURRENT')).then(() => true, () => false)
    if (!built) {
      const t0 = performance.now()
      await build(dir, chunks)
      console.log(JSON.stringify({ built: dir, chunks, seconds: Math.round((performance.now() - t0) / 100) / 10, builderPeakRssMiB: Math.round((await vmHwmKb()) / 1024) }))
    }
    const self = fileURLToPath(import.meta.url)
    const heap = arg('--max-heap-mib')
    const flags = ['--expose-gc', ...(heap === undefined ? [] : [`--max-old-space-size=${heap}`])]
    execFileSync(process.execPath, [...process.execArgv, ...flags, self, '--plan', dir, '--runs', String(runs), ...(keep === undefined ? ['--real'] : [])], { stdio: 'inherit' })
  } finally {
    if (keep === undefined) await rm(dir, { recursive: true, force: true })
  }
}

await main()
