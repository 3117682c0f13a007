import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import { asTierId, ROOT_INO, type Ino } from '../../src/ids.js'
import { silentLogger } from '../../src/log.js'
import type { InodeAttrs } from '../../src/meta/types.js'
import { PolicySet } from '../../src/policy/decide.js'
import { Migrator, type MigratorDeps } from '../../src/policy/migrator.js'
import { parsePolicyFile } from '../../src/policy/policy-file.js'
import { DEFAULT_CONFIG } from '../../src/store/config.js'
import { openStore } from '../../src/store/open-store.js'
import { Mutex } from '../../src/vfs/mutex.js'

setFlagsFromString('--expose-gc')
const gc = runInNewContext('gc') as () => void

const DAY_NS = 86_400_000_000_000n

export interface PlanRun {
  files: number
  /** Seconds to write the metadata of `files` files (inodes and dentries, Meta API batches). */
  buildSeconds: number
  planSeconds: number
  /** This process's resident set before the plan and its peak during it (kB, VmHWM after a reset). */
  rssBeforeKb: number
  peakRssKb: number
  /** What the plan found. */
  rows: Array<{ policy: string; transition: string; files: number; bytes: number }>
  planned: number
}

async function memKb(): Promise<{ rss: number; hwm: number }> {
  const s = await readFile('/proc/self/status', 'utf8')
  const field = (k: string): number => Number(new RegExp(`^${k}:\\s+(\\d+)`, 'm').exec(s)?.[1] ?? NaN)
  return { rss: field('VmRSS'), hwm: field('VmHWM') }
}

/**
 * `tierfs policy plan` over `files` files, in this process: a store's metadata is filled through
 * the Meta API (dirs of 1,000 files each, mtimes spread over 60 days, sizes 64 KiB..64 MiB, all on
 * block), then the migrator's plan (what the daemon runs for `policy plan`) streams it with a
 * block 5 / object 25 / cold 180 policy over half the tree and a block-only one over the other.
 */
export async function runPlan(files: number, log: (m: string) => void): Promise<PlanRun> {
  const dir = await mkdtemp(join(tmpdir(), 'tierfs-plan-bench-'))
  try {
    await mkdir(join(dir, 'block'), { recursive: true })
    await writeFile(join(dir, 'tierfs.json'), JSON.stringify({ ...DEFAULT_CONFIG, cache: { ...DEFAULT_CONFIG.cache, metaEntries: 10_000 } }))
    const store = await openStore(dir, silentLogger)
    try {
      const { meta } = store
      const nowMs = Date.now()
      const nowNs = BigInt(nowMs) * 1_000_000n
      const perDir = 1000
      const dirs = Math.ceil(files / perDir)
      const t0 = performance.now()
      const dirAttrs = (ino: Ino): InodeAttrs => ({
        ino, type: 'dir', mode: 0o755, uid: 0, gid: 0, size: 0, blocks: 0, nlink: 2, rdev: 0,
        atimeNs: nowNs, mtimeNs: nowNs, ctimeNs: nowNs, btimeNs: nowNs, tier: asTierId('block'),
      })
      for (const top of ['hbase', 'logs']) {
        const topIno = meta.allocIno()
        await meta.begin().putInode(dirAttrs(topIno)).putDentry(ROOT_INO, top, topIno).commit()
        for (let d = top === 'hbase' ? 0 : 1; d < dirs; d += 2) {
          const dIno = meta.allocIno()
          const txn = meta.begin().putInode(dirAttrs(dIno)).putDentry(topIno, `d${d}`, dIno)
          for (let f = 0; f < perDir && d * perDir + f < files; f++) {
            const i = d * perDir + f
            const ino = meta.allocIno()
            const mtimeNs = nowNs - (BigInt(i % 60) * DAY_NS)
            txn.putInode({
              ino, type: 'file', mode: 0o644, uid: 0, gid: 0, size: 65536 << (i % 11), blocks: 0, nlink: 1, rdev: 0,
              atimeNs: mtimeNs, mtimeNs, ctimeNs: mtimeNs, btimeNs: mtimeNs, tier: asTierId('block'),
            }).putDentry(dIno, `f${i}`, ino)
          }
          await txn.commit()
          if (d % 100 === 0) log(`plan bench: ${Math.min(files, (d + 1) * perDir).toLocaleString('en-US')} files written`)
        }
      }
      const buildSeconds = (performance.now() - t0) / 1000
      const policies = new PolicySet([
        ...parsePolicyFile(['name: hbase', 'match: { path: "/hbase/**" }', 'tiers:', '  - { tier: block, days: 5 }', '  - { tier: object, days: 25 }', '  - { tier: cold, days: 180 }', 'then: delete', ''].join('\n'), 'hbase.yaml'),
        ...parsePolicyFile(['name: logs', 'match: { path: "/logs/**" }', 'tiers:', '  - { tier: block }', ''].join('\n'), 'logs.yaml', 1),
      ])
      const deps: MigratorDeps = {
        meta, chunks: store.chunks, tiers: store.tiers, lock: new Mutex(), outgoing: join(dir, 'block/outgoing'), log: silentLogger,
        deleteFile: async () => undefined, setTier: async () => undefined,
      }
      const migrator = new Migrator(deps, { objectPackSize: 32 << 20, coldPackSize: 256 << 20, maxBytesPerPass: Number.MAX_SAFE_INTEGER, compress: true, repackBelow: 0.5, coldMinAgeMs: 0 })
      gc()
      await writeFile('/proc/self/clear_refs', '5').catch(() => undefined)
      const before = await memKb()
      let peak = before.rss
      const sampler = setInterval(() => { void memKb().then((m) => { peak = Math.max(peak, m.rss) }) }, 100)
      log('plan bench: planning')
      const t1 = performance.now()
      const plan = await migrator.plan(policies, nowMs)
      const planSeconds = (performance.now() - t1) / 1000
      clearInterval(sampler)
      const after = await memKb()
      return {
        files, buildSeconds, planSeconds, rssBeforeKb: before.rss, peakRssKb: Math.max(peak, after.hwm, after.rss),
        rows: plan.rows, planned: plan.files,
      }
    } finally {
      await store.close()
    }
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
}
