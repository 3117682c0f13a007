import t from 'tap'
import { asChunkId } from '../../src/ids.js'
import { removeFixture, vfsStore } from '../support/vfs-store.js'
import { det } from '../backup/prune-fixture.js'

const MiB = 1024 * 1024

async function* once(data: Buffer): AsyncIterable<Buffer> {
  yield data
}

t.test('a batch that never commits after opening or finishing a pack does not strand the packs after it', async (t) => {
  const fx = await vfsStore({ packSize: 1024 * 1024 })
  t.teardown(async () => { await fx.close(); await removeFixture(fx) })
  const { meta, chunks } = fx.store

  // The failed batch: opens a pack, appends, and its Txn is dropped (as when a seal's commit fails).
  const lost = chunks.batch(meta.begin())
  await lost.ingest(once(det('lost', 600 * 1024)))
  lost.end()

  // The next batch appends to the same open pack, fills it past packSize (finished), opens another,
  // and is dropped too.
  const lost2 = chunks.batch(meta.begin())
  await lost2.ingest(once(det('lost2', 2 * MiB)))
  lost2.end()

  // A batch that commits: every pack it adds to has a record, with the right live bytes.
  const txn = meta.begin()
  const ok = chunks.batch(txn)
  const res = await ok.ingest(once(det('kept', 700 * 1024)))
  await ok.sync()
  await txn.commit({ sync: true })
  ok.committed()
  t.ok(res.extents.length >= 1)
  let live = 0
  for (const e of res.extents) {
    const rec = await meta.getChunk(asChunkId(e.id))
    t.ok(rec !== undefined, 'the chunk is recorded')
    const pack = await meta.getPack(rec!.pack)
    t.ok(pack !== undefined, 'in a pack that is recorded')
    live += rec!.length
  }
  let packLive = 0
  for await (const p of meta.packs()) packLive += p.liveBytes
  t.equal(packLive, live, 'pack live bytes count the committed chunks only')
  t.ok((await chunks.read(asChunkId(res.extents[0]!.id))).equals(det('kept', 700 * 1024).subarray(0, res.extents[0]!.length)), 'and it reads back')
})
