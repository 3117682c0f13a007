import t from 'tap'
import { mountMiniFs } from './mini-fs.js'
import { runChild } from './child.js'

const BURSTS = 100
const WIDTH = 60
const SEQUENTIAL = 400

// Runs in a child node process: `bursts <file> <n> <width>` prints "<burst> <mean ms>" per burst;
// `sequential <file> <n>` prints the median ms of n one-at-a-time open+close.
const CLIENT = `
import { open } from 'node:fs/promises'
const [mode, file, n, width] = process.argv.slice(1)
const once = async () => {
  const t0 = performance.now()
  const fh = await open(file)
  await fh.close()
  return performance.now() - t0
}
if (mode === 'bursts') {
  for (let b = 0; b < Number(n); b++) {
    const lat = await Promise.all(Array.from({ length: Number(width) }, once))
    console.log(b, lat.reduce((a, x) => a + x, 0) / lat.length)
  }
} else {
  const lat = []
  for (let i = 0; i < Number(n); i++) lat.push(await once())
  lat.sort((a, b) => a - b)
  console.log(lat[lat.length >> 1])
}
`

const client = (args: string[], onLine?: (line: string) => void) =>
  runChild(process.execPath, ['--input-type=module', '-e', CLIENT, ...args], {
    env: { UV_THREADPOOL_SIZE: String(WIDTH + 4) },
    ...(onLine === undefined ? {} : { onLine })
  })

const median = async (file: string): Promise<number> => Number((await client(['sequential', file, String(SEQUENTIAL)])).stdout)

t.test('thread locals are recycled: bounded by peak concurrency, not by thread creations', async t => {
  const fs = await mountMiniFs({ slow: (op, path) => op === 'open' && path === '/slow' })
  t.teardown(() => fs.unmount())
  await runChild('touch', [`${fs.mnt}/slow`, `${fs.mnt}/fast`])

  const fastBefore = await median(`${fs.mnt}/fast`)
  const rssBefore = process.memoryUsage().rss
  const samples: Array<{ allocated: number, free: number, latency: number }> = []
  await client(['bursts', `${fs.mnt}/slow`, String(BURSTS), String(WIDTH)], line => {
    samples.push({ ...fs.fuse.threadLocalsStats(), latency: Number(line.split(' ')[1]) })
  })
  const rssGrowth = process.memoryUsage().rss - rssBefore
  const fastAfter = await median(`${fs.mnt}/fast`)

  const at = (i: number) => {
    const s = samples[i]
    if (s === undefined) throw new Error(`burst ${i + 1} never reported`)
    return s
  }
  const meanLatency = (from: number, to: number) =>
    samples.slice(from, to).reduce((a, s) => a + s.latency, 0) / (to - from)
  const { peak } = fs.inFlight
  const final = fs.fuse.threadLocalsStats()
  t.comment(`peak concurrent requests in handlers: ${peak}`)
  t.comment(`locals allocated after burst 1/10/50/100: ${at(0).allocated}/${at(9).allocated}/${at(49).allocated}/${at(BURSTS - 1).allocated}; free list now ${final.free}`)
  t.comment(`mean request latency (slow handler 5-20 ms) bursts 1-10: ${meanLatency(0, 10).toFixed(2)} ms, 91-100: ${meanLatency(BURSTS - 10, BURSTS).toFixed(2)} ms`)
  t.comment(`median open+close on a fast path before/after bursts: ${fastBefore.toFixed(3)}/${fastAfter.toFixed(3)} ms`)
  t.comment(`RSS growth over ${BURSTS} bursts: ${(rssGrowth / 2 ** 20).toFixed(1)} MiB`)

  t.equal(samples.length, BURSTS, 'every burst reported')
  t.ok(peak >= WIDTH / 2, `workers piled up (peak ${peak} concurrent requests)`)
  t.ok(final.allocated <= peak + 16, `locals (${final.allocated}) bounded by peak concurrency (${peak}) + libfuse's idle workers`)
  t.ok(final.allocated - at(9).allocated <= 8, 'no growth with more bursts')
  t.ok(rssGrowth < 48 * 2 ** 20, 'RSS growth under 48 MiB')
  t.ok(fastAfter < fastBefore * 2 + 0.2, 'per-request cost does not grow with the number of bursts')
})
