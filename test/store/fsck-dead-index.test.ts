import { Level } from 'level'
import { join } from 'node:path'
import t from 'tap'
import { prune } from '../../src/backup/prune.js'
import type { ChunkId } from '../../src/ids.js'
import { fsck } from '../../src/store/fsck.js'
import { Staging } from '../../src/vfs/staging.js'
import { det, fsckReport, PRUNE_CONFIG, pruneDeps, putFile } from '../backup/prune-fixture.js'
import { removeFixture, vfsStore, type VfsFixture } from '../support/vfs-store.js'

const KiB = 1024

async function deadIds(fx: VfsFixture): Promise<ChunkId[]> {
  const out: ChunkId[] = []
  for await (const ids of fx.store.meta.deadChunks()) out.push(...ids)
  return out
}

t.test('fsck finds a dead index that disagrees with the refcounts, and --repair mends it', async (t) => {
  let fx = await vfsStore(PRUNE_CONFIG)
  t.teardown(async () => { await fx.close(); await removeFixture(fx) })
  await putFile(fx, '/a', det('a1', 600 * KiB))
  await putFile(fx, '/b', det('b', 300 * KiB))
  await putFile(fx, '/a', det('a2', 600 * KiB))
  // Dropping the old version of /a leaves its chunks with refs 0: listed, not yet pruned.
  await fx.store.meta.collect(fx.store.meta.versionAt(Date.now() + 1000))
  const dead = await deadIds(fx)
  t.ok(dead.length >= 4, `${dead.length} dead chunks listed`)
  t.same(await fsckReport(fx), { ok: true, problems: [] }, 'clean as the commits left it')

  let live: ChunkId | undefined
  for await (const c of fx.store.meta.chunks()) if (c.refs > 0) { live = c.id; break }
  await fx.close()
  const db = new Level<Buffer, Buffer>(join(fx.dir, 'meta'), { keyEncoding: 'buffer', valueEncoding: 'buffer' })
  const space = db.sublevel<Buffer, Buffer>('dead', { keyEncoding: 'buffer', valueEncoding: 'buffer' })
  await space.del(Buffer.from(dead[0]!, 'hex'))
  await space.put(Buffer.from(live!, 'hex'), Buffer.alloc(0))
  await space.put(Buffer.alloc(32, 0xee), Buffer.alloc(0))
  await db.close()
  fx = await fx.reopen()

  const deps = { meta: fx.store.meta, tiers: fx.store.tiers, staging: new Staging(fx.store.layout.staging(fx.store.config)) }
  const found = await fsck(deps, { repair: false })
  t.equal(found.ok, false)
  t.same(found.problems.map((p) => p.kind), ['dead-index', 'dead-index', 'dead-index'], JSON.stringify(found.problems.map((p) => p.message)))
  const repaired = await fsck(deps, { repair: true })
  t.ok(repaired.problems.every((p) => p.repaired), 'each one repaired')
  t.same(await fsckReport(fx), { ok: true, problems: [] }, 'clean after --repair')
  t.same((await deadIds(fx)).sort(), [...dead].sort(), 'exactly the dead chunks again')

  const r = await prune(pruneDeps(fx), { dryRun: false, retention: new Map(), nowMs: Date.now(), historyWindowMs: 0 })
  t.equal(r.chunksFreed, dead.length, 'prune removes every dead record')
  t.same(await deadIds(fx), [])
  t.same(await fsckReport(fx), { ok: true, problems: [] })
})
