import t from 'tap'
import { createHash, randomBytes } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { asChunkId, asPackId } from '../../src/ids.js'
import { encodeChunk } from '../../src/chunk/codec.js'
import { readChunk, readRecord, readTrailer, recordCopy } from '../../src/chunk/pack-reader.js'
import { PackWriter } from '../../src/chunk/pack-writer.js'
import { PackImage } from '../../src/policy/pack-image.js'
import { CompressionProbe } from '../../src/policy/compress-probe.js'

function chunk(data: Buffer): { id: ReturnType<typeof asChunkId>; data: Buffer } {
  return { id: asChunkId(createHash('sha256').update(data).digest('hex')), data }
}

t.test('a pack image is byte for byte the pack PackWriter writes', async (t) => {
  const packId = asPackId(randomBytes(16).toString('hex'))
  const chunks = [chunk(randomBytes(300_000)), chunk(Buffer.alloc(200_000, 'a')), chunk(randomBytes(17)), chunk(Buffer.alloc(0))]
  const file = join(t.testdir(), 'p.pack')
  const writer = await PackWriter.create(file, packId)
  // Memory far too small for the pack: the image moves to larger buffers as it grows.
  const image = new PackImage(packId, Buffer.alloc(100))
  for (const c of chunks) {
    const encoded = encodeChunk(c.data, { compress: true })
    const a = await writer.append(c.id, encoded, c.data.length)
    const b = image.append(c.id, encoded, c.data.length)
    t.same(b, a, 'same entry')
    t.equal(image.size, writer.size, 'same size so far')
  }
  const written = await writer.finish()
  const built = image.finish()
  t.same(built.entries, written.entries)
  t.ok(built.data.equals(await readFile(file)), 'identical bytes')
  const ra = { size: async () => built.data.length, read: async (o: number, l: number) => built.data.subarray(o, o + l) }
  const trailer = await readTrailer(ra)
  t.equal(trailer.entries.length, chunks.length)
  for (const [i, e] of trailer.entries.entries()) t.ok((await readChunk(ra, e)).equals((chunks[i] as { data: Buffer }).data), `chunk ${i} reads back`)
  t.ok(image.memory.length >= built.data.length && image.memory.buffer === built.data.buffer, 'the pack is a view of the memory it was built in')

  // The same memory, handed to the next image (as the migrator does once a pack is shipped),
  // and records copied as stored (their CRC carried over): the same bytes again.
  const memory = image.memory
  const again = new PackImage(packId, memory)
  for (const e of trailer.entries) again.append(e.id, recordCopy(await readRecord(ra, e)), e.rawLength)
  const copy = again.finish()
  t.equal(copy.data.buffer, memory.buffer, 'built in the memory it was given')
  t.ok(copy.data.equals(await readFile(file)), 'a copy of verified records is the same pack')
})

t.test('a pack image refuses malformed records', async (t) => {
  const image = new PackImage(asPackId(randomBytes(16).toString('hex')), Buffer.alloc(1024))
  t.throws(() => image.append(asChunkId('nothex'), { codec: 0, data: Buffer.alloc(1) }, 1), { code: 'INVALID' })
  const c = chunk(Buffer.from('abc'))
  t.throws(() => image.append(c.id, { codec: 0, data: c.data }, 4), { code: 'INVALID' }, 'raw length must match an uncompressed record')
})

t.test('compression is probed, not tried on every chunk, through a run of incompressible data', async (t) => {
  const p = new CompressionProbe(true)
  const tried: boolean[] = []
  for (let i = 0; i < 64; i++) {
    tried.push(p.tryNext)
    p.record(false)
  }
  t.equal(tried.slice(0, 8).filter(Boolean).length, 8, 'the first chunks are all tried')
  t.equal(tried.filter(Boolean).length, 8 + 3, 'then one in 16')
  p.record(true)
  t.equal(p.tryNext, true, 'a chunk that shrank turns trying back on')
  t.equal(new CompressionProbe(false).tryNext, false, 'never with compression off')
})
