/**
 * Micro benchmark of the chunk layer's CPU costs, one core:
 *   chunker throughput, SHA-256, CRC-32, zstd compress/decompress (ratio and speed), and the whole
 *   per-byte seal pipeline (chunk + hash + encode + crc) with compression off and on.
 *
 * Run: node --import @tapjs/typescript/import test/bench/chunk-micro.ts [MiB per data set, default 64]
 * Prints a table; every figure is the best of several rounds, in MiB/s of raw input.
 */
import { createCipheriv, createHash } from 'node:crypto'
import { crc32 } from 'node:zlib'
import { Chunker, DEFAULT_CHUNKER } from '../../src/chunk/chunker.js'
import { decodeChunk, encodeChunk, type Encoded } from '../../src/chunk/codec.js'

const MiB = 1024 * 1024
const size = Number(process.argv[2] ?? 64) * MiB
const ROUNDS = 3

/** Deterministic pseudo-random bytes (AES-128-CTR keystream). */
function random(bytes: number, seed: string): Buffer {
  const key = createHash('sha256').update(seed).digest().subarray(0, 16)
  const c = createCipheriv('aes-128-ctr', key, Buffer.alloc(16))
  return Buffer.concat([c.update(Buffer.alloc(bytes)), c.final()])
}

/** A small deterministic PRNG for the text generators. */
function prng(seed: number): () => number {
  let s = seed >>> 0
  return () => {
    s = (s + 0x6d2b79f5) >>> 0
    let z = s
    z = Math.imul(z ^ (z >>> 15), z | 1)
    z ^= z + Math.imul(z ^ (z >>> 7), z | 61)
    return ((z ^ (z >>> 14)) >>> 0) / 2 ** 32
  }
}

function fill(bytes: number, line: (i: number) => string): Buffer {
  const parts: string[] = []
  let n = 0
  for (let i = 0; n < bytes; i++) {
    const l = line(i)
    parts.push(l)
    n += l.length
  }
  return Buffer.from(parts.join('')).subarray(0, bytes)
}

const LEVELS = ['INFO', 'INFO', 'INFO', 'DEBUG', 'WARN', 'ERROR']
const CLASSES = ['regionserver.HRegion', 'regionserver.HStore', 'wal.AbstractFSWAL', 'ipc.RpcServer', 'master.HMaster']

function logLines(bytes: number): Buffer {
  const r = prng(1)
  let t = Date.UTC(2026, 10, 1)
  return fill(bytes, () => {
    t += Math.floor(r() * 50)
    const lvl = LEVELS[Math.floor(r() * LEVELS.length)]!
    const cls = CLASSES[Math.floor(r() * CLASSES.length)]!
    return `${new Date(t).toISOString()} ${lvl} [RpcServer.handler=${Math.floor(r() * 30)},port=16020] ${cls}: `
      + `region=${Math.floor(r() * 0xffffffff).toString(16)} flushed ${Math.floor(r() * 1e6)} bytes in ${Math.floor(r() * 900)} ms, `
      + `seqid=${Math.floor(r() * 1e9)}\n`
  })
}

function csvRows(bytes: number): Buffer {
  const r = prng(2)
  return fill(bytes, (i) => `${i},${Math.floor(r() * 1e6)},cust-${Math.floor(r() * 50_000)},`
    + `${(r() * 1000).toFixed(2)},${['EUR', 'USD', 'GBP'][Math.floor(r() * 3)]},2026-11-${String(1 + Math.floor(r() * 28)).padStart(2, '0')},`
    + `${['shipped', 'pending', 'cancelled', 'returned'][Math.floor(r() * 4)]}\n`)
}

/** HBase HFile-like cells: key length, value length, row key, family, qualifier, timestamp, type, value. */
function hbaseCells(bytes: number): Buffer {
  const r = prng(3)
  const out = Buffer.allocUnsafe(bytes + 4096)
  let p = 0
  let row = 0
  while (p < bytes) {
    if (r() < 0.2) row++
    const rowKey = Buffer.from(`user${String(row * 7919 % 10_000_000).padStart(10, '0')}`)
    const qualifier = Buffer.from(`field${Math.floor(r() * 10)}`)
    const value = r() < 0.5 ? random(100, `v${p}`) : Buffer.from(`value-${Math.floor(r() * 1000)}-${'x'.repeat(Math.floor(r() * 90))}`)
    const keyLen = 2 + rowKey.length + 1 + 2 + qualifier.length + 8 + 1
    p = out.writeUInt32BE(keyLen, p)
    p = out.writeUInt32BE(value.length, p)
    p = out.writeUInt16BE(rowKey.length, p)
    p += rowKey.copy(out, p)
    p = out.writeUInt8(2, p)
    p += Buffer.from('cf').copy(out, p)
    p += qualifier.copy(out, p)
    p = out.writeBigUInt64BE(BigInt(1_790_000_000_000 + Math.floor(r() * 1e6)), p)
    p = out.writeUInt8(4, p)
    p += value.copy(out, p)
  }
  return out.subarray(0, bytes)
}

function best(fn: () => void): number {
  let bestS = Infinity
  for (let i = 0; i < ROUNDS; i++) {
    const t0 = process.hrtime.bigint()
    fn()
    bestS = Math.min(bestS, Number(process.hrtime.bigint() - t0) / 1e9)
  }
  return bestS
}

const mibs = (bytes: number, s: number): string => (bytes / MiB / s).toFixed(0)

function chunks(data: Buffer): Buffer[] {
  const c = new Chunker(DEFAULT_CHUNKER)
  const out: Buffer[] = []
  for (let off = 0; off < data.length; off += MiB) out.push(...c.push(data.subarray(off, off + MiB)))
  const last = c.finish()
  if (last !== undefined) out.push(last)
  return out
}

const sets: Array<[string, Buffer]> = [
  ['random', random(size, 'bench')],
  ['log lines', logLines(size)],
  ['csv rows', csvRows(size)],
  ['hbase cells', hbaseCells(size)],
  ['zeros', Buffer.alloc(size)],
]

// Warm up the JIT on every code path before timing anything.
for (const [, data] of sets) for (const c of chunks(data.subarray(0, 16 * MiB))) decodeChunk(encodeChunk(c, { compress: true }).codec, encodeChunk(c, { compress: true }).data, c.length)

console.log(`chunk layer micro benchmark: ${size / MiB} MiB per data set, best of ${ROUNDS}, one core, node ${process.version}`)
console.log('data set     | chunker | sha256 | crc32 | ratio | zstd-1 c | zstd-1 d | seal raw | seal zstd | avg chunk')
for (const [name, data] of sets) {
  const tChunk = best(() => { chunks(data) })
  const cs = chunks(data)
  const tSha = best(() => { for (const c of cs) createHash('sha256').update(c).digest() })
  const tCrc = best(() => { for (const c of cs) crc32(c) })
  let enc: Encoded[] = []
  const tEnc = best(() => { enc = cs.map((c) => encodeChunk(c, { compress: true })) })
  const stored = enc.reduce((a, e) => a + e.data.length, 0)
  const tDec = best(() => { enc.forEach((e, i) => decodeChunk(e.codec, e.data, cs[i]!.length)) })
  const seal = (compress: boolean): number => best(() => {
    for (const c of chunks(data)) {
      createHash('sha256').update(c).digest()
      crc32(encodeChunk(c, { compress }).data)
    }
  })
  const tSealRaw = seal(false)
  const tSealZstd = seal(true)
  const compressed = enc.filter((e) => e.codec === 1).length
  console.log([
    name.padEnd(12),
    mibs(size, tChunk).padStart(7),
    mibs(size, tSha).padStart(6),
    mibs(size, tCrc).padStart(5),
    (stored / size).toFixed(3).padStart(5),
    mibs(size, tEnc).padStart(8),
    (compressed > 0 ? mibs(size, tDec) : '-').padStart(8),
    mibs(size, tSealRaw).padStart(8),
    mibs(size, tSealZstd).padStart(9),
    `${(size / cs.length / 1024).toFixed(0)} KiB (${compressed}/${cs.length} compressed)`,
  ].join(' | '))
}
