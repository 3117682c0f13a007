import t from 'tap'
import type { Version } from '../../src/ids.js'
import { attrs, chunkId, chunkRec, collectAll, ManualClock, openMeta, packId, packRec } from './helpers.js'

/** The conditional operations prune's fence is made of, decided at commit under the commit lock. */

t.test('deleteChunk ifUnreferenced: skipped once refs are above zero at commit', async (t) => {
  const meta = await openMeta(t.testdir())
  t.teardown(() => meta.close())
  const P = packId('P')
  await meta.begin().putPack(packRec(P)).putChunk(chunkRec('a', P)).putChunk(chunkRec('b', P)).commit()
  const prune = meta.begin().deleteChunk(chunkId('a'), { ifUnreferenced: true }).deleteChunk(chunkId('b'), { ifUnreferenced: true })
  await meta.begin().addRefs(chunkId('a'), 1).commit()
  await prune.commit()
  t.match(await meta.getChunk(chunkId('a')), { refs: 1 }, 'a seal that committed first keeps its chunk')
  t.equal(await meta.getChunk(chunkId('b')), undefined, 'an unreferenced chunk goes')
  await meta.begin().deleteChunk(chunkId('a')).commit()
  t.equal(await meta.getChunk(chunkId('a')), undefined, 'without the option the delete is plain')
  await meta.begin().deleteChunk(chunkId('gone'), { ifUnreferenced: true }).commit()
})

t.test('a seal whose dedup target was pruned fails NOT_FOUND as a whole', async (t) => {
  const meta = await openMeta(t.testdir())
  t.teardown(() => meta.close())
  const P = packId('P')
  await meta.begin().putPack(packRec(P)).putChunk(chunkRec('a', P)).commit()
  const x = meta.allocIno()
  const seal = meta.begin().putInode(attrs(x, { size: 1000 })).putFileMap(x, { kind: 'extents', extents: [{ offset: 0, length: 1000, id: chunkId('a') }] })
    .addRefs(chunkId('a'), 1, { trackLive: true })
  await meta.begin().deleteChunk(chunkId('a'), { ifUnreferenced: true }).commit()
  await t.rejects(seal.commit(), { code: 'NOT_FOUND' })
  t.equal(await meta.getInode(x), undefined, 'nothing of the failed seal is visible')
  t.same(await collectAll(meta.fileMapVersions()), [])
})

t.test('addRefs trackLive: a chunk crossing zero moves its length in and out of its pack liveBytes', async (t) => {
  const meta = await openMeta(t.testdir())
  t.teardown(() => meta.close())
  const P = packId('P')
  await meta.begin().putPack(packRec(P, { liveBytes: 0 })).putChunk(chunkRec('a', P, { length: 700 })).commit()
  await meta.begin().addRefs(chunkId('a'), 1, { trackLive: true }).addRefs(chunkId('a'), 1, { trackLive: true }).commit()
  t.equal((await meta.getPack(P))?.liveBytes, 700, 'counted once, at the 0 -> 1 crossing')
  await meta.begin().addRefs(chunkId('a'), -2, { trackLive: true }).commit()
  t.equal((await meta.getPack(P))?.liveBytes, 0, 'and out again at 2 -> 0')
  await meta.begin().addRefs(chunkId('a'), 1).commit()
  t.equal((await meta.getPack(P))?.liveBytes, 0, 'plain addRefs leaves liveBytes to the caller')
})

t.test('moveChunk from: a compare-and-set on the old location', async (t) => {
  const meta = await openMeta(t.testdir())
  t.teardown(() => meta.close())
  const [P, Q, R] = [packId('P'), packId('Q'), packId('R')]
  await meta.begin().putPack(packRec(P, { liveBytes: 1000 })).putPack(packRec(Q)).putPack(packRec(R))
    .putChunk(chunkRec('a', P, { offset: 88, length: 1000, refs: 1 })).commit()
  const loser = meta.begin().moveChunk(chunkId('a'), { pack: R, offset: 88, length: 1000, codec: 1 }, { from: { pack: P, offset: 88 } })
  await meta.begin().moveChunk(chunkId('a'), { pack: Q, offset: 120, length: 1000, codec: 1 }, { from: { pack: P, offset: 88 } }).commit()
  await loser.commit()
  t.match(await meta.getChunk(chunkId('a')), { pack: Q, offset: 120, refs: 1 }, 'the first mover wins; the second is skipped')
  t.same([(await meta.getPack(P))?.liveBytes, (await meta.getPack(Q))?.liveBytes, (await meta.getPack(R))?.liveBytes], [0, 1000, 0])
})

t.test('retirePack: only when no listed chunk points into the pack after the rest of the commit', async (t) => {
  const meta = await openMeta(t.testdir())
  t.teardown(() => meta.close())
  const [P, Q, O] = [packId('P'), packId('Q'), packId('O')]
  await meta.begin().putPack(packRec(P)).putPack(packRec(Q)).putPack(packRec(O, { state: 'open' }))
    .putChunk(chunkRec('live', P, { refs: 1 })).putChunk(chunkRec('dead', P)).commit()
  const ids = [chunkId('live'), chunkId('dead'), chunkId('never-indexed')]

  await meta.begin().retirePack(P, { unlessReferenced: ids }).commit()
  t.equal((await meta.getPack(P))?.state, 'sealed', 'a record still points in: kept')

  await meta.begin()
    .moveChunk(chunkId('live'), { pack: Q, offset: 32 + 56, length: 1000, codec: 1 }, { from: { pack: P, offset: 0 } })
    .deleteChunk(chunkId('dead'), { ifUnreferenced: true })
    .retirePack(P, { unlessReferenced: ids })
    .commit()
  t.equal((await meta.getPack(P))?.state, 'deleting', 'moves and deletes of the same commit count')

  await meta.begin().retirePack(O, { unlessReferenced: [] }).retirePack(packId('missing'), { unlessReferenced: [] }).commit()
  t.equal((await meta.getPack(O))?.state, 'open', 'an open pack is never retired')
  t.equal(await meta.getPack(packId('missing')), undefined)
})

t.test('collect dryRun counts what a real pass drops and frees, and writes nothing', async (t) => {
  const clock = new ManualClock()
  const meta = await openMeta(t.testdir(), { now: clock.now, collectBatchOps: 3 })
  t.teardown(() => meta.close())
  const P = packId('P')
  const setup = meta.begin().putPack(packRec(P, { liveBytes: 3000 }))
  for (const s of ['a', 'b', 'c']) setup.putChunk(chunkRec(s, P, { length: 1000 }))
  await setup.commit()
  const files = [meta.allocIno(), meta.allocIno(), meta.allocIno()]
  const versions: Version[] = []
  // Every file references 'a' in each of its versions: refs of 'a' fall across several batches.
  for (const [round, seed] of ['b', 'c', 'c'].entries()) {
    clock.ms += 1000
    const txn = meta.begin()
    for (const f of files) {
      txn.putInode(attrs(f, { size: round })).putFileMap(f, { kind: 'extents', extents: [{ offset: 0, length: 1000, id: chunkId('a') }, { offset: 1000, length: 1000, id: chunkId(seed) }] })
        .addRefs(chunkId('a'), 1).addRefs(chunkId(seed), 1)
    }
    versions.push(await txn.commit())
  }
  await meta.begin().putPin({ workflow: 'w', timeMs: 1, version: versions[0]! }).commit()
  const snapshot = async () => ({
    chunks: await collectAll(meta.chunks()), packs: await collectAll(meta.packs()), maps: (await collectAll(meta.fileMapVersions())).length,
  })
  const before = await snapshot()

  const dryKept = await meta.collect(meta.head, { dryRun: true })
  t.same(dryKept, { versionsDropped: 6, chunksFreed: [], liveDrops: new Map() }, 'the pin holds round 0: only round 1 versions go')
  const dry = await meta.collect(meta.head, { dryRun: true, ignorePins: [{ workflow: 'w', timeMs: 1 }] })
  t.same(await snapshot(), before, 'a dry run writes nothing')
  t.equal(dry.versionsDropped, 12)
  t.same(dry.chunksFreed, [chunkId('b')], "'a' stays referenced by the current versions; 'b' only by dropped ones")

  await meta.begin().deletePin('w', 1).commit()
  const real = await meta.collect(meta.head)
  t.same({ versionsDropped: real.versionsDropped, chunksFreed: real.chunksFreed }, { versionsDropped: dry.versionsDropped, chunksFreed: dry.chunksFreed })
})
