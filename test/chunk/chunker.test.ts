import { createCipheriv, createHash } from 'node:crypto'
import { Readable } from 'node:stream'
import t from 'tap'
import { chunkStream, Chunker, DEFAULT_CHUNKER, type ChunkerOptions } from '../../src/chunk/chunker.js'
import { GEAR } from '../../src/chunk/gear.js'

const KiB = 1024
const MiB = 1024 * KiB
const SMALL: ChunkerOptions = { minSize: 1 * KiB, avgSize: 4 * KiB, maxSize: 16 * KiB }

/** Deterministic pseudo-random bytes: AES-128-CTR keystream of a seed. */
function seeded(length: number, seed: number): Buffer {
  const key = createHash('sha256').update(`seed-${seed}`).digest().subarray(0, 16)
  const cipher = createCipheriv('aes-128-ctr', key, Buffer.alloc(16))
  return Buffer.concat([cipher.update(Buffer.alloc(length)), cipher.final()])
}

function chunkAll(data: Buffer, opts: ChunkerOptions, piece = data.length): Buffer[] {
  const c = new Chunker(opts)
  const out: Buffer[] = []
  for (let off = 0; off < data.length; off += piece) out.push(...c.push(data.subarray(off, off + piece)))
  const last = c.finish()
  if (last !== undefined) out.push(last)
  return out
}

const lengths = (chunks: Buffer[]): number[] => chunks.map((c) => c.length)
const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex')

t.test('chunks reassemble to the input and respect [min, max] except the last', async (t) => {
  const data = seeded(8 * MiB, 1)
  const chunks = chunkAll(data, SMALL, 64 * KiB)
  t.ok(Buffer.concat(chunks).equals(data), 'concatenation equals the input')
  const sizes = lengths(chunks)
  const body = sizes.slice(0, -1)
  t.ok(body.every((n) => n >= SMALL.minSize && n <= SMALL.maxSize), 'every chunk but the last is within bounds')
  t.ok(sizes.at(-1)! >= 1 && sizes.at(-1)! <= SMALL.maxSize, 'the last chunk is not empty and not over max')
})

t.test('cut points are deterministic and pinned to the format (gear table)', async (t) => {
  const data = seeded(256 * KiB, 2)
  const a = lengths(chunkAll(data, SMALL))
  const b = lengths(chunkAll(data, SMALL))
  t.same(a, b, 'two runs give the same cuts')
  // Golden values: a change here moves every cut point and breaks dedup against existing stores.
  t.equal(GEAR[0], GOLDEN_GEAR_0)
  t.equal(GEAR[255], GOLDEN_GEAR_255)
  t.same(a.slice(0, 8), GOLDEN_CUTS)
})

t.test('average chunk size is near avg on random data', async (t) => {
  const data = seeded(64 * MiB, 3)
  const small = lengths(chunkAll(data, SMALL, 1 * MiB)).slice(0, -1)
  const smallAvg = small.reduce((a, b) => a + b, 0) / small.length
  t.ok(Math.abs(smallAvg / SMALL.avgSize - 1) < 0.05, `small sizes: mean ${smallAvg.toFixed(0)} over ${small.length} chunks`)
  const odd = { minSize: 1000, avgSize: 3000, maxSize: 10_000 }
  const oddSizes = lengths(chunkAll(data.subarray(0, 16 * MiB), odd, 1 * MiB)).slice(0, -1)
  const oddAvg = oddSizes.reduce((a, b) => a + b, 0) / oddSizes.length
  t.ok(Math.abs(oddAvg / odd.avgSize - 1) < 0.05, `sizes that are not powers of two: mean ${oddAvg.toFixed(0)}`)
  const def = lengths(chunkAll(data, DEFAULT_CHUNKER, 1 * MiB)).slice(0, -1)
  const defAvg = def.reduce((a, b) => a + b, 0) / def.length
  t.ok(Math.abs(defAvg / DEFAULT_CHUNKER.avgSize - 1) < 0.2, `defaults: mean ${(defAvg / KiB).toFixed(0)} KiB over ${def.length} chunks`)
  t.ok(def.every((n) => n >= DEFAULT_CHUNKER.minSize && n <= DEFAULT_CHUNKER.maxSize))
})

t.test('inserting one byte changes at most 2 chunks', async (t) => {
  const data = seeded(32 * MiB, 4)
  const before = new Set(chunkAll(data, DEFAULT_CHUNKER, 1 * MiB).map(sha))
  for (const at of [16 * MiB, 16 * MiB + 12345, 5 * MiB + 7, 29 * MiB + 999]) {
    const edited = Buffer.concat([data.subarray(0, at), Buffer.from([0x42]), data.subarray(at)])
    const after = chunkAll(edited, DEFAULT_CHUNKER, 1 * MiB).map(sha)
    const changed = after.filter((h) => !before.has(h)).length
    t.ok(changed >= 1 && changed <= 2, `insert at ${at}: ${changed} new chunk(s) of ${after.length}`)
  }
  const small = seeded(4 * MiB, 5)
  const smallBefore = new Set(chunkAll(small, SMALL).map(sha))
  const deleted = Buffer.concat([small.subarray(0, 2 * MiB), small.subarray(2 * MiB + 1)])
  const changed = chunkAll(deleted, SMALL).map(sha).filter((h) => !smallBefore.has(h)).length
  t.ok(changed >= 1 && changed <= 2, `delete one byte (small sizes): ${changed} new chunk(s)`)
})

t.test('push() sizes do not change the chunks', async (t) => {
  const small = seeded(200 * KiB, 6)
  const whole = chunkAll(small, SMALL).map(sha)
  t.same(chunkAll(small, SMALL, 1).map(sha), whole, '1-byte pieces')
  t.same(chunkAll(small, SMALL, 31).map(sha), whole, '31-byte pieces')
  const big = seeded(12 * MiB, 7)
  const ref = chunkAll(big, DEFAULT_CHUNKER).map(sha)
  t.same(chunkAll(big, DEFAULT_CHUNKER, 7 * KiB).map(sha), ref, '7 KiB pieces')
  t.same(chunkAll(big, DEFAULT_CHUNKER, 1 * MiB).map(sha), ref, '1 MiB pieces')
  t.same(chunkAll(big, DEFAULT_CHUNKER, 4 * MiB + 1).map(sha), ref, 'pieces just over max')
  // Irregular pieces, including empty ones.
  const c = new Chunker(DEFAULT_CHUNKER)
  const out: Buffer[] = []
  let off = 0
  let k = 0
  while (off < big.length) {
    const n = [0, 1, 100_000, 3 * MiB, 17, 700_001][k++ % 6]!
    out.push(...c.push(big.subarray(off, off + n)))
    off += n
  }
  const last = c.finish()
  if (last !== undefined) out.push(last)
  t.same(out.map(sha), ref, 'irregular pieces')
})

t.test('chunkStream yields the same chunks', async (t) => {
  const data = seeded(3 * MiB, 8)
  const pieces = Array.from({ length: 48 }, (_, i) => data.subarray(i * 64 * KiB, (i + 1) * 64 * KiB))
  const got: Buffer[] = []
  for await (const c of chunkStream(Readable.from(pieces), SMALL)) got.push(c)
  t.same(got.map(sha), chunkAll(data, SMALL).map(sha))
  const none: Buffer[] = []
  for await (const c of chunkStream(Readable.from([]), SMALL)) none.push(c)
  t.equal(none.length, 0, 'an empty stream has no chunks')
})

t.test('low-entropy input is cut at maxSize', async (t) => {
  const zeros = Buffer.alloc(100 * KiB)
  const sizes = lengths(chunkAll(zeros, SMALL, 10 * KiB))
  t.same(sizes, [16 * KiB, 16 * KiB, 16 * KiB, 16 * KiB, 16 * KiB, 16 * KiB, 4 * KiB])
})

t.test('chunks within one push are views, spanning chunks are fresh copies', async (t) => {
  const data = seeded(1 * MiB, 9)
  const c = new Chunker(SMALL)
  const first = c.push(data)
  t.ok(first.length > 10)
  t.ok(first.every((ch) => ch.buffer === data.buffer), 'no copy for chunks inside one push')
  const c2 = new Chunker(SMALL)
  const out = [...c2.push(data.subarray(0, 600)), ...c2.push(data.subarray(600))]
  t.not(out[0]!.buffer, data.buffer, 'a chunk spanning two pushes is a new buffer')
  t.ok(out[0]!.equals(first[0]!))
})

t.test('finish() ends the stream', async (t) => {
  const c = new Chunker(SMALL)
  t.equal(c.finish(), undefined, 'no bytes, no chunk')
  t.equal(c.finish(), undefined, 'idempotent')
  t.throws(() => c.push(Buffer.alloc(1)), { code: 'CLOSED' })
})

t.test('invalid options throw CONFIG', async (t) => {
  const bad: ChunkerOptions[] = [
    { minSize: 4096, avgSize: 4096, maxSize: 8192 },
    { minSize: 1024, avgSize: 8192, maxSize: 8192 },
    { minSize: 8192, avgSize: 4096, maxSize: 16384 },
    { minSize: 16, avgSize: 4096, maxSize: 16384 },
    { minSize: 1024, avgSize: 4096.5, maxSize: 16384 },
    { minSize: 1024, avgSize: 4096, maxSize: 2 ** 31 },
  ]
  for (const o of bad) t.throws(() => new Chunker(o), { code: 'CONFIG' }, JSON.stringify(o))
  t.doesNotThrow(() => new Chunker({ minSize: 1000, avgSize: 3000, maxSize: 10_000 }), 'powers of two are not required')
})

const GOLDEN_GEAR_0 = 1511050497
const GOLDEN_GEAR_255 = 508190919
const GOLDEN_CUTS = [5652, 4210, 4027, 3660, 3707, 3916, 3917, 4724]
