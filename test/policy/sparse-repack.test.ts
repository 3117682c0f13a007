import t from 'tap'
import { prune } from '../../src/backup/prune.js'
import type { PackRecord } from '../../src/meta/types.js'
import { PolicySet } from '../../src/policy/decide.js'
import { parsePolicyFile } from '../../src/policy/policy-file.js'
import { O_RDWR } from '../../src/vfs/vfs.js'
import { det, fsckReport, pruneDeps, putFile, readWhole, sealAllNow } from '../backup/prune-fixture.js'
import { tieredStore } from '../support/tiered-store.js'
import { ROOT_CALLER, type VfsFixture } from '../support/vfs-store.js'

const KiB = 1024

const POLICIES = new PolicySet(parsePolicyFile([
  'name: hb', 'match: { path: "/hb/**" }', 'tiers:', '  - { tier: block, days: 5 }', '  - { tier: object }', 'then: keep', '',
].join('\n'), 'hb.yaml'))

async function packsOn(fx: VfsFixture, tier: string): Promise<PackRecord[]> {
  const out: PackRecord[] = []
  for await (const p of fx.store.meta.packs()) if (p.tier === tier) out.push(p)
  return out
}

t.test('a sparse pack on the object tier is repacked by the next pass and freed; its live data reads back', async (t) => {
  const { fx, tiering, clock, at } = await tieredStore(t, POLICIES, ['/hb'])
  const files = ['a', 'b', 'c', 'd'].map((n) => ({ path: `/hb/${n}`, data: det(`sparse-${n}`, 300 * KiB) }))
  for (const f of files) await putFile(fx, f.path, f.data)

  at(6)
  const first = await tiering.apply()
  t.same(first.errors, [])
  t.equal(first.filesMoved, 4)
  const [old, ...more] = await packsOn(fx, 'object')
  t.equal(more.length, 0, 'one object pack holds the four files')
  const oldPack = old as PackRecord

  // Three files go; once their versions are collected the object pack is a quarter live.
  for (const f of files.slice(1)) await fx.vfs.unlink(f.path)
  const pruned = await prune(pruneDeps(fx), { dryRun: false, retention: new Map(), nowMs: clock.now, historyWindowMs: 0 })
  t.equal(pruned.packsSparse, 1, 'prune leaves the sparse object pack to the migrator')
  const sparse = await fx.store.meta.getPack(oldPack.id) as PackRecord
  t.ok(sparse.liveBytes > 0 && sparse.liveBytes < sparse.size / 2, `live ${sparse.liveBytes} of ${sparse.size} bytes`)

  at(7)
  const second = await tiering.apply()
  t.same(second.errors, [])
  t.equal(second.packsRepacked, 1)
  t.equal(second.packsFreed, 1, 'the sparse pack is freed once its live chunks moved')
  t.equal(await fx.store.meta.getPack(oldPack.id), undefined, 'its record is gone')
  t.equal(await fx.store.tiers.get(oldPack.tier).head(oldPack.key), undefined, 'and its object')
  const [now, ...others] = await packsOn(fx, 'object')
  t.equal(others.length, 0)
  const fresh = now as PackRecord
  t.equal(fresh.liveBytes, sparse.liveBytes, 'the new pack holds exactly the live bytes')
  t.ok(fresh.size < sparse.size / 2, `new pack ${fresh.size} bytes, was ${sparse.size}`)
  t.ok((await readWhole(fx, '/hb/a')).equals((files[0] as { data: Buffer }).data), 'the file left reads back exact')
  t.same(await fsckReport(fx), { ok: true, problems: [] })

  const third = await tiering.apply()
  t.equal(third.packsRepacked, 0, 'a dense pack is left alone')
})

t.test('a sparse cold pack is repacked only past the minimum storage age of an archive', async (t) => {
  const cold = new PolicySet(parsePolicyFile([
    'name: archive', 'match: { path: "/arch/**" }', 'tiers:', '  - { tier: block, days: 1 }', '  - { tier: cold }', 'then: keep', '',
  ].join('\n'), 'archive.yaml'))
  const { fx, tiering, clock, at } = await tieredStore(t, cold, ['/arch'])
  const keep = det('cold-keep', 200 * KiB)
  await putFile(fx, '/arch/keep', keep)
  await putFile(fx, '/arch/gone', det('cold-gone', 600 * KiB))
  at(2)
  t.equal((await tiering.apply()).filesMoved, 2)
  await fx.vfs.unlink('/arch/gone')
  await prune(pruneDeps(fx), { dryRun: false, retention: new Map(), nowMs: clock.now, historyWindowMs: 0 })
  const [pack] = await packsOn(fx, 'cold')
  t.ok(pack !== undefined && pack.liveBytes < pack.size / 2, 'the cold pack is sparse')

  at(30)
  t.equal((await tiering.apply()).packsRepacked, 0, 'a 30-day-old archive is kept as it is')
  at(91)
  const r = await tiering.apply()
  t.same(r.errors, [])
  t.equal(r.packsRepacked, 1, 'past 90 days it is repacked')
  t.equal(await fx.store.meta.getPack((pack as PackRecord).id), undefined, 'and freed')
  t.ok((await readWhole(fx, '/arch/keep')).equals(keep))
  t.same(await fsckReport(fx), { ok: true, problems: [] })
})

t.test('a file on the object tier written again is sealed onto block, and says so', async (t) => {
  const { fx, tiering, at } = await tieredStore(t, POLICIES, ['/hb'])
  const data = det('write-back', 300 * KiB)
  await putFile(fx, '/hb/f', data)
  at(6)
  t.equal((await tiering.apply()).filesMoved, 1)
  const ino = await fx.vfs.resolve('/hb/f')
  t.equal((await fx.store.meta.getInode(ino))?.tier, 'object')

  const fh = await fx.vfs.open('/hb/f', O_RDWR, ROOT_CALLER)
  const patch = Buffer.from('written again')
  await fx.vfs.write(fh, patch, 1000)
  await fx.vfs.release(fh)
  await sealAllNow(fx)
  patch.copy(data, 1000)
  t.equal((await fx.store.meta.getInode(ino))?.tier, 'block', 'the inode says block')
  const map = await fx.store.meta.getFileMap(ino)
  const tiers = new Set<string>()
  for (const e of map?.kind === 'extents' ? map.extents : []) {
    const c = await fx.store.meta.getChunk(e.id)
    tiers.add((await fx.store.meta.getPack(c?.pack as PackRecord['id']))?.tier ?? 'none')
  }
  t.same([...tiers], ['block'], 'and every chunk of it is on block')
  t.ok((await readWhole(fx, '/hb/f')).equals(data), 'the contents are the patched file')
})
