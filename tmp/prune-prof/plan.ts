import { scanChunks } from '../../src/backup/prune-scan.js'
import { LevelMeta } from '../../src/meta/level-meta.js'
const meta = new LevelMeta({ path: '/tmp/prune-work/bench-1m' })
await meta.ready()
const t0 = performance.now(); const c0 = process.cpuUsage()
const r = await scanChunks(meta, { dryRun: true })
const c = process.cpuUsage(c0)
console.log(r.chunksScanned, Math.round(performance.now() - t0), 'ms wall', Math.round(c.user / 1000), 'ms user', Math.round(c.system/1000), 'sys')
await meta.close()
