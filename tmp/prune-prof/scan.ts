import { LevelMeta } from '../../src/meta/level-meta.js'
const meta = new LevelMeta({ path: '/tmp/prune-work/bench-1m' })
await meta.ready()
const sp = (meta as any).sp
async function time(name: string, fn: () => Promise<number>) {
  const t0 = performance.now(); const n = await fn(); const ms = performance.now() - t0
  console.log(name, n, Math.round(ms), 'ms', Math.round(n / ms * 1000), '/s', 'rss', Math.round(process.memoryUsage().rss / 2**20))
}
await time('raw nextv', async () => { const it = sp.chunk.iterator({ highWaterMarkBytes: 1 << 20 }); let n = 0; for (;;) { const rows = await it.nextv(1000); if (rows.length === 0) break; n += rows.length } await it.close(); return n })
await time('raw nextv root', async () => { const it = sp.chunk.db.iterator({ gte: sp.chunk.prefixKey(Buffer.alloc(0), 'buffer'), lt: sp.chunk.prefixKey(Buffer.from([0xff,0xff,0xff,0xff]), 'buffer'), highWaterMarkBytes: 1 << 20, keyEncoding: 'buffer', valueEncoding: 'buffer' }); let n = 0; for (;;) { const rows = await it.nextv(1000); if (rows.length === 0) break; n += rows.length } await it.close(); return n })
await time('meta.chunks', async () => { let n = 0; for await (const c of meta.chunks()) n++; return n })
await time('meta.packs', async () => { let n = 0; for await (const c of meta.packs()) n++; return n })
await meta.close()
