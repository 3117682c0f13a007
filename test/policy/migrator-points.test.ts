import t, { type Test } from 'tap'
import { Tiering } from '../../daemon/tiering.js'
import type { RestorePoints } from '../../src/backup/restore-points.js'
import type { ChunkId, TierId } from '../../src/ids.js'
import { silentLogger } from '../../src/log.js'
import { PolicySet } from '../../src/policy/decide.js'
import { parsePolicyFile } from '../../src/policy/policy-file.js'
import { DEFAULT_CONFIG } from '../../src/store/config.js'
import { det, fsckReport, PRUNE_CONFIG, putFile, readWhole } from '../backup/prune-fixture.js'
import { removeFixture, restorePoints, ROOT_CALLER, vfsStore, type VfsFixture } from '../support/vfs-store.js'

const KiB = 1024
const DAY = 86_400_000

/** hb: the 5 / 25 / 180-day chain, workflow "hb"; live: block forever, no workflow. */
const POLICIES = new PolicySet([
  ...parsePolicyFile([
    'name: hb', 'match: { path: "/hb/**" }', 'tiers:', '  - { tier: block, days: 5 }', '  - { tier: object, days: 25 }',
    '  - { tier: cold, days: 180 }', 'then: keep', 'backup: { retain: { last: 7 } }', '',
  ].join('\n'), 'hb.yaml'),
  ...parsePolicyFile(['name: live', 'match: { path: "/live/**" }', 'tiers:', '  - { tier: block }', ''].join('\n'), 'live.yaml', 1),
])

interface Setup {
  fx: VfsFixture
  tiering: Tiering
  /** When the test began (files are written with real times, about then). */
  t0: number
  /** The clock passes and plans see. */
  clock: { now: number }
  /** Restore points, taken at `pointClock.now` (t0 unless a test moves it). */
  rp: RestorePoints
  pointClock: { now: number }
}

/** A store with small chunks and packs, and the daemon's Tiering over it (passes at `clock.now`). */
async function setup(t: Test, over: Record<string, unknown> = {}): Promise<Setup> {
  const fx = await vfsStore({ ...PRUNE_CONFIG, ...over })
  t.teardown(async () => { await fx.close().catch(() => undefined); await removeFixture(fx) })
  const t0 = Date.now()
  const clock = { now: t0 }
  const pointClock = { now: t0 }
  const tiering = new Tiering({ store: fx.store, vfs: fx.vfs, log: silentLogger, policies: () => POLICIES, nowMs: () => clock.now })
  await fx.vfs.mkdir('/hb', 0o755, ROOT_CALLER)
  await fx.vfs.mkdir('/live', 0o755, ROOT_CALLER)
  return { fx, tiering, t0, clock, rp: restorePoints(fx, () => pointClock.now), pointClock }
}

async function chunksOf(fx: VfsFixture, path: string): Promise<ChunkId[]> {
  const map = await fx.store.meta.getFileMap(await fx.vfs.resolve(path))
  if (map?.kind !== 'extents') throw new Error(`${path} has no extents`)
  return map.extents.map((e) => e.id)
}

/** The tier each chunk's pack is on, as one sorted list of distinct tiers. */
async function tiersOf(fx: VfsFixture, ids: readonly ChunkId[]): Promise<TierId[]> {
  const out = new Set<TierId>()
  for (const id of ids) {
    const c = await fx.store.meta.getChunk(id)
    const p = c === undefined ? undefined : await fx.store.meta.getPack(c.pack)
    if (p === undefined) throw new Error(`chunk ${id} is not stored`)
    out.add(p.tier)
  }
  return [...out].sort()
}

/** One policy pass `atDay` days after the test began. */
async function pass(s: Setup, atDay: number): Promise<Awaited<ReturnType<Tiering['apply']>>> {
  s.clock.now = s.t0 + atDay * DAY
  return s.tiering.apply()
}

t.test('data only a restore point holds follows its workflow chain, age from the point time', async (t) => {
  const s = await setup(t)
  const { fx, t0, rp } = s
  const gone = det('gone', 400 * KiB)
  const old = det('kept-1', 300 * KiB)
  await putFile(fx, '/hb/gone', gone)
  await putFile(fx, '/hb/kept', old)
  const p1 = await rp.create('hb', '/hb')
  const exclusive = [...await chunksOf(fx, '/hb/gone'), ...await chunksOf(fx, '/hb/kept')]
  t.ok(exclusive.length >= 6, `${exclusive.length} chunks`)
  await fx.vfs.unlink('/hb/gone')
  const now = det('kept-2', 300 * KiB)
  await putFile(fx, '/hb/kept', now)
  const current = await chunksOf(fx, '/hb/kept')
  const rawBytes = gone.length + old.length

  let r = await pass(s, 1)
  t.same(r.errors, [])
  t.equal(r.pointChunksMoved, 0, 'a point 1 day old wants block: nothing moves')
  t.same(await tiersOf(fx, exclusive), ['block'])

  s.clock.now = t0 + 10 * DAY
  const plan = await s.tiering.plan()
  t.same(plan.rows.find((row) => row.policy === 'hb (restore points)'),
    { policy: 'hb (restore points)', transition: 'block -> object', files: 0, bytes: rawBytes, chunks: exclusive.length },
    'plan: one row for the restore-point data, chunks and bytes')
  t.same(plan.rows.find((row) => row.policy === 'hb'), { policy: 'hb', transition: 'block -> object', files: 1, bytes: now.length }, 'and the current file its own')
  t.equal(plan.bytes, rawBytes + now.length)
  t.same(await tiersOf(fx, exclusive), ['block'], 'a plan moves nothing')

  r = await pass(s, 10)
  t.same(r.errors, [])
  t.equal(r.pointChunksMoved, exclusive.length, '10 days: every chunk only the point holds moves')
  t.equal(r.pointBytesMoved, rawBytes)
  t.same(await tiersOf(fx, exclusive), ['object'])
  t.same(await tiersOf(fx, current), ['object'], 'the current file went by its own policy (mtime age 10 days)')
  let blockLive = 0
  for await (const p of fx.store.meta.packs()) if (p.tier === 'block') blockLive += p.liveBytes
  t.equal(blockLive, 0, 'no live bytes left on block')
  t.same(await readWhole(fx, `/.snapshots/hb/${p1.name}/gone`), gone, 'the frozen view reads the moved data')

  r = await pass(s, 11)
  t.equal(r.pointChunksMoved, 0, 'a second pass at the same step finds nothing to do')
  t.equal(r.chunksCopied, 0)

  r = await pass(s, 40)
  t.same(r.errors, [])
  t.equal(r.pointChunksMoved, exclusive.length, '40 days: on to cold')
  t.same(await tiersOf(fx, exclusive), ['cold'])
  t.same((await fsckReport(fx)).problems, [], 'fsck: refcounts, live bytes and packs agree')

  // A fresh process has no cached chunks: the reads below come from the cold tier.
  await fx.close()
  const again = await fx.reopen()
  try {
    t.same(await readWhole(again, `/.snapshots/hb/${p1.name}/gone`), gone, 'after a restart, byte-exact from cold')
    t.same(await readWhole(again, `/.snapshots/hb/${p1.name}/kept`), old)
    t.same(await readWhole(again, '/hb/kept'), now, 'the current file too')
  } finally {
    await again.close()
  }
})

t.test('a chunk a current file needs on block stays there', async (t) => {
  const s = await setup(t)
  const { fx, rp } = s
  const shared = det('shared', 300 * KiB)
  await putFile(fx, '/hb/x', shared)
  await putFile(fx, '/live/y', shared)
  await putFile(fx, '/hb/z', det('z', 200 * KiB))
  await rp.create('hb', '/hb')
  const sharedIds = await chunksOf(fx, '/live/y')
  t.same(new Set(await chunksOf(fx, '/hb/x')), new Set(sharedIds), 'the same bytes dedup to the same chunks')
  const zIds = await chunksOf(fx, '/hb/z')
  await fx.vfs.unlink('/hb/x')
  await fx.vfs.unlink('/hb/z')

  const r = await pass(s, 40)
  t.same(r.errors, [])
  t.same(await tiersOf(fx, sharedIds), ['block'], '/live/y (block forever) holds the shared chunks')
  t.ok(r.chunksHeldWarm >= new Set(sharedIds).size, `held: ${r.chunksHeldWarm}`)
  t.same(await tiersOf(fx, zIds), ['cold'], 'the rest of the point goes cold')
  t.equal(r.pointChunksMoved, zIds.length)
  t.same((await fsckReport(fx)).problems, [])
})

t.test('a file does not take colder the chunks a young restore point holds on block', async (t) => {
  const s = await setup(t)
  const { fx, t0, rp, pointClock } = s
  const same = det('same', 300 * KiB)
  await putFile(fx, '/hb/f', same)
  // Another file's copy, whose old version only the point holds: the shared chunks are held
  // through that version too (not only through /hb/f's own).
  await putFile(fx, '/hb/g', det('g-old', 200 * KiB))
  const gOld = await chunksOf(fx, '/hb/g')
  pointClock.now = t0 + 8 * DAY
  await rp.create('hb', '/hb')
  await putFile(fx, '/hb/g', det('g-new', 200 * KiB))
  await putFile(fx, '/hb/h', det('g-old', 200 * KiB))
  const ids = await chunksOf(fx, '/hb/f')

  // Day 10: /hb/f and /hb/h are 10 days old by mtime (hb wants them on object), the point 2 days
  // old (hb wants its data on block): the point holds what it sees, the current files stay.
  let r = await pass(s, 10)
  t.same(r.errors, [])
  t.same(await tiersOf(fx, ids), ['block'], 'unchanged since the point: held on block')
  t.same(await tiersOf(fx, gOld), ['block'], 'the same bytes as a version only the point sees: held too')
  t.ok(r.chunksHeldWarm >= new Set([...ids, ...gOld]).size, `held: ${r.chunksHeldWarm}`)
  t.same(await tiersOf(fx, await chunksOf(fx, '/hb/g')), ['object'], 'what the point does not see goes by its own policy')
  t.equal((await fx.store.meta.getInode(await fx.vfs.resolve('/hb/f')))?.tier, 'block', 'the held file keeps its tier, and later passes retry it')

  // Day 14: the point is 6 days old and wants object too: everything goes.
  r = await pass(s, 14)
  t.same(r.errors, [])
  t.same(await tiersOf(fx, ids), ['object'])
  t.same(await tiersOf(fx, gOld), ['object'])
  t.same(await readWhole(fx, '/hb/f'), same)
  t.same((await fsckReport(fx)).problems, [])
})

t.test('a chunk an old point wants cold and a newer point wants on object goes to object', async (t) => {
  const s = await setup(t)
  const { fx, t0, rp } = s
  const both = det('in-both', 300 * KiB)
  const oldOnly = det('old-only', 300 * KiB)
  // q (scanned first: a lower inode) is only in the old point, s in both, with the same bytes:
  // found as cold candidates through q, its chunks must still go to object because of s.
  await putFile(fx, '/hb/q', both)
  await putFile(fx, '/hb/s', both)
  await putFile(fx, '/hb/t', oldOnly)
  const sIds = await chunksOf(fx, '/hb/s')
  const tIds = await chunksOf(fx, '/hb/t')
  const p1 = await rp.create('hb', '/hb')
  await fx.vfs.unlink('/hb/q')
  await fx.vfs.unlink('/hb/t')
  // A workflow no policy declares: its points neither move data nor hold it.
  await fx.vfs.mkdir('/m', 0o755, ROOT_CALLER)
  const manualOnly = det('manual-only', 200 * KiB)
  await putFile(fx, '/m/u', manualOnly)
  const uIds = await chunksOf(fx, '/m/u')
  await rp.create('manual', '/m')
  await fx.vfs.unlink('/m/u')
  s.pointClock.now = t0 + 30 * DAY
  const p2 = await rp.create('hb', '/hb')
  await fx.vfs.unlink('/hb/s')

  const r = await pass(s, 40)
  t.same(r.errors, [])
  t.same(await tiersOf(fx, sIds), ['object'], 'in both points: the newer point (10 days) wants object, and wins over cold')
  t.same(await tiersOf(fx, tIds), ['cold'], 'only in the 40-day-old point: cold')
  t.same(await tiersOf(fx, uIds), ['block'], 'a workflow without a policy: stays')
  t.equal(r.pointChunksMoved, sIds.length + tIds.length)

  const later = await pass(s, 60)
  t.same(await tiersOf(fx, sIds), ['cold'], 'once the newer point is 30 days old too, cold')
  t.equal(later.pointChunksMoved, sIds.length)
  t.same(await readWhole(fx, `/.snapshots/hb/${p1.name}/s`), both)
  t.same(await readWhole(fx, `/.snapshots/hb/${p2.name}/s`), both)
  t.same(await readWhole(fx, `/.snapshots/hb/${p1.name}/t`), oldOnly)
  t.same(await readWhole(fx, `/.snapshots/manual/${(await rp.list('manual'))[0]!.name}/u`), manualOnly)
  t.same((await fsckReport(fx)).problems, [])
})

t.test('never warmer: data a point wants on object stays on cold', async (t) => {
  const s = await setup(t)
  const { fx, rp } = s
  await putFile(fx, '/hb/f', det('f', 200 * KiB))
  const ids = await chunksOf(fx, '/hb/f')
  await s.tiering.migrate(['/hb/f'], 'cold', false)
  t.same(await tiersOf(fx, ids), ['cold'])
  await rp.create('hb', '/hb')
  await fx.vfs.unlink('/hb/f')
  const r = await pass(s, 10)
  t.equal(r.pointChunksMoved, 0)
  t.same(await tiersOf(fx, ids), ['cold'])
})

t.test('the byte budget bounds each pass; passes go on where the last stopped', async (t) => {
  const s = await setup(t, { migrate: { ...DEFAULT_CONFIG.migrate, schedule: '', maxBytesPerPass: 150 * KiB } })
  const { fx, rp } = s
  // Written first (lowest inode): more than a budget of chunks a current file keeps on block, so
  // the first passes find only held candidates; the later ones must still reach the files behind.
  const held = det('held', 400 * KiB)
  await putFile(fx, '/hb/held', held)
  await putFile(fx, '/live/held', held)
  const files = ['a', 'b', 'c'].map((n) => ({ path: `/hb/${n}`, data: det(n, 200 * KiB) }))
  for (const f of files) await putFile(fx, f.path, f.data)
  const ids = (await Promise.all(files.map((f) => chunksOf(fx, f.path)))).flat()
  const heldIds = await chunksOf(fx, '/live/held')
  await rp.create('hb', '/hb')
  for (const f of files) await fx.vfs.unlink(f.path)
  await fx.vfs.unlink('/hb/held')

  let moved = 0
  let passes = 0
  while ((await tiersOf(fx, ids)).join() !== 'object' && passes < 20) {
    const r = await pass(s, 10)
    t.same(r.errors, [])
    t.ok(r.pointBytesMoved <= 150 * KiB + 256 * KiB, `pass ${passes}: ${r.pointBytesMoved} bytes, within the budget and one chunk`)
    moved += r.pointChunksMoved
    passes++
  }
  t.same(await tiersOf(fx, ids), ['object'], `all moved in ${passes} passes`)
  t.ok(passes >= 3, 'over several passes')
  t.equal(moved, ids.length)
  t.same(await tiersOf(fx, heldIds), ['block'])
})
