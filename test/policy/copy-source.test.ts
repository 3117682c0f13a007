import t, { type Test } from 'tap'
import { open } from 'node:fs/promises'
import type { ChunkId, PackId } from '../../src/ids.js'
import { CODEC_NONE, CODEC_ZSTD, decodeChunk } from '../../src/chunk/codec.js'
import { CopySource, type CopyChunks, type CopyItem } from '../../src/policy/copy-source.js'
import type { VerifiedRecord } from '../../src/chunk/pack-reader.js'
import { det, PRUNE_CONFIG, putFile } from '../backup/prune-fixture.js'
import { removeFixture, vfsStore, type VfsFixture } from '../support/vfs-store.js'

/** The copy items of a file's chunks, as the migrator plans them. */
async function itemsOf(fx: VfsFixture, path: string): Promise<CopyItem[]> {
  const map = await fx.store.meta.getFileMap(await fx.vfs.resolve(path))
  if (map?.kind !== 'extents') throw new Error(`${path} has no extents`)
  const out: CopyItem[] = []
  for (const e of map.extents) {
    const rec = await fx.store.meta.getChunk(e.id)
    if (rec === undefined) throw new Error('no chunk record')
    out.push({ id: e.id, pack: rec.pack, offset: rec.offset, length: rec.length, rawLength: rec.rawLength, codec: rec.codec })
  }
  return out
}

async function fixture(t: Test): Promise<VfsFixture> {
  const fx = await vfsStore({ ...PRUNE_CONFIG, compression: true })
  t.teardown(async () => { await fx.close().catch(() => undefined); await removeFixture(fx) })
  return fx
}

t.test('chunks on a local tier are copied as stored: same codec, bytes and CRC, verified', async (t) => {
  const fx = await fixture(t)
  const text = Buffer.from('row-key-0001,column-family:qualifier,value\n'.repeat(20_000))
  const noise = det('noise', 300 * 1024)
  await putFile(fx, '/text', text)
  await putFile(fx, '/noise', noise)
  for (const [path, want] of [['/text', text], ['/noise', noise]] as const) {
    const items = await itemsOf(fx, path)
    const source = new CopySource(items, fx.store.chunks, 3)
    const parts: Buffer[] = []
    for (const [i, item] of items.entries()) {
      const got = await source.get(i)
      t.ok(got.stored !== undefined, `${path} chunk ${i} is read as stored`)
      const stored = got.stored as NonNullable<typeof got.stored>
      t.equal(stored.codec, item.codec, 'its codec as stored')
      t.equal(stored.data.length, item.length, 'its stored length')
      t.ok(decodeChunk(stored.codec, stored.data, item.rawLength).equals(got.raw), 'stored bytes decode to the raw bytes')
      if (stored.codec === CODEC_NONE) t.type(stored.crc, 'number', 'a raw record carries its CRC over')
      else t.equal(stored.crc, undefined, 'a compressed record has its CRC computed again')
      parts.push(got.raw)
    }
    t.ok(Buffer.concat(parts).equals(want), `${path}: the raw bytes are the file`)
  }
  t.ok((await itemsOf(fx, '/text')).some((i) => i.codec === CODEC_ZSTD), 'the text was stored compressed')
})

t.test('a chunk that cannot be read at its planned place is read where it is now; a damaged one fails', async (t) => {
  const fx = await fixture(t)
  const data = det('moved', 200 * 1024)
  await putFile(fx, '/f', data)
  const items = await itemsOf(fx, '/f')
  // Planned at a place that no longer holds it (a pack removed by a repack since).
  const gone = items.map((i) => ({ ...i, pack: '0'.repeat(32) as PackId }))
  const source = new CopySource(gone, fx.store.chunks, 2)
  const parts: Buffer[] = []
  for (let i = 0; i < gone.length; i++) {
    const got = await source.get(i)
    t.equal(got.stored, undefined, 'not copied as stored')
    parts.push(got.raw)
  }
  t.ok(Buffer.concat(parts).equals(data), 'the cached read found every chunk')

  // Damage one stored byte of the first chunk: the copy must not take it, from either path.
  const first = items[0] as CopyItem
  const pack = await fx.store.meta.getPack(first.pack)
  const path = fx.store.block.localPath((pack as NonNullable<typeof pack>).key) as string
  const fh = await open(path, 'r+')
  const b = Buffer.alloc(1)
  await fh.read(b, 0, 1, first.offset + 10)
  b[0] = (b[0] as number) ^ 0xff
  await fh.write(b, 0, 1, first.offset + 10)
  await fh.close()
  await fx.store.chunks.close()
  await t.rejects(new CopySource(items, fx.store.chunks, 2).get(0), { code: 'CORRUPT' })
})

t.test('chunks on a remote tier go through cached reads, their prefetches asked for in one turn', async (t) => {
  const raw = new Map<ChunkId, Buffer>()
  const items: CopyItem[] = Array.from({ length: 6 }, (_, i) => {
    const id = String(i).repeat(64) as ChunkId
    raw.set(id, Buffer.from(`chunk ${i}`))
    return { id, pack: 'a'.repeat(32) as PackId, offset: 88 + i * 100, length: 7, rawLength: 7, codec: 0 }
  })
  const turns: ChunkId[][] = []
  let current: ChunkId[] | undefined
  const chunks: CopyChunks = {
    read: async (id) => raw.get(id) as Buffer,
    prefetch: (id) => {
      if (current === undefined) {
        current = []
        turns.push(current)
        queueMicrotask(() => { current = undefined })
      }
      current.push(id)
    },
    readStored: async (): Promise<VerifiedRecord> => { throw new Error('a remote chunk must not be read as stored') },
    isRemote: async () => true,
  }
  const source = new CopySource(items, chunks, 3)
  for (const [i, item] of items.entries()) {
    const got = await source.get(i)
    t.equal(got.stored, undefined)
    t.ok(got.raw.equals(raw.get(item.id) as Buffer))
  }
  t.same(turns.map((ids) => ids.length), [4, 1, 1], 'the first window together, then one more each')
})
