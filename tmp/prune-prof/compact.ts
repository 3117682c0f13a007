import { Level } from 'level'
const db = new Level<Buffer, Buffer>('/tmp/prune-work/bench-1m', { keyEncoding: 'buffer', valueEncoding: 'buffer' })
await db.open()
const t0 = performance.now()
await (db as any).compactRange(Buffer.alloc(0), Buffer.alloc(64, 0xff))
console.log('compacted in', Math.round(performance.now() - t0))
await db.close()
