import t from 'tap'
import { asVersion, ROOT_INO } from '../../src/ids.js'
import { attrs, chunkId, chunkRec, collectAll, ino, packId, packRec, openMeta } from './helpers.js'

t.test('a transaction becomes visible all at once', async (t) => {
  const meta = await openMeta(t.testdir())
  t.teardown(() => meta.close())
  const a = meta.allocIno()
  const b = meta.allocIno()
  const dir = meta.allocIno()
  const ROUNDS = 150
  let done = false
  const writer = (async () => {
    for (let i = 1; i <= ROUNDS; i++) {
      await meta.begin()
        .putInode(attrs(a, { size: i }))
        .putInode(attrs(b, { size: i }))
        .putDentry(dir, `x${i}-1`, a)
        .putDentry(dir, `x${i}-2`, b)
        .deleteDentry(dir, `x${i - 1}-1`)
        .deleteDentry(dir, `x${i - 1}-2`)
        .commit()
    }
    done = true
  })()
  let checks = 0
  let torn = 0
  while (!done) {
    const h = meta.head
    const [ia, ib, list] = await Promise.all([meta.getInode(a, h), meta.getInode(b, h), collectAll(meta.readdir(dir))])
    if (ia?.size !== ib?.size) torn++
    // one readdir is one LevelDB snapshot: both entries of a round, or none
    if (!(list.length === 0 || (list.length === 2 && list[0]!.name.split('-')[0] === list[1]!.name.split('-')[0]))) torn++
    checks++
  }
  await writer
  t.equal(torn, 0, `no torn reads in ${checks} checks`)
  t.ok(checks > 5)
  t.equal((await meta.getInode(a))?.size, ROUNDS)
})

t.test('a failing transaction leaves nothing behind', async (t) => {
  const meta = await openMeta(t.testdir())
  t.teardown(() => meta.close())
  const x = meta.allocIno()
  const head = meta.head
  t.equal(await meta.lookup(ROOT_INO, 'ghost'), undefined, 'negative lookup cached before the attempt')
  const p = packId('p')
  await t.rejects(meta.begin()
    .putInode(attrs(x))
    .putDentry(ROOT_INO, 'ghost', x)
    .putPack(packRec(p))
    .putChunk(chunkRec('c1', p))
    .addRefs(chunkId('missing'), 1)
    .commit(), { code: 'NOT_FOUND' })
  t.equal(meta.head, head, 'no version was committed')
  t.equal(await meta.getInode(x), undefined)
  t.equal(await meta.lookup(ROOT_INO, 'ghost'), undefined)
  t.equal(await meta.lookup(ROOT_INO, 'ghost', asVersion(head + 1000n)), undefined)
  t.equal(await meta.getChunk(chunkId('c1')), undefined)
  t.equal(await meta.getPack(p), undefined)

  await meta.begin().putPack(packRec(p)).putChunk(chunkRec('c1', p, { refs: 1 })).commit()
  await t.rejects(meta.begin().putInode(attrs(x)).addRefs(chunkId('c1'), -2).commit(), { code: 'INTERNAL' })
  await t.rejects(meta.begin().putInode(attrs(x)).addPackLive(packId('nope'), 1).commit(), { code: 'NOT_FOUND' })
  await t.rejects(meta.begin().putInode(attrs(x)).addPackLive(p, -1).commit(), { code: 'INTERNAL' })
  t.equal((await meta.getChunk(chunkId('c1')))?.refs, 1)
  t.equal(await meta.getInode(x), undefined)

  const v = await meta.begin().putInode(attrs(x)).commit()
  t.ok(v > head, 'the commit lock is not poisoned by failures')
  t.ok(await meta.getInode(x))
})

t.test('invalid operations are refused when queued; a txn commits once', async (t) => {
  const meta = await openMeta(t.testdir())
  t.teardown(() => meta.close())
  t.throws(() => meta.begin().putInode(attrs(0)), { code: 'INVALID' })
  t.throws(() => meta.begin().putInode(attrs(2 ** 32)), { code: 'INVALID' })
  t.throws(() => meta.begin().putInode({ ...attrs(5), atimeNs: 2n ** 64n }), { code: 'INVALID' })
  t.throws(() => meta.begin().putDentry(ROOT_INO, 'a\0', ino(5)), { code: 'INVALID' })
  t.throws(() => meta.begin().putDentry(ROOT_INO, 'a', ino(0)), { code: 'INVALID' })
  t.throws(() => meta.begin().addRefs(chunkId('a'), 0.5), { code: 'INVALID' })
  t.throws(() => meta.begin().putSys('meta.version', Buffer.alloc(8)), { code: 'INVALID' })
  t.throws(() => meta.begin().deleteSys('meta.format'), { code: 'INVALID' })
  const txn = meta.begin().putInode(attrs(5))
  t.equal(txn.size, 1)
  await txn.commit()
  await t.rejects(txn.commit(), { code: 'INTERNAL' })
  t.throws(() => txn.putInode(attrs(6)), { code: 'INTERNAL' })
})

t.test('addRefs and addPackLive compose across concurrent transactions', async (t) => {
  const meta = await openMeta(t.testdir())
  t.teardown(() => meta.close())
  const p = packId('pack')
  await meta.begin().putPack(packRec(p, { liveBytes: 0 })).putChunk(chunkRec('c', p, { refs: 0 })).commit()
  const commits: Promise<unknown>[] = []
  let expectRefs = 0
  let expectLive = 0
  for (let i = 0; i < 60; i++) {
    const d = (i % 3) + 1
    expectRefs += d
    expectLive += 100 * d
    commits.push(meta.begin().addRefs(chunkId('c'), d).addPackLive(p, 100 * d).commit())
  }
  await Promise.all(commits)
  t.equal((await meta.getChunk(chunkId('c')))?.refs, expectRefs)
  t.equal((await meta.getPack(p))?.liveBytes, expectLive)

  // put + addRefs in one transaction; put, add, add in order
  await meta.begin().putChunk(chunkRec('n', p, { refs: 2 })).addRefs(chunkId('n'), 3).addRefs(chunkId('n'), -1).commit()
  t.equal((await meta.getChunk(chunkId('n')))?.refs, 4)
  await meta.begin().deleteChunk(chunkId('n')).commit()
  t.equal(await meta.getChunk(chunkId('n')), undefined)
  t.same((await collectAll(meta.chunks())).map((c) => c.id), [chunkId('c')])
})

t.test('putPack keeps the stored liveBytes', async (t) => {
  const meta = await openMeta(t.testdir())
  t.teardown(() => meta.close())
  const p = packId('pp')
  await meta.begin().putPack(packRec(p, { liveBytes: 500, state: 'open' })).commit()
  t.equal((await meta.getPack(p))?.liveBytes, 500, 'a new pack takes liveBytes from the record')
  await meta.begin().putPack(packRec(p, { liveBytes: 0, state: 'sealed', size: 77 })).commit()
  t.match(await meta.getPack(p), { liveBytes: 500, state: 'sealed', size: 77 }, 'an existing pack keeps its liveBytes')
  await meta.begin().addPackLive(p, 10).putPack(packRec(p, { liveBytes: 1 })).addPackLive(p, 5).commit()
  t.equal((await meta.getPack(p))?.liveBytes, 515)
  const q = packId('qq')
  await meta.begin().putPack(packRec(q, { liveBytes: 7 })).putPack(packRec(q, { liveBytes: 9, key: 'k2' })).commit()
  t.match(await meta.getPack(q), { liveBytes: 7, key: 'k2' }, 'an earlier put in the same txn counts')
  await meta.begin().deletePack(q).putPack(packRec(q, { liveBytes: 3 })).commit()
  t.equal((await meta.getPack(q))?.liveBytes, 3, 'a put after a delete creates the pack anew')
  t.same((await collectAll(meta.packs())).map((x) => x.id).sort(), [p, q].sort())
  await meta.begin().deletePack(p).commit()
  t.equal(await meta.getPack(p), undefined)
})

t.test('pins and sys records', async (t) => {
  const meta = await openMeta(t.testdir())
  t.teardown(() => meta.close())
  const v = meta.head
  await meta.begin()
    .putPin({ workflow: 'nightly', timeMs: 2000, version: v })
    .putPin({ workflow: 'nightly', timeMs: 1000, version: asVersion(v - 1n) })
    .putPin({ workflow: 'nightly-2', timeMs: 500, version: v })
    .putPin({ workflow: 'hourly', timeMs: 3000, version: v })
    .putSys('orphan.12', Buffer.from('x'))
    .putSys('orphan.3', Buffer.from('y'))
    .putSys('other', Buffer.from('z'))
    .commit()
  t.same(await collectAll(meta.pins('nightly')), [
    { workflow: 'nightly', timeMs: 1000, version: v - 1n },
    { workflow: 'nightly', timeMs: 2000, version: v },
  ])
  t.same((await collectAll(meta.pins())).map((p) => `${p.workflow}@${p.timeMs}`), ['hourly@3000', 'nightly@1000', 'nightly@2000', 'nightly-2@500'])
  await meta.begin().deletePin('nightly', 1000).deleteSys('orphan.3').commit()
  t.same((await collectAll(meta.pins('nightly'))).map((p) => p.timeMs), [2000])
  t.same(await meta.sysNames('orphan.'), ['orphan.12'])
  t.same(await meta.getSys('other'), Buffer.from('z'))
  t.equal(await meta.getSys('orphan.3'), undefined)
  t.same(await meta.sysNames('meta.'), ['meta.format', 'meta.version'], 'no inode allocated yet, so no counter')
})
