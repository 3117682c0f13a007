import { Level } from 'level'
import t from 'tap'
import type { ChunkId } from '../../src/ids.js'
import type { LevelMeta } from '../../src/meta/level-meta.js'
import { attrs, chunkId, chunkRec, collectAll, ManualClock, openMeta, packId, packRec } from './helpers.js'

/** The dead index (keys.ts) lists exactly the chunk records with refs 0, after every kind of commit. */

async function dead(meta: LevelMeta): Promise<string[]> {
  return (await collectAll(meta.deadChunks({ batch: 2 }))).flat().sort()
}

/** Ids of the records with refs 0, read from the chunk index itself. */
async function refsZero(meta: LevelMeta): Promise<string[]> {
  return (await collectAll(meta.chunks())).filter((c) => c.refs === 0).map((c) => c.id).sort()
}

const ids = (...seeds: string[]): string[] => seeds.map((s) => chunkId(s)).sort()

t.test('every commit keeps it: puts, refs crossing zero, moves, deletes, the fence', async (t) => {
  const meta = await openMeta(t.testdir())
  t.teardown(() => meta.close())
  const P = packId('P')
  const Q = packId('Q')
  await meta.begin().putPack(packRec(P)).putPack(packRec(Q)).putChunk(chunkRec('a', P)).putChunk(chunkRec('b', P)).putChunk(chunkRec('c', P, { refs: 2 })).commit()
  t.same(await dead(meta), ids('a', 'b'), 'records put with refs 0 are listed, one with refs is not')

  // A seal: a new record and its first reference in one commit.
  await meta.begin().putChunk(chunkRec('d', P)).addRefs(chunkId('d'), 1, { trackLive: false }).commit()
  await meta.begin().addRefs(chunkId('a'), 1, { trackLive: true }).commit()
  t.same(await dead(meta), ids('b'), 'a dedup brings a dead chunk back; a sealed one never appears')

  await meta.begin().addRefs(chunkId('c'), -1).commit()
  t.same(await dead(meta), ids('b'), 'refs 2 -> 1 stays live')
  await meta.begin().addRefs(chunkId('c'), -1).addRefs(chunkId('d'), -1).commit()
  t.same(await dead(meta), ids('b', 'c', 'd'), 'refs reaching 0 list the record')

  await meta.begin().moveChunk(chunkId('c'), { pack: Q, offset: 5, length: 1000, codec: 1 }).moveChunk(chunkId('a'), { pack: Q, offset: 9, length: 1000, codec: 1 }).commit()
  t.same(await dead(meta), ids('b', 'c', 'd'), 'moves keep the state')

  // The fence: a dead record a seal references before the prune's commit is kept, live.
  const pruning = meta.begin().deleteChunk(chunkId('b'), { ifUnreferenced: true }).deleteChunk(chunkId('c'), { ifUnreferenced: true })
  await meta.begin().addRefs(chunkId('b'), 1, { trackLive: true }).commit()
  await pruning.commit()
  t.same(await dead(meta), ids('d'), 'b revived and kept, c deleted with its entry')
  t.match(await meta.getChunk(chunkId('b')), { refs: 1 })
  t.equal(await meta.getChunk(chunkId('c')), undefined)

  await meta.begin().deleteChunk(chunkId('d')).commit()
  t.same(await dead(meta), [], 'a plain delete drops the entry')
  // A record put over a dead one (a repair) with refs rewrites the entry.
  await meta.begin().putChunk(chunkRec('e', P)).commit()
  await meta.begin().putChunk(chunkRec('e', P, { refs: 3 })).commit()
  t.same(await dead(meta), [], 'put with refs over a dead record unlists it')
  t.same(await dead(meta), await refsZero(meta))
})

t.test('collection lists the chunks it frees; a dry run lists nothing and reports per-pack bytes', async (t) => {
  const clock = new ManualClock()
  const meta = await openMeta(t.testdir(), { now: clock.now })
  t.teardown(() => meta.close())
  const P = packId('P')
  const Q = packId('Q')
  await meta.begin().putPack(packRec(P, { liveBytes: 300 })).putPack(packRec(Q, { liveBytes: 400 }))
    .putChunk(chunkRec('a', P, { length: 100 })).putChunk(chunkRec('b', P, { length: 200 })).putChunk(chunkRec('c', Q, { length: 400 })).commit()
  const x = meta.allocIno()
  const map = (...seeds: string[]) => ({ kind: 'extents' as const, extents: seeds.map((s, i) => ({ offset: i * 10, length: 10, id: chunkId(s) })) })
  clock.ms += 1000
  await meta.begin().putInode(attrs(x)).putFileMap(x, map('a', 'b', 'c')).addRefs(chunkId('a'), 1).addRefs(chunkId('b'), 1).addRefs(chunkId('c'), 1).commit()
  clock.ms += 1000
  const v2 = await meta.begin().putFileMap(x, map('b')).addRefs(chunkId('b'), 1).commit()
  t.same(await dead(meta), [])

  const dry = await meta.collect(v2, { dryRun: true })
  t.same([...dry.chunksFreed].sort(), ids('a', 'c'))
  t.same(Object.fromEntries(dry.liveDrops), { [P]: 100, [Q]: 400 }, 'bytes each pack would lose')
  t.same(await dead(meta), [], 'the dry run wrote nothing')

  const real = await meta.collect(v2)
  t.same([...real.chunksFreed].sort(), ids('a', 'c'))
  t.same(await dead(meta), ids('a', 'c'), 'freed chunks are listed in the same batch as their refs')
  t.match(await meta.getPack(P), { liveBytes: 200 })
  t.match(await meta.getPack(Q), { liveBytes: 0 })
  t.same(await dead(meta), await refsZero(meta))
})

t.test('a format-1 store gets its dead index built when opened', async (t) => {
  const path = t.testdir()
  let meta = await openMeta(path)
  const P = packId('P')
  const txn = meta.begin().putPack(packRec(P))
  for (let i = 0; i < 5000; i++) txn.putChunk(chunkRec(`c${i}`, P, { refs: i % 3 === 0 ? 0 : 1 }))
  await txn.commit()
  const want = await refsZero(meta)
  t.equal(want.length, 1667)
  await meta.close()

  // What a format-1 store looks like: no dead index, format byte 1.
  const db = new Level<Buffer, Buffer>(path, { keyEncoding: 'buffer', valueEncoding: 'buffer' })
  const deadSpace = db.sublevel<Buffer, Buffer>('dead', { keyEncoding: 'buffer', valueEncoding: 'buffer' })
  await deadSpace.clear()
  await db.sublevel<Buffer, Buffer>('sys', { keyEncoding: 'buffer', valueEncoding: 'buffer' }).put(Buffer.from('meta.format'), Buffer.from([1]))
  await db.close()

  meta = await openMeta(path)
  t.teardown(() => meta.close())
  t.same(await meta.getSys('meta.format'), Buffer.from([2]), 'upgraded')
  t.same(await dead(meta), want, 'every record with refs 0, nothing else')
  const first = want[0] as ChunkId
  await meta.begin().addRefs(first, 1).commit()
  t.same(await dead(meta), want.slice(1), 'and kept from then on')
})
