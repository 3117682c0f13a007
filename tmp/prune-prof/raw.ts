import { Level } from 'level'
const db = new Level<Buffer, Buffer>('/tmp/prune-work/bench-1m', { keyEncoding: 'buffer', valueEncoding: 'buffer' })
await db.open()
for (const [name, opts] of [['kv', {}], ['values', { keys: false }], ['view', { keyEncoding: 'view', valueEncoding: 'view' }], ['kv-hwm4M', { highWaterMarkBytes: 4 << 20 }]] as const) {
  const t0 = performance.now(); const c0 = process.cpuUsage()
  const it = (opts as any).keys === false ? db.values({ gte: Buffer.from('!chunk!'), lt: Buffer.from('!chunk"') }) : db.iterator({ gte: Buffer.from('!chunk!'), lt: Buffer.from('!chunk"'), ...(opts as object) } as any)
  let n = 0
  for (;;) { const rows = await (it as any).nextv(1000); if (rows.length === 0) break; n += rows.length }
  await it.close()
  const c = process.cpuUsage(c0)
  console.log(name, n, Math.round(performance.now() - t0), 'ms wall', Math.round(c.user / 1000), 'ms user', Math.round(c.system / 1000), 'ms sys')
}
await db.close()
