import { Level } from 'level'
const db = new Level('/tmp/prune-work/bench-1m', { keyEncoding: 'buffer', valueEncoding: 'buffer' })
await db.open()
const t0 = performance.now(); const c0 = process.cpuUsage()
const it = db.iterator({ gte: Buffer.from('!chunk!'), lt: Buffer.from('!chunk"'), highWaterMarkBytes: 4 << 20 })
let n = 0
for (;;) { const rows = await it.nextv(1000); if (rows.length === 0) break; n += rows.length }
await it.close()
const c = process.cpuUsage(c0)
console.log(n, Math.round(performance.now() - t0), 'ms wall', Math.round(c.user / 1000), 'ms user')
await db.close()
