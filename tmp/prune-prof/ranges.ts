import { LevelMeta } from '../../src/meta/level-meta.js'
const meta = new LevelMeta({ path: '/tmp/prune-work/bench-1m' })
await meta.ready()
for (const ranges of [1, 2, 4, 8, 4, 2]) {
  const t0 = performance.now(); const c0 = process.cpuUsage(); let n = 0
  for await (const b of meta.chunkBatches({ ranges })) n += b.length
  const c = process.cpuUsage(c0)
  console.log('ranges', ranges, n, Math.round(performance.now() - t0), 'ms wall', Math.round(c.user / 1000), 'user', Math.round(c.system / 1000), 'sys')
}
await meta.close()
