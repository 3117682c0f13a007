import t from 'tap'
import { asChunkId, type PackId } from '../../src/ids.js'
import type { ChunkRecord } from '../../src/meta/types.js'
import { chunkRec, collectAll, openMeta, packId } from './helpers.js'

t.test('chunkRowBatches reads every record once, across slices, decoding field by field', async (t) => {
  const meta = await openMeta(t.testdir())
  t.teardown(() => meta.close())
  const packs = [packId('a'), packId('b'), packId('c')]
  const txn = meta.begin()
  for (let i = 0; i < 3000; i++) txn.putChunk(chunkRec(`c${i}`, packs[i % 3]!, { offset: 88 + i, length: i, rawLength: 2 * i, refs: i % 4 }))
  // The edges of the id space: slices must not lose the first or last byte value.
  for (const edge of ['00', 'ff']) txn.putChunk({ ...chunkRec('edge', packs[0]!), id: asChunkId(edge.repeat(32)) })
  await txn.commit()
  const expected = await collectAll(meta.chunks())
  for (const ranges of [1, 3, 4, 16]) {
    const got: ChunkRecord[] = []
    const words = new Uint32Array(4)
    const idWords = new Uint32Array(8)
    let fieldsAgree = true
    for await (const rows of meta.chunkRowBatches({ ranges })) {
      for (let i = 0; i < rows.size; i++) {
        const rec = rows.record(i)
        got.push(rec)
        rows.packWords(i, words)
        const hex = [...words].map((w) => w.toString(16).padStart(8, '0')).join('') as PackId
        if (rows.id(i) !== rec.id || rows.refs(i) !== rec.refs || rows.length(i) !== rec.length || hex !== rec.pack
          || (rows.idWords(i, idWords), [...idWords].map((w) => w.toString(16).padStart(8, '0')).join('')) !== rec.id) fieldsAgree = false
      }
    }
    t.ok(fieldsAgree, `${ranges} slices: field accessors agree with the decoded record`)
    t.same(got.sort((a, b) => (a.id < b.id ? -1 : 1)), expected, `${ranges} slices: every record, once`)
  }
})
