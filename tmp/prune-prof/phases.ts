import { readFile, writeFile } from 'node:fs/promises'
import { scanChunks } from '../../src/backup/prune-scan.js'
import { LevelMeta } from '../../src/meta/level-meta.js'
const hwm = async () => Math.round(Number(/VmHWM:\s+(\d+)/.exec(await readFile('/proc/self/status', 'utf8'))![1]) / 1024)
const reset = () => writeFile('/proc/self/clear_refs', '5')
const meta = new LevelMeta({ path: '/tmp/prune-work/bench-1m' })
await meta.ready()
const gc = (globalThis as any).gc
gc(); await reset(); console.log('base rss', Math.round(process.memoryUsage().rss / 2**20))
const ignore: Array<{ workflow: string; timeMs: number }> = []
let k = 0; for await (const p of meta.pins()) if (k++ < 66) ignore.push(p)
const c = await meta.collect(meta.versionAt(Date.now()), { dryRun: true, ignorePins: ignore })
console.log('collect dry: hwm', await hwm(), 'rss', Math.round(process.memoryUsage().rss / 2**20), 'freed', c.chunksFreed.length)
const set = new Set<string>(c.chunksFreed)
gc(); await reset(); console.log('after gc rss', Math.round(process.memoryUsage().rss / 2**20))
const r = await scanChunks(meta, { dryRun: true, plannedFree: set })
console.log('scan: hwm', await hwm(), 'rss', Math.round(process.memoryUsage().rss / 2**20), r.chunksFreed)
gc(); await reset()
const r2 = await scanChunks(meta, { dryRun: true })
console.log('scan no set: hwm', await hwm(), 'rss', Math.round(process.memoryUsage().rss / 2**20), r2.chunksFreed)
await meta.close()
