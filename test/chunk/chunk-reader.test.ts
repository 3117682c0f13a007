import t, { type Test } from 'tap'
import { readFile, writeFile } from 'node:fs/promises'
import { ChunkReader } from '../../src/chunk/chunk-reader.js'
import type { ChunkId, TierId } from '../../src/ids.js'
import type { Extent } from '../../src/meta/types.js'
import type { Tier } from '../../src/tier/tier.js'
import { readMapped } from '../../src/vfs/file-reader.js'
import { removeFixture, vfsStore, type VfsFixture } from '../support/vfs-store.js'
import { det, putFile } from '../backup/prune-fixture.js'

const MiB = 1024 * 1024
const SMALL_CHUNKS = { chunker: { minSize: 64 * 1024, avgSize: 128 * 1024, maxSize: 512 * 1024 } }

/** The block tier seen as a remote one (no local path: ranged gets), counting its gets. */
function remote(tier: Tier, gets: Array<{ offset: number; length: number }>): Tier {
  return new Proxy(tier, {
    get(target, prop) {
      if (prop === 'localPath') return () => undefined
      if (prop === 'get') {
        return (key: string, range?: { offset: number; length: number }) => {
          gets.push(range ?? { offset: 0, length: -1 })
          return target.get(key, range)
        }
      }
      const value = Reflect.get(target, prop, target) as unknown
      return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value
    },
  })
}

async function setup(t: Test): Promise<{ fx: VfsFixture; data: Buffer; extents: Extent[] }> {
  const fx = await vfsStore(SMALL_CHUNKS)
  t.teardown(async () => { await fx.close(); await removeFixture(fx) })
  const data = det('sequential', 6 * MiB)
  await putFile(fx, '/f', data)
  const map = await fx.store.meta.getFileMap(await fx.vfs.resolve('/f'))
  if (map?.kind !== 'extents') throw new Error('expected extents')
  return { fx, data, extents: map.extents }
}

async function readSequentially(reader: ChunkReader, extents: Extent[], size: number): Promise<Buffer> {
  const out = Buffer.alloc(size)
  const map = { kind: 'extents' as const, extents }
  for (let at = 0; at < size; at += 128 * 1024) await readMapped(map, size, reader, out.subarray(at, at + 128 * 1024), at)
  return out
}

t.test('a sequential read of a remote file fetches neighbouring chunks with one ranged get', async (t) => {
  const { fx, data, extents } = await setup(t)
  const gets: Array<{ offset: number; length: number }> = []
  const reader = new ChunkReader(fx.store.meta, (id: TierId) => remote(fx.store.tiers.get(id), gets), 64 * MiB)
  t.teardown(() => reader.close())
  t.ok(extents.length >= 20, `${extents.length} chunks`)
  const got = await readSequentially(reader, extents, data.length)
  t.ok(got.equals(data), 'byte-exact')
  t.ok(gets.length < extents.length / 2, `${gets.length} gets for ${extents.length} chunks`)
  const largest = Math.max(...extents.map((e) => e.length))
  t.ok(gets.some((g) => g.length > 2 * largest), 'some gets span several chunks')
})

t.test('local packs are read chunk by chunk (pread), as before', async (t) => {
  const { fx, data, extents } = await setup(t)
  const reader = new ChunkReader(fx.store.meta, (id: TierId) => fx.store.tiers.get(id), 64 * MiB)
  t.teardown(() => reader.close())
  t.ok((await readSequentially(reader, extents, data.length)).equals(data))
})

t.test('a damaged chunk inside a coalesced span fails alone', async (t) => {
  const { fx, data, extents } = await setup(t)
  const victim = extents[5] as Extent
  const rec = (await fx.store.meta.getChunk(victim.id as ChunkId))!
  const pack = (await fx.store.meta.getPack(rec.pack))!
  const path = fx.store.tiers.get(pack.tier).localPath(pack.key) as string
  const bytes = await readFile(path)
  bytes[rec.offset + 100]! ^= 0x40
  await writeFile(path, bytes)
  const gets: Array<{ offset: number; length: number }> = []
  const reader = new ChunkReader(fx.store.meta, (id: TierId) => remote(fx.store.tiers.get(id), gets), 64 * MiB)
  t.teardown(() => reader.close())
  const map = { kind: 'extents' as const, extents }
  const buf = Buffer.alloc(128 * 1024)
  // Reading chunk 3 prefetches 4..7 as one span; 5 is damaged.
  await readMapped(map, data.length, reader, buf, (extents[3] as Extent).offset)
  t.ok(buf.equals(data.subarray((extents[3] as Extent).offset, (extents[3] as Extent).offset + buf.length)))
  await t.rejects(reader.read(victim.id as ChunkId), { code: 'CORRUPT' }, 'the damaged chunk is CORRUPT')
  t.ok((await reader.read((extents[6] as Extent).id as ChunkId)).equals(data.subarray((extents[6] as Extent).offset, (extents[6] as Extent).offset + (extents[6] as Extent).length)), 'its neighbours read')
})
