import t from 'tap'
import { asChunkId, type ChunkId } from '../../src/ids.js'
import type { Extent, FileMap } from '../../src/meta/types.js'
import { AccessPattern, findExtent, readMapped, type ChunkSource } from '../../src/vfs/file-reader.js'

const CHUNK = 1000
const COUNT = 20

/** Twenty chunks of CHUNK bytes, each filled with its index; records what was read and prefetched. */
function fixture(): { map: FileMap; src: ChunkSource; reads: number[]; prefetched: number[] } {
  const extents: Extent[] = []
  const data = new Map<ChunkId, Buffer>()
  for (let i = 0; i < COUNT; i++) {
    const id = asChunkId(i.toString(16).padStart(64, '0'))
    extents.push({ offset: i * CHUNK, length: CHUNK, id })
    data.set(id, Buffer.alloc(CHUNK, i))
  }
  const index = (id: ChunkId): number => parseInt(id, 16)
  const reads: number[] = []
  const prefetched: number[] = []
  const src: ChunkSource = {
    read: async (id) => { reads.push(index(id)); return data.get(id) as Buffer },
    prefetch: (id) => { prefetched.push(index(id)) },
  }
  return { map: { kind: 'extents', extents }, src, reads, prefetched }
}

t.test('a sequential read loads the next chunks ahead of itself', async (t) => {
  const f = fixture()
  const buf = Buffer.alloc(128)
  t.equal(await readMapped(f.map, COUNT * CHUNK, f.src, buf, 0), 128)
  t.same([...new Set(f.prefetched)], [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16], 'at a batch boundary the window reaches sixteen chunks ahead')
  f.prefetched.length = 0
  await readMapped(f.map, COUNT * CHUNK, f.src, Buffer.alloc(128), 2 * CHUNK)
  t.same([...new Set(f.prefetched)], [3, 4, 5, 6, 7, 8, 9, 10], 'between boundaries eight (already asked for: no new work)')
  t.same(buf, Buffer.alloc(128, 0))
  f.prefetched.length = 0
  await readMapped(f.map, COUNT * CHUNK, f.src, Buffer.alloc(128), 16 * CHUNK)
  t.same([...new Set(f.prefetched)], [17, 18, 19], 'never past the last chunk')
})

t.test('a random read loads only what it needs', async (t) => {
  const f = fixture()
  const buf = Buffer.alloc(1500)
  t.equal(await readMapped(f.map, COUNT * CHUNK, f.src, buf, 3 * CHUNK + 700, false), 1500)
  t.same(f.reads, [3, 4, 5])
  t.same(f.prefetched, [])
  t.same(buf.subarray(0, 300), Buffer.alloc(300, 3))
  t.same(buf.subarray(300, 1300), Buffer.alloc(1000, 4))
})

t.test('reads stop at the end of the file; extents are found by binary search', async (t) => {
  const f = fixture()
  t.equal(await readMapped(f.map, 9_500, f.src, Buffer.alloc(4096), 9_000), 500)
  t.equal(await readMapped(f.map, 9_500, f.src, Buffer.alloc(10), 9_500), 0)
  const ex = (f.map as { extents: Extent[] }).extents
  t.equal(findExtent(ex, 0), 0)
  t.equal(findExtent(ex, 4_999), 4)
  t.equal(findExtent(ex, COUNT * CHUNK), COUNT)
})

t.test('access pattern: continuing reads are sequential, jumps are random', async (t) => {
  const p = new AccessPattern()
  t.ok(p.next(0, 131072))
  t.ok(p.next(131072, 131072))
  t.ok(p.next(393216, 131072), 'a slightly out-of-order kernel read-ahead still counts')
  t.notOk(p.next(500 << 20, 4096), 'a jump')
  t.ok(p.next((500 << 20) + 4096, 4096))
})
