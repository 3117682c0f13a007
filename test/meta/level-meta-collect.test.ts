import t from 'tap'
import { asVersion, ROOT_INO, type ChunkId, type Version } from '../../src/ids.js'
import type { LevelMeta } from '../../src/meta/level-meta.js'
import { attrs, chunkId, chunkRec, collectAll, ManualClock, openMeta, packId, packRec } from './helpers.js'

const extents = (...seeds: string[]) => ({
  kind: 'extents' as const,
  extents: seeds.map((s, i) => ({ offset: i * 100, length: 100, id: chunkId(s) })),
})

/** The fsck invariant: every chunk's refs equals its extents over all stored filemap versions. */
async function refsMatchFileMaps(meta: LevelMeta): Promise<Record<string, [number, number]>> {
  const counted = new Map<ChunkId, number>()
  for await (const { map } of meta.fileMapVersions()) {
    if (map.kind === 'extents') for (const e of map.extents) counted.set(e.id, (counted.get(e.id) ?? 0) + 1)
  }
  const bad: Record<string, [number, number]> = {}
  for await (const c of meta.chunks()) if (c.refs !== (counted.get(c.id) ?? 0)) bad[c.id] = [c.refs, counted.get(c.id) ?? 0]
  return bad
}

t.test('horizon and pins keep exactly what the rule says; refs and liveBytes go down', async (t) => {
  const clock = new ManualClock()
  const meta = await openMeta(t.testdir(), { now: clock.now })
  t.teardown(() => meta.close())
  const P = packId('P')
  const lengths: Record<string, number> = { A: 100, B: 200, C: 400, D: 800 }
  const setup = meta.begin().putPack(packRec(P, { liveBytes: 1500 }))
  for (const [s, length] of Object.entries(lengths)) setup.putChunk(chunkRec(s, P, { length }))
  await setup.commit()
  const x = meta.allocIno()
  const v: Version[] = []
  const step = async (fn: (txn: ReturnType<LevelMeta['begin']>) => void): Promise<void> => {
    clock.ms += 1000
    const txn = meta.begin()
    fn(txn)
    v.push(await txn.commit())
  }
  await step((txn) => txn.putInode(attrs(x, { size: 1 })).putFileMap(x, extents('A', 'B'))
    .addRefs(chunkId('A'), 1).addRefs(chunkId('B'), 1)
    .putDentry(ROOT_INO, 'y', x).putXattr(x, 'user.k', Buffer.from('1')))
  await step((txn) => txn.putInode(attrs(x, { size: 2 })).putFileMap(x, extents('B', 'C'))
    .addRefs(chunkId('B'), 1).addRefs(chunkId('C'), 1)
    .deleteDentry(ROOT_INO, 'y'))
  await step((txn) => txn.putInode(attrs(x, { size: 3 })).putFileMap(x, extents('C', 'D', 'D'))
    .addRefs(chunkId('C'), 1).addRefs(chunkId('D'), 2)
    .putXattr(x, 'user.k', Buffer.from('3')))
  await step((txn) => txn.putInode(attrs(x, { size: 4 })).putFileMap(x, { kind: 'inline', data: Buffer.from('4') }))
  const [v1, v2, v3, v4] = v as [Version, Version, Version, Version]
  await meta.begin().putPin({ workflow: 'w', timeMs: 2, version: v2 }).commit()
  t.same(await refsMatchFileMaps(meta), {})

  // horizon v4: v4 is current; v3 ended at v4 (not after the horizon) and no pin sees it;
  // v2 is pinned; v1 ended at v2, which the pin does not see.
  const r1 = await meta.collect(v4)
  t.equal(r1.versionsDropped, 6, 'inode v1 v3, filemap v1 v3, dentry v1 + its lone tombstone')
  t.same(r1.chunksFreed.sort(), [chunkId('A'), chunkId('D')].sort())
  t.same(await refsMatchFileMaps(meta), {})
  t.match(await meta.getChunk(chunkId('B')), { refs: 1 })
  t.match(await meta.getChunk(chunkId('C')), { refs: 1 })
  t.match(await meta.getChunk(chunkId('A')), { refs: 0 }, 'chunk records stay: the chunk store decides')
  t.equal((await meta.getPack(P))?.liveBytes, 1500 - 100 - 800)

  t.equal((await meta.getInode(x))?.size, 4)
  t.equal((await meta.getInode(x, v2))?.size, 2, 'the pinned view is intact')
  t.same(await meta.getFileMap(x, v2), extents('B', 'C'))
  t.same(await meta.getXattr(x, 'user.k', v2), Buffer.from('1'), 'xattr v1 is what the pin sees')
  t.equal(await meta.lookup(ROOT_INO, 'y', v2), undefined)
  t.equal(await meta.getInode(x, v1), undefined, 'v1 is gone')
  t.equal((await meta.getInode(x, v3))?.size, 2, 'v3 is gone: the view at v3 now finds v2')
  t.same((await collectAll(meta.fileMapVersions())).map((f) => f.version), [v4, v2], 'newest first within a key')

  const again = await meta.collect(v4)
  t.same(again, { versionsDropped: 0, chunksFreed: [], liveDrops: new Map() }, 'a second pass finds nothing')

  await meta.begin().deletePin('w', 2).commit()
  const r2 = await meta.collect(v4)
  t.equal(r2.versionsDropped, 3, 'inode v2, filemap v2, xattr v1')
  t.same(r2.chunksFreed.sort(), [chunkId('B'), chunkId('C')].sort())
  t.equal((await meta.getPack(P))?.liveBytes, 0)
  t.same(await refsMatchFileMaps(meta), {})

  clock.ms += 1000
  const v5 = await meta.begin().deleteInode(x).commit()
  const kept = await meta.collect(v4)
  t.equal(kept.versionsDropped, 0, 'a deletion inside the history window is kept')
  t.equal((await meta.getInode(x, v4))?.size, 4)
  const r3 = await meta.collect(v5)
  t.equal(r3.versionsDropped, 6, 'inode, filemap and xattr: last value and tombstone each')
  t.same((await collectAll(meta.inodes(v4))).map((a) => a.ino), [ROOT_INO], 'history before the horizon is gone')
  t.same(await collectAll(meta.fileMapVersions()), [])
  t.same(await meta.listXattrs(x, v4), [])
  t.ok(await meta.getInode(ROOT_INO), 'the current root is untouched')
})

t.test('a horizon above the head counts as the head', async (t) => {
  const clock = new ManualClock()
  const meta = await openMeta(t.testdir(), { now: clock.now })
  t.teardown(() => meta.close())
  const x = meta.allocIno()
  await meta.begin().putInode(attrs(x, { size: 1 })).commit()
  clock.ms += 10
  await meta.begin().putInode(attrs(x, { size: 2 })).commit()
  const r = await meta.collect(asVersion(meta.head + (1n << 40n)))
  t.equal(r.versionsDropped, 1)
  t.equal((await meta.getInode(x))?.size, 2)
})

t.test('collect in small batches, concurrent with commits, keeps every needed version', async (t) => {
  const clock = new ManualClock()
  const meta = await openMeta(t.testdir(), { now: clock.now, collectBatchOps: 37 })
  t.teardown(() => meta.close())
  const P = packId('P')
  const setup = meta.begin().putPack(packRec(P, { liveBytes: 4000 }))
  for (const s of ['c0', 'c1', 'c2', 'c3']) setup.putChunk(chunkRec(s, P, { length: 1000 }))
  await setup.commit()
  const N = 300
  const inos = Array.from({ length: N }, () => meta.allocIno())
  const rounds: Version[] = []
  for (let r = 1; r <= 5; r++) {
    clock.ms += 1000
    const txn = meta.begin()
    for (const i of inos) {
      const c = `c${(i + r) % 3}`
      txn.putInode(attrs(i, { size: r })).putFileMap(i, extents(c)).addRefs(chunkId(c), 1)
    }
    rounds.push(await txn.commit())
  }
  const [, v2, v3, v4, v5] = rounds as [Version, Version, Version, Version, Version]
  await meta.begin().putPin({ workflow: 'w', timeMs: 1, version: v2 }).commit()

  const running = meta.collect(v3)
  let finished = false
  void running.then(() => { finished = true }, () => { finished = true })
  const later = new Map<number, number>()
  let commits = 0
  let during = 0
  for (let k = 0; !finished || commits < 20; k++) {
    if (!finished) during++
    clock.ms += 1
    const i = inos[(k * 7) % N]!
    const size = 100 + k
    const c = k % 2 === 0 ? 'c3' : 'c0'
    await meta.begin().putInode(attrs(i, { size })).putFileMap(i, extents(c)).addRefs(chunkId(c), 1).commit()
    later.set(i, size)
    commits++
  }
  const r = await running
  t.ok(during >= 5, `${during} commits ran during the pass`)
  t.equal(r.versionsDropped, 2 * N, 'round 1 of each inode and filemap')

  let wrong = 0
  for (const i of inos) {
    const at = async (v: Version): Promise<number | undefined> => (await meta.getInode(i, v))?.size
    if (await at(rounds[0]!) !== undefined) wrong++
    if (await at(v2) !== 2) wrong++
    if (await at(v3) !== 3) wrong++
    if (await at(v4) !== 4) wrong++
    if (await at(v5) !== 5) wrong++
    if ((await meta.getInode(i))?.size !== (later.get(i) ?? 5)) wrong++
    if ((await meta.getFileMap(i, v2))?.kind !== 'extents') wrong++
  }
  t.equal(wrong, 0, 'pinned, in-window and current views are intact')
  t.same(await refsMatchFileMaps(meta), {}, 'refs equal the surviving extents')
  let live = 0
  for await (const c of meta.chunks()) if (c.refs > 0) live += c.length
  t.same(r.chunksFreed, [], 'every chunk is still referenced by a later version')
  t.equal((await meta.getPack(P))?.liveBytes, live)
  t.equal(live, 4000)
})

t.test('close during a collect stops it', async (t) => {
  const meta = await openMeta(t.testdir(), { collectBatchOps: 10 })
  const x = meta.allocIno()
  for (let r = 0; r < 30; r++) await meta.begin().putInode(attrs(x, { size: r })).commit()
  const running = meta.collect(meta.head)
  await meta.close()
  const result = await running.then((res) => res, (err: unknown) => err)
  t.ok(result instanceof Error ? (result as { code?: string }).code === 'CLOSED' : typeof result === 'object', 'finishes or stops with CLOSED')
})
