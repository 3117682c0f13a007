import { createHash, randomBytes } from 'node:crypto'
import { readFile, stat, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { crc32 } from 'node:zlib'
import t from 'tap'
import { encodeChunk } from '../../src/chunk/codec.js'
import { FOOTER_SIZE, HEADER_SIZE, RECORD_HEADER_SIZE } from '../../src/chunk/pack-format.js'
import { fileRandomAccess, readChunk, readTrailer, scanPack, type RandomAccess } from '../../src/chunk/pack-reader.js'
import { PackWriter } from '../../src/chunk/pack-writer.js'
import { asChunkId, asPackId, type ChunkId } from '../../src/ids.js'

const PACK_ID = asPackId('fedcba9876543210fedcba9876543210')
const MiB = 1024 * 1024

interface Chunk { id: ChunkId; raw: Buffer }

function chunk(raw: Buffer): Chunk {
  return { id: asChunkId(createHash('sha256').update(raw).digest('hex')), raw }
}

/** Alternates compressible and random chunks. */
function makeChunks(n: number, size = 20_000): Chunk[] {
  return Array.from({ length: n }, (_, i) => chunk(i % 2 === 0
    ? Buffer.from(`key=${i} family=cf qualifier=q${i % 7} value=${'v'.repeat(40)}\n`.repeat(Math.ceil(size / 70))).subarray(0, size)
    : randomBytes(size)))
}

async function finishedPack(path: string, chunks: Chunk[]): Promise<{ recordsEnd: number; entries: Awaited<ReturnType<PackWriter['finish']>>['entries'] }> {
  const w = await PackWriter.create(path, PACK_ID)
  for (const c of chunks) await w.append(c.id, encodeChunk(c.raw, { compress: true }), c.raw.length)
  const recordsEnd = w.size
  const { entries } = await w.finish()
  return { recordsEnd, entries }
}

/** Wraps a source to record how it is read. */
function counting(src: RandomAccess): RandomAccess & { reads: number; maxRead: number } {
  const c = {
    reads: 0,
    maxRead: 0,
    size: () => src.size(),
    read: (offset: number, length: number) => {
      c.reads++
      c.maxRead = Math.max(c.maxRead, length)
      return src.read(offset, length)
    },
  }
  return c
}

t.test('a flipped byte in one chunk fails that chunk only', async (t) => {
  const dir = t.testdir()
  const chunks = makeChunks(6)
  for (const victim of [2, 3]) { // one compressed, one raw
    const path = join(dir, `flip-${victim}.pack`)
    const { entries } = await finishedPack(path, chunks)
    t.equal(entries[2]!.codec, 1)
    t.equal(entries[3]!.codec, 0)
    const bytes = await readFile(path)
    bytes[entries[victim]!.offset + (entries[victim]!.length >> 1)]! ^= 0x10
    await writeFile(path, bytes)
    const src = fileRandomAccess(path)
    for (const [i, e] of entries.entries()) {
      if (i === victim) {
        await t.rejects(readChunk(src, e), { code: 'CORRUPT', detail: { chunkId: e.id, offset: e.offset } }, `chunk ${i} is corrupt`)
      } else {
        t.ok((await readChunk(src, e)).equals(chunks[i]!.raw), `chunk ${i} still reads`)
      }
    }
    const scan = await scanPack(src)
    t.equal(scan.entries.length, victim, 'scan stops at the damaged record')
    t.equal(scan.validEnd, entries[victim]!.offset - RECORD_HEADER_SIZE)
    t.same((await readTrailer(src)).entries, entries, 'the trailer is unaffected')
    await src.close()
  }
})

t.test('readChunk checks the entry against the record', async (t) => {
  const path = join(t.testdir(), 'e.pack')
  const chunks = makeChunks(3)
  const { entries } = await finishedPack(path, chunks)
  const src = fileRandomAccess(path)
  const e = entries[1]!
  const corrupt = { code: 'CORRUPT' }
  await t.rejects(readChunk(src, { ...e, id: chunks[0]!.id }), corrupt, 'wrong id')
  await t.rejects(readChunk(src, { ...e, offset: e.offset + 1 }), corrupt, 'wrong offset')
  await t.rejects(readChunk(src, { ...e, length: e.length - 1 }), corrupt, 'wrong length')
  await t.rejects(readChunk(src, { ...e, rawLength: e.rawLength + 1 }), corrupt, 'wrong raw length')
  await t.rejects(readChunk(src, { ...e, offset: 10 }), corrupt, 'offset inside the header')
  await t.rejects(readChunk(src, { ...e, offset: (await src.size()) - 10 }), corrupt, 'past the end')
  // A record header damaged in its chunk id.
  const bytes = await readFile(path)
  bytes[e.offset - RECORD_HEADER_SIZE + 10]! ^= 0xff
  await writeFile(path, bytes)
  await src.close()
  await t.rejects(readChunk(src, e), corrupt, 'damaged record header')
  t.ok((await readChunk(src, entries[0]!)).equals(chunks[0]!.raw), 'the reader reopens after close()')
  await src.close()
})

t.test('a damaged trailer is detected and the scan still recovers every entry', async (t) => {
  const dir = t.testdir()
  const chunks = makeChunks(7)
  const damages: Array<[string, (b: Buffer, recordsEnd: number) => Buffer]> = [
    ['entry byte', (b, end) => { b[end + 5]! ^= 1; return b }],
    ['checksum byte', (b) => { b[b.length - FOOTER_SIZE + 40]! ^= 1; return b }],
    ['entry count', (b) => { b[b.length - FOOTER_SIZE + 8]! ^= 1; return b }],
    ['footer magic', (b) => { b[b.length - 1]! ^= 1; return b }],
    ['truncated footer', (b) => b.subarray(0, b.length - 7)],
    ['garbage after the footer', (b) => Buffer.concat([b, randomBytes(33)])],
  ]
  for (const [name, damage] of damages) {
    const path = join(dir, `${name.replace(/\W+/g, '-')}.pack`)
    const { recordsEnd, entries } = await finishedPack(path, chunks)
    await writeFile(path, damage(await readFile(path), recordsEnd))
    const src = fileRandomAccess(path)
    await t.rejects(readTrailer(src), { code: 'CORRUPT' }, `${name}: readTrailer refuses`)
    const scan = await scanPack(src)
    t.same(scan.entries, entries, `${name}: scan recovers all entries`)
    t.equal(scan.validEnd, recordsEnd)
    await src.close()
  }
})

t.test('an unfinished pack has no trailer', async (t) => {
  const path = join(t.testdir(), 'u.pack')
  const w = await PackWriter.create(path, PACK_ID)
  const chunks = makeChunks(3)
  for (const c of chunks) await w.append(c.id, encodeChunk(c.raw, { compress: true }), c.raw.length)
  await w.sync()
  const src = fileRandomAccess(path)
  await t.rejects(readTrailer(src), { code: 'CORRUPT' })
  const scan = await scanPack(src)
  t.same(scan.entries, w.entries)
  t.equal(scan.validEnd, w.size)
  await w.close()
  await src.close()
})

t.test('scanning reads in bounded pieces', async (t) => {
  const path = join(t.testdir(), 'big.pack')
  const chunks = Array.from({ length: 5 }, () => chunk(randomBytes(3 * MiB + 123)))
  const { entries } = await finishedPack(path, chunks)
  const file = fileRandomAccess(path)
  const src = counting(file)
  const scan = await scanPack(src)
  t.same(scan.entries, entries)
  t.ok(src.maxRead <= MiB, `largest read ${src.maxRead} bytes`)
  t.ok(src.reads <= 25, `${src.reads} reads for ${(await src.size()) / MiB | 0} MiB`)
  await file.close()
})

t.test('a trailer larger than the tail read takes a second read', async (t) => {
  const dir = t.testdir()
  const path = join(dir, 'many.pack')
  const chunks = Array.from({ length: 3000 }, (_, i) => chunk(Buffer.from(`tiny chunk ${i}`)))
  const { entries } = await finishedPack(path, chunks)
  const file = fileRandomAccess(path)
  const src = counting(file)
  const tr = await readTrailer(src)
  t.same(tr.entries, entries)
  t.equal(src.reads, 2)
  const small = join(dir, 'few.pack')
  const few = await finishedPack(small, chunks.slice(0, 50))
  const file2 = fileRandomAccess(small)
  const src2 = counting(file2)
  t.same((await readTrailer(src2)).entries, few.entries)
  t.equal(src2.reads, 1, 'a small trailer is found in one read')
  await file.close()
  await file2.close()
})

t.test('packs of a newer format version are refused, not truncated', async (t) => {
  const dir = t.testdir()
  const path = join(dir, 'v2.pack')
  const chunks = makeChunks(2)
  const w = await PackWriter.create(path, PACK_ID)
  for (const c of chunks) await w.append(c.id, encodeChunk(c.raw, { compress: true }), c.raw.length)
  await w.close()
  const bytes = await readFile(path)
  bytes.writeUInt16LE(2, 8)
  bytes.writeUInt32LE(crc32(bytes.subarray(0, 28)), 28)
  await writeFile(path, bytes)
  const src = fileRandomAccess(path)
  await t.rejects(scanPack(src), { code: 'STORE' })
  await src.close()
  await t.rejects(PackWriter.recover(path), { code: 'STORE' })
  t.equal((await stat(path)).size, bytes.length, 'left as it was')

  const fin = join(dir, 'v2-footer.pack')
  await finishedPack(fin, chunks)
  const fb = await readFile(fin)
  fb.writeUInt16LE(2, fb.length - FOOTER_SIZE + 12)
  await writeFile(fin, fb)
  const src2 = fileRandomAccess(fin)
  await t.rejects(readTrailer(src2), { code: 'STORE' })
  await src2.close()
  await t.rejects(PackWriter.recover(fin), { code: 'STORE' })
  t.equal((await stat(fin)).size, fb.length, 'left as it was')
})

t.test('fileRandomAccess reads short at the end and reports missing files', async (t) => {
  const dir = t.testdir()
  const path = join(dir, 'r.bin')
  await writeFile(path, Buffer.from('0123456789'))
  const src = fileRandomAccess(path)
  t.equal(await src.size(), 10)
  t.equal((await src.read(4, 3)).toString(), '456')
  t.equal((await src.read(8, 10)).toString(), '89')
  t.equal((await src.read(20, 5)).length, 0)
  const reads = [src.read(0, 4), src.read(6, 4), src.size()]
  const closing = src.close()
  t.same(await Promise.all(reads), [Buffer.from('0123'), Buffer.from('6789'), 10], 'close() waits for reads in flight')
  await closing
  await src.close()
  const missing = fileRandomAccess(join(dir, 'nope'))
  await t.rejects(missing.read(0, 1), { code: 'NOT_FOUND' })
  await t.rejects(missing.size(), { code: 'NOT_FOUND' })
  await missing.close()
  const header = fileRandomAccess(path)
  await t.rejects(scanPack(header), { code: 'CORRUPT' }, `${HEADER_SIZE}-byte header does not fit`)
  await header.close()
})
