import t from 'tap'
import { createServer } from 'node:net'
import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { tempMount } from '../support/tierfs-mount.js'
import { waitSealed } from '../support/e2e-io.js'

/** A port on 127.0.0.1 free just now. */
async function freePort(): Promise<number> {
  const s = createServer()
  await new Promise<void>((ok) => s.listen(0, '127.0.0.1', () => ok()))
  const port = (s.address() as { port: number }).port
  await new Promise<void>((ok) => s.close(() => ok()))
  return port
}

/** `name{labels} value` lines of a Prometheus text exposition, by name and labels. */
function samples(text: string): Map<string, number> {
  const out = new Map<string, number>()
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue
    const at = line.lastIndexOf(' ')
    out.set(line.slice(0, at), Number(line.slice(at + 1)))
  }
  return out
}

t.test('the Prometheus endpoint on 127.0.0.1 exposes the figures of tierfs status', async (t) => {
  const port = await freePort()
  const m = await tempMount({ config: { metrics: { port } } })
  t.teardown(() => m.cleanup())
  const data = Buffer.alloc(3 * 1024 * 1024, 'tierfs metrics ')
  await writeFile(join(m.mnt, 'a.bin'), data)
  await waitSealed(m)
  t.ok((await readFile(join(m.mnt, 'a.bin'))).equals(data))

  const res = await fetch(`http://127.0.0.1:${port}/metrics`)
  t.equal(res.status, 200)
  t.match(res.headers.get('content-type') ?? '', /text\/plain/)
  const got = samples(await res.text())
  const status = JSON.parse((await m.cli(['status', m.mnt, '--json'])).stdout) as Record<string, any>

  t.equal(got.get('tierfs_files'), status.files, 'files')
  t.equal(got.get('tierfs_logical_bytes'), data.length, 'logical bytes')
  t.equal(got.get('tierfs_stored_bytes'), status.storedBytes, 'stored bytes')
  t.equal(got.get('tierfs_chunks'), status.chunks, 'chunks')
  t.equal(got.get('tierfs_packs'), status.packs, 'packs')
  t.equal(got.get('tierfs_tier_bytes{tier="block"}'), status.tiers.block.bytes, 'block tier bytes')
  t.equal(got.get('tierfs_tier_objects{tier="block"}'), status.tiers.block.objects, 'block tier objects')
  for (const f of ['passes', 'failures', 'moving', 'pending', 'failedMoves', 'failedMovesTotal', 'running', 'recallsInFlight']) t.ok(got.has(`tierfs_migration{figure="${f}"}`), `migration ${f}`)
  for (const f of ['hits', 'misses', 'bytes', 'hitRate']) t.ok(got.has(`tierfs_read_cache{figure="${f}"}`), `read cache ${f}`)
  t.ok((got.get('tierfs_rss_bytes') ?? 0) > 10 * 1024 * 1024, 'the daemon RSS')

  t.equal((await fetch(`http://127.0.0.1:${port}/other`)).status, 404, 'only /metrics is served')

  const text = (await m.cli(['status', m.mnt])).stdout
  t.match(text, /^migrations {5}idle, 0 files pending, 0 passes \(0 failed\)$/m, 'status text: migrations')
  t.match(text, /^failed moves {3}0 files in the last pass, 0 since start/m, 'status text: failed moves')
  t.match(text, /^recalls {8}0 in flight$/m, 'status text: recalls')
  t.match(text, /^read cache {5}\d+\.\d% hits \(\d+ hits, \d+ misses\), \d+\.\d MiB held$/m, 'status text: read cache')
})
