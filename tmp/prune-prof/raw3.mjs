import { Level } from 'level'
const db = new Level('/tmp/prune-work/bench-1m', { keyEncoding: 'buffer', valueEncoding: 'buffer' })
await db.open()
for (const [size, hwm] of [[1000, 1 << 20], [8192, 4 << 20], [32768, 16 << 20], [1000, 1 << 20], [8192, 4 << 20]]) {
  const t0 = performance.now(); const c0 = process.cpuUsage()
  const it = db.iterator({ gte: Buffer.from('!chunk!'), lt: Buffer.from('!chunk"'), highWaterMarkBytes: hwm, fillCache: false })
  let n = 0
  for (;;) { const rows = await it.nextv(size); if (rows.length === 0) break; n += rows.length }
  await it.close()
  const c = process.cpuUsage(c0)
  console.log(size, n, Math.round(performance.now() - t0), 'ms wall', Math.round(c.user / 1000), 'ms user', Math.round(c.system/1000), 'sys')
}
await db.close()
