import { createHash, randomBytes } from 'node:crypto'
import { execFileSync } from 'node:child_process'
import { appendFile, readFile, stat, truncate, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import t from 'tap'
import { encodeChunk } from '../../src/chunk/codec.js'
import { fileRandomAccess, readChunk, readTrailer, scanPack } from '../../src/chunk/pack-reader.js'
import { HEADER_SIZE, RECORD_HEADER_SIZE, type PackEntry } from '../../src/chunk/pack-format.js'
import { PackWriter } from '../../src/chunk/pack-writer.js'
import { asChunkId, asPackId, type ChunkId, type PackId } from '../../src/ids.js'

const PACK_ID = asPackId('0123456789abcdef0123456789abcdef')

interface Chunk { id: ChunkId; raw: Buffer }

/** A mix of compressible text, random bytes and an empty chunk. */
function makeChunks(n: number): Chunk[] {
  const out: Chunk[] = []
  for (let i = 0; i < n; i++) {
    const raw = i % 3 === 0
      ? randomBytes(1000 + i * 997)
      : i === 4 ? Buffer.alloc(0) : Buffer.from(`row-${i},value=${'x'.repeat(i % 50)};`.repeat(200 + i * 13))
    out.push({ id: asChunkId(createHash('sha256').update(raw).digest('hex')), raw })
  }
  return out
}

async function writePack(path: string, chunks: Chunk[], packId: PackId = PACK_ID): Promise<PackWriter> {
  const w = await PackWriter.create(path, packId)
  for (const c of chunks) await w.append(c.id, encodeChunk(c.raw, { compress: true }), c.raw.length)
  return w
}

async function readAll(path: string, entries: readonly PackEntry[]): Promise<Buffer[]> {
  const src = fileRandomAccess(path)
  try {
    const out: Buffer[] = []
    for (const e of entries) out.push(await readChunk(src, e))
    return out
  } finally {
    await src.close()
  }
}

t.test('write, finish, read back by trailer and by scan', async (t) => {
  const dir = t.testdir()
  const path = join(dir, 'a.pack')
  const chunks = makeChunks(20)
  const w = await writePack(path, chunks)
  t.equal(w.entries.length, 20)
  t.ok(w.entries.some((e) => e.codec === 1) && w.entries.some((e) => e.codec === 0), 'both codecs present')
  const sizeBefore = w.size
  t.equal(sizeBefore, (await stat(path)).size, 'size counts header + records')
  const { size, entries } = await w.finish()
  t.equal(size, (await stat(path)).size, 'finish() returns the file size')
  t.equal(w.size, size)

  const src = fileRandomAccess(path)
  const trailer = await readTrailer(src)
  t.equal(trailer.packId, PACK_ID)
  t.same(trailer.entries, entries, 'trailer lists every entry')
  const got = await readAll(path, trailer.entries)
  t.ok(got.every((b, i) => b.equals(chunks[i]!.raw)), 'every chunk reads back')
  const scan = await scanPack(src)
  t.same(scan.entries, entries, 'scan finds the same entries')
  t.equal(scan.packId, PACK_ID)
  t.equal(scan.validEnd, sizeBefore, 'valid records end where the trailer begins')
  await src.close()

  await t.rejects(w.append(chunks[0]!.id, encodeChunk(chunks[0]!.raw, { compress: false }), chunks[0]!.raw.length),
    { code: 'CLOSED' }, 'no append after finish')
  await w.close()
})

t.test('an empty pack can be finished and read', async (t) => {
  const path = join(t.testdir(), 'e.pack')
  const w = await PackWriter.create(path, PACK_ID)
  const { size, entries } = await w.finish()
  t.equal(entries.length, 0)
  t.equal(size, (await stat(path)).size)
  const src = fileRandomAccess(path)
  t.same(await readTrailer(src), { packId: PACK_ID, entries: [] })
  await src.close()
})

t.test('create is exclusive and validates the pack id', async (t) => {
  const dir = t.testdir()
  const path = join(dir, 'x.pack')
  const w = await PackWriter.create(path, PACK_ID)
  await t.rejects(PackWriter.create(path, PACK_ID), { code: 'EXISTS' })
  await w.close()
  await w.close()
  await t.rejects(PackWriter.create(join(dir, 'y.pack'), asPackId('not-hex')), { code: 'INVALID' })
  await t.rejects(PackWriter.create(join(dir, 'missing', 'z.pack'), PACK_ID), { code: 'NOT_FOUND' })
})

t.test('append validates its arguments', async (t) => {
  const path = join(t.testdir(), 'v.pack')
  const w = await PackWriter.create(path, PACK_ID)
  const raw = Buffer.from('hello')
  const id = asChunkId(createHash('sha256').update(raw).digest('hex'))
  await t.rejects(w.append(asChunkId('abc'), { codec: 0, data: raw }, 5), { code: 'INVALID' })
  await t.rejects(w.append(id, { codec: 0, data: raw }, 6), { code: 'INVALID' }, 'raw record length mismatch')
  await t.rejects(w.append(id, { codec: 5 as 0, data: raw }, 5), { code: 'INVALID' }, 'unknown codec')
  const e = await w.append(id, { codec: 0, data: raw }, 5)
  t.same(e, { id, offset: HEADER_SIZE + RECORD_HEADER_SIZE, length: 5, rawLength: 5, codec: 0 })
  await w.close()
})

t.test('concurrent appends are serialized', async (t) => {
  const path = join(t.testdir(), 'c.pack')
  const chunks = makeChunks(30)
  const w = await PackWriter.create(path, PACK_ID)
  const entries = await Promise.all(chunks.map((c) => w.append(c.id, encodeChunk(c.raw, { compress: true }), c.raw.length)))
  await w.sync()
  t.same(entries, w.entries, 'entries in call order')
  let next = HEADER_SIZE
  for (const e of entries) {
    t.equal(e.offset, next + RECORD_HEADER_SIZE)
    next = e.offset + e.length
  }
  t.equal(w.size, next)
  const got = await readAll(path, entries)
  t.ok(got.every((b, i) => b.equals(chunks[i]!.raw)))
  await w.close()
})

t.test('recover: a finished pack is reported and left untouched', async (t) => {
  const path = join(t.testdir(), 'f.pack')
  const w = await writePack(path, makeChunks(8))
  const { entries } = await w.finish()
  const before = await readFile(path)
  const r = await PackWriter.recover(path)
  t.equal(r.finished, true)
  t.equal(r.writer, undefined)
  t.equal(r.packId, PACK_ID)
  t.same(r.entries, entries)
  t.ok((await readFile(path)).equals(before), 'file unchanged')
})

t.test('recover: a pack that was only closed continues where it stopped', async (t) => {
  const path = join(t.testdir(), 'o.pack')
  const chunks = makeChunks(12)
  const w = await writePack(path, chunks.slice(0, 6))
  await w.sync()
  const size = w.size
  await w.close()
  const r = await PackWriter.recover(path)
  t.equal(r.finished, false)
  t.equal(r.entries.length, 6)
  t.equal(r.writer!.size, size)
  for (const c of chunks.slice(6)) await r.writer!.append(c.id, encodeChunk(c.raw, { compress: true }), c.raw.length)
  const fin = await r.writer!.finish()
  const src = fileRandomAccess(path)
  t.same((await readTrailer(src)).entries, fin.entries)
  await src.close()
  t.ok((await readAll(path, fin.entries)).every((b, i) => b.equals(chunks[i]!.raw)))
})

t.test('recover: a torn tail is truncated; appending and finishing work', async (t) => {
  const dir = t.testdir()
  const chunks = makeChunks(10)
  const extra = makeChunks(14).slice(10)
  const tears: Array<[string, (path: string, w: PackWriter) => Promise<void>, number]> = [
    ['mid-data of the last record', async (p, w) => truncate(p, w.size - 100), 9],
    ['mid-header of the last record', async (p, w) => truncate(p, w.entries[9]!.offset - 20), 9],
    ['right after a record header', async (p, w) => truncate(p, w.entries[9]!.offset), 9],
    ['garbage appended', async (p) => appendFile(p, randomBytes(3000)), 10],
    ['garbage that starts like a record', async (p) => appendFile(p, Buffer.concat([Buffer.from('TFSR'), randomBytes(200)])), 10],
    ['a trailer written halfway', async (p, w) => {
      const len = w.size
      await w.finish()
      await truncate(p, len + 30)
    }, 10],
  ]
  for (const [name, tear, keep] of tears) {
    const path = join(dir, `${name.replace(/\W+/g, '-')}.pack`)
    const w = await writePack(path, chunks)
    await w.sync()
    const goodEnd = w.entries[keep - 1]!.offset + w.entries[keep - 1]!.length
    await tear(path, w)
    await w.close()
    const r = await PackWriter.recover(path)
    t.equal(r.finished, false, `${name}: unfinished`)
    t.equal(r.entries.length, keep, `${name}: records before the tear kept`)
    t.equal((await stat(path)).size, goodEnd, `${name}: tail truncated`)
    for (const c of extra) await r.writer!.append(c.id, encodeChunk(c.raw, { compress: true }), c.raw.length)
    const fin = await r.writer!.finish()
    const src = fileRandomAccess(path)
    const tr = await readTrailer(src)
    await src.close()
    t.same(tr.entries, fin.entries, `${name}: trailer after recovery`)
    const expected = [...chunks.slice(0, keep), ...extra]
    const got = await readAll(path, tr.entries)
    t.ok(got.length === expected.length && got.every((b, i) => b.equals(expected[i]!.raw)), `${name}: all chunks read back`)
  }
})

t.test('recover: a damaged trailer is rebuilt from the records', async (t) => {
  const path = join(t.testdir(), 'd.pack')
  const chunks = makeChunks(9)
  const w = await writePack(path, chunks)
  const recordsEnd = w.size
  const { entries } = await w.finish()
  const bytes = await readFile(path)
  bytes[recordsEnd + 40]! ^= 0x01 // inside the first trailer entry
  await writeFile(path, bytes)
  const r = await PackWriter.recover(path)
  t.equal(r.finished, false)
  t.same(r.entries, entries, 'every entry recovered by the scan')
  t.equal((await stat(path)).size, recordsEnd, 'the damaged trailer is cut away')
  const fin = await r.writer!.finish()
  t.same(fin.entries, entries)
  const src = fileRandomAccess(path)
  t.same((await readTrailer(src)).entries, entries, 'a fresh trailer')
  await src.close()
})

t.test('recover refuses what it cannot trust', async (t) => {
  const dir = t.testdir()
  const empty = join(dir, 'empty.pack')
  await writeFile(empty, Buffer.alloc(0))
  await t.rejects(PackWriter.recover(empty), { code: 'CORRUPT' }, 'no header')
  const junk = join(dir, 'junk.pack')
  await writeFile(junk, randomBytes(4096))
  await t.rejects(PackWriter.recover(junk), { code: 'CORRUPT' }, 'not a pack')
  t.equal((await stat(junk)).size, 4096, 'left untouched')
  await t.rejects(PackWriter.recover(join(dir, 'none.pack')), { code: 'NOT_FOUND' })
})

t.test('a failed append is rolled back and the writer stays usable', async (t) => {
  // A real write failure: the child process runs with a 100 KiB file size limit (EFBIG past it).
  const path = join(t.testdir(), 'limit.pack')
  const root = new URL('../../', import.meta.url).pathname
  const script = `
    import { createHash, randomBytes } from 'node:crypto'
    import { statSync } from 'node:fs'
    import { PackWriter } from '${root}src/chunk/pack-writer.js'
    import { fileRandomAccess, readChunk, readTrailer } from '${root}src/chunk/pack-reader.js'
    const path = process.argv[1]
    const chunk = (n) => { const raw = randomBytes(n); return { id: createHash('sha256').update(raw).digest('hex'), raw } }
    const w = await PackWriter.create(path, '00112233445566778899aabbccddeeff')
    const res = { appended: 0 }
    const kept = []
    for (let i = 0; i < 5; i++) {
      const c = chunk(40 * 1024)
      try { await w.append(c.id, { codec: 0, data: c.raw }, c.raw.length); kept.push(c); res.appended++ }
      catch (e) { res.code = e.code; break }
    }
    res.size = w.size
    res.fileSize = statSync(path).size
    const small = chunk(10 * 1024)
    await w.append(small.id, { codec: 0, data: small.raw }, small.raw.length)
    kept.push(small)
    const fin = await w.finish()
    const src = fileRandomAccess(path)
    const tr = await readTrailer(src)
    res.entries = tr.entries.length
    res.readBack = (await Promise.all(tr.entries.map((e) => readChunk(src, e)))).every((b, i) => b.equals(kept[i].raw))
    res.finalSize = fin.size
    await src.close()
    console.log(JSON.stringify(res))
  `
  // tap re-adds its coverage hooks to child processes through NODE_OPTIONS; they would turn the
  // ignored SIGXFSZ into a kill, so the child drops them.
  const out = execFileSync('bash', ['-c', 'unset NODE_OPTIONS; ulimit -f 100 && exec "$0" "$@"', process.execPath,
    '--import', '@tapjs/typescript/import', '--input-type=module', '-e', script, path], { cwd: root, encoding: 'utf8' })
  const res = JSON.parse(out.trim().split('\n').at(-1)!)
  t.equal(res.appended, 2, 'two 40 KiB records fit under the limit')
  t.equal(res.code, 'IO', 'the third fails with the cause mapped to IO (EFBIG)')
  t.equal(res.fileSize, res.size, 'the partial record was truncated away')
  t.equal(res.size, HEADER_SIZE + 2 * (RECORD_HEADER_SIZE + 40 * 1024))
  t.equal(res.entries, 3, 'a later append and finish() succeed')
  t.equal(res.readBack, true)
  t.equal((await stat(path)).size, res.finalSize)
})
