import { randomBytes } from 'node:crypto'
import t from 'tap'
import { decodeChunk, encodeChunk, type CodecId } from '../../src/chunk/codec.js'

function logLines(bytes: number): Buffer {
  const lines: string[] = []
  let n = 0
  for (let i = 0; n < bytes; i++) {
    const line = `2026-11-01T12:${String(i % 60).padStart(2, '0')}:${String((i * 7) % 60).padStart(2, '0')}Z INFO `
      + `[RpcServer.handler=${i % 30}] regionserver.HRegion: flushed row=user${(i * 2654435761) >>> 0} size=${(i * 7919) % 100_000}\n`
    lines.push(line)
    n += line.length
  }
  return Buffer.from(lines.join('')).subarray(0, bytes)
}

t.test('compressible data is compressed and round-trips', async (t) => {
  const raw = logLines(1024 * 1024)
  const enc = encodeChunk(raw, { compress: true })
  t.equal(enc.codec, 1)
  t.ok(enc.data.length <= raw.length - raw.length / 16, `stored ${enc.data.length} of ${raw.length}`)
  t.ok(decodeChunk(enc.codec, enc.data, raw.length).equals(raw))
})

t.test('incompressible data is stored raw (codec 0, no copy)', async (t) => {
  const raw = randomBytes(256 * 1024)
  const enc = encodeChunk(raw, { compress: true })
  t.equal(enc.codec, 0)
  t.equal(enc.data, raw, 'the same buffer')
  t.equal(decodeChunk(0, enc.data, raw.length), raw)
})

t.test('data that shrinks by less than 1/16 is stored raw', async (t) => {
  // Random bytes with every 20th byte zeroed shrink by ~5% at best: not worth it.
  const raw = randomBytes(512 * 1024)
  for (let i = 0; i < raw.length; i += 20) raw[i] = 0
  t.equal(encodeChunk(raw, { compress: true }).codec, 0)
  // Half random, half zeros does pay.
  const half = Buffer.concat([randomBytes(256 * 1024), Buffer.alloc(256 * 1024)])
  const enc = encodeChunk(half, { compress: true })
  t.equal(enc.codec, 1)
  t.ok(decodeChunk(enc.codec, enc.data, half.length).equals(half))
})

t.test('compress: false and tiny chunks store raw', async (t) => {
  const raw = logLines(64 * 1024)
  t.same(encodeChunk(raw, { compress: false }), { codec: 0, data: raw })
  const tiny = Buffer.from('aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa')
  t.equal(encodeChunk(tiny, { compress: true }).codec, 0)
  const empty = Buffer.alloc(0)
  const enc = encodeChunk(empty, { compress: true })
  t.equal(enc.codec, 0)
  t.equal(decodeChunk(0, enc.data, 0).length, 0)
})

t.test('corrupt input throws CORRUPT', async (t) => {
  const raw = logLines(200 * 1024)
  const enc = encodeChunk(raw, { compress: true })
  t.equal(enc.codec, 1)
  const corrupt = { code: 'CORRUPT' }
  t.throws(() => decodeChunk(1, enc.data.subarray(0, enc.data.length - 10), raw.length), corrupt, 'truncated frame')
  const badMagic = Buffer.from(enc.data)
  badMagic[0]! ^= 0xff
  t.throws(() => decodeChunk(1, badMagic, raw.length), corrupt, 'damaged frame magic')
  t.throws(() => decodeChunk(1, randomBytes(5000), raw.length), corrupt, 'garbage')
  t.throws(() => decodeChunk(1, enc.data, raw.length - 1), corrupt, 'raw length too small')
  t.throws(() => decodeChunk(1, enc.data, raw.length + 1), corrupt, 'raw length too large')
  t.throws(() => decodeChunk(1, Buffer.concat([enc.data, Buffer.from([1, 2, 3])]), raw.length), corrupt, 'trailing bytes')
  t.throws(() => decodeChunk(0, raw, raw.length + 1), corrupt, 'codec 0 length mismatch')
  t.throws(() => decodeChunk(7 as CodecId, raw, raw.length), corrupt, 'unknown codec')
  t.throws(() => decodeChunk(1, enc.data, -1), corrupt, 'negative raw length')
  t.throws(() => decodeChunk(1, enc.data, 2 ** 40), corrupt, 'absurd raw length is refused before allocating')
})

t.test('the codec contexts survive errors', async (t) => {
  const raw = logLines(100 * 1024)
  const enc = encodeChunk(raw, { compress: true })
  t.throws(() => decodeChunk(1, enc.data.subarray(0, 100), raw.length))
  t.ok(decodeChunk(1, enc.data, raw.length).equals(raw), 'decoding works after a failure')
  encodeChunk(randomBytes(64 * 1024), { compress: true })
  const again = encodeChunk(raw, { compress: true })
  t.ok(again.data.equals(enc.data), 'encoding is deterministic after an incompressible chunk')
})
