import t from 'tap'
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { asChunkId, asIno, asPackId, asTierId, asVersion } from '../../src/ids.js'
import * as codec from '../../src/meta/record-codec.js'
import { attrs, chunkId, chunkRec, packId, packRec } from './helpers.js'

// Checked-in bytes of every record format. They must keep decoding to these values for as long
// as the format byte is readable: a new layout gets a new fixture, the old ones stay.
const fixture = (name: string): Buffer => readFileSync(fileURLToPath(new URL(`fixtures/${name}`, import.meta.url)))

const CHUNK_A = asChunkId('ca978112ca1bbdcafac231b39a23dc4da786eff8147c4e72b9807785afee48bb')
const CHUNK_B = asChunkId('3e23e8160039594a33894f6564e1b1348bbd7a0088d42c4acb73eeaed59c009d')
const PACK = asPackId('f64551fcd6f07823cb87971cfb914464')

t.test('fixtures decode to the recorded values', async (t) => {
  t.ok(codec.isTombstone(fixture('tombstone.bin')))
  t.same(codec.decodeInode(asIno(42), fixture('inode-file-v1.bin')), {
    ino: 42, type: 'file', mode: 0o644, uid: 1000, gid: 1000, size: 5_000_000_000, blocks: 9_765_632, nlink: 2,
    rdev: 0, atimeNs: -1_000_000_001n, mtimeNs: 1_700_000_000_000_000_001n, ctimeNs: 1_700_000_000_000_000_002n,
    btimeNs: 1_700_000_000_000_000_003n, tier: 'block',
  })
  t.same(codec.decodeInode(asIno(43), fixture('inode-symlink-v1.bin')), {
    ino: 43, type: 'symlink', mode: 0o777, uid: 1000, gid: 1000, size: 11, blocks: 0, nlink: 1, rdev: 0,
    atimeNs: 1_700_000_000_000_000_000n, mtimeNs: 1_700_000_000_000_000_001n, ctimeNs: 1_700_000_000_000_000_002n,
    btimeNs: 1_700_000_000_000_000_003n, tier: 'object', target: '../tärget/x',
  })
  t.equal(codec.decodeDentry(fixture('dentry-v1.bin')), 0xfffffffe)
  t.same(codec.decodeFileMap(fixture('filemap-inline-v1.bin')), { kind: 'inline', data: Buffer.from('hello\0world') })
  const extents = [
    { offset: 0, length: 1048576, id: CHUNK_A },
    { offset: 1048576, length: 4194304, id: CHUNK_B },
    { offset: 5242880, length: 1, id: CHUNK_A },
  ]
  t.same(codec.decodeFileMap(fixture('filemap-extents-v1.bin')), { kind: 'extents', extents })
  t.same(codec.fileMapChunkIds(fixture('filemap-extents-v1.bin')), [CHUNK_A, CHUNK_B, CHUNK_A])
  t.same(codec.decodeXattr(fixture('xattr-v1.bin')), Buffer.from([0, 1, 2, 255]))
  t.same(codec.decodeChunk(CHUNK_A, fixture('chunk-v1.bin')), {
    id: CHUNK_A, pack: PACK, offset: 6_000_000_000, length: 524288, rawLength: 1048576, codec: 2, refs: 7,
  })
  t.same(codec.decodePack(PACK, fixture('pack-v1.bin')), {
    id: PACK, tier: 'block', key: 'packs/ab/€', state: 'open', size: 33554432, liveBytes: 1234567,
    chunkCount: 31, createdMs: 1_700_000_000_000,
  })
  t.same(codec.decodePin('nightly', 5, fixture('pin-v1.bin')), { workflow: 'nightly', timeMs: 5, version: 0x0123456789abcdefn })
})

t.test('the current encoders still write the fixture bytes', async (t) => {
  t.same(codec.encodeInode(attrs(42, { size: 5_000_000_000, blocks: 9_765_632, nlink: 2, atimeNs: -1_000_000_001n })),
    fixture('inode-file-v1.bin'))
  t.same(codec.encodeFileMap({ kind: 'extents', extents: [
    { offset: 0, length: 1048576, id: chunkId('a') },
    { offset: 1048576, length: 4194304, id: chunkId('b') },
    { offset: 5242880, length: 1, id: chunkId('a') },
  ] }), fixture('filemap-extents-v1.bin'))
  t.same(codec.encodeChunk(chunkRec('a', packId('p1'), { offset: 6_000_000_000, length: 524288, rawLength: 1048576, codec: 2, refs: 7 })),
    fixture('chunk-v1.bin'))
  t.same(codec.encodePinValue(asVersion(0x0123456789abcdefn)), fixture('pin-v1.bin'))
})

t.test('round trips and edge values', async (t) => {
  for (const a of [
    attrs(1, { type: 'dir', mode: 0o7777, size: Number.MAX_SAFE_INTEGER, blocks: 2 ** 40, uid: 0xffffffff }),
    attrs(2, { type: 'chardev', rdev: 0x0801, atimeNs: -(2n ** 63n), mtimeNs: 2n ** 63n - 1n }),
    attrs(3, { type: 'symlink', target: '', tier: asTierId('cold-ärchive') }),
    attrs(4, { type: 'fifo' }), attrs(5, { type: 'socket' }), attrs(6, { type: 'blockdev' }),
  ]) {
    t.same(codec.decodeInode(a.ino, codec.encodeInode(a)), a, a.type)
  }
  t.same(codec.decodeFileMap(codec.encodeFileMap({ kind: 'inline', data: Buffer.alloc(0) })), { kind: 'inline', data: Buffer.alloc(0) })
  t.same(codec.decodeFileMap(codec.encodeFileMap({ kind: 'extents', extents: [] })), { kind: 'extents', extents: [] })
  for (const state of ['open', 'sealed', 'deleting'] as const) {
    const p = packRec(packId('x'), { state, liveBytes: 2 ** 52 })
    t.same(codec.decodePack(p.id, codec.encodePack(p)), p)
  }
  t.notOk(codec.isTombstone(codec.encodeXattr(Buffer.alloc(0))), 'an empty xattr is not a tombstone')
  t.notOk(codec.isTombstone(codec.encodeFileMap({ kind: 'inline', data: Buffer.alloc(0) })))
  t.same(codec.fileMapChunkIds(codec.TOMBSTONE), [])
})

t.test('bad input is INVALID, unknown formats are CORRUPT', async (t) => {
  t.throws(() => codec.encodeInode(attrs(1, { mode: 0o10000 })), { code: 'INVALID' })
  t.throws(() => codec.encodeInode(attrs(1, { size: -1 })), { code: 'INVALID' })
  t.throws(() => codec.encodeInode(attrs(1, { size: 1.5 })), { code: 'INVALID' })
  t.throws(() => codec.encodeInode(attrs(1, { uid: 2 ** 32 })), { code: 'INVALID' })
  t.throws(() => codec.encodeChunk(chunkRec('a', asPackId('zz'))), { code: 'INVALID' })
  t.throws(() => codec.encodeFileMap({ kind: 'extents', extents: [{ offset: 0, length: 1, id: asChunkId('ab') }] }), { code: 'INVALID' })
  t.throws(() => codec.decodeInode(asIno(1), Buffer.from([9, 1, 2])), { code: 'CORRUPT' })
  t.throws(() => codec.decodeFileMap(Buffer.from([7])), { code: 'CORRUPT' })
  t.throws(() => codec.decodeChunk(CHUNK_A, Buffer.from([2])), { code: 'CORRUPT' })
  t.throws(() => codec.decodePack(PACK, Buffer.from([0])), { code: 'CORRUPT' })
  t.throws(() => codec.decodePin('w', 1, Buffer.from([3])), { code: 'CORRUPT' })
  t.throws(() => codec.decodeDentry(Buffer.from([0])), { code: 'CORRUPT' })
  t.throws(() => codec.decodeXattr(Buffer.from([0])), { code: 'CORRUPT' })
})

t.test('codec speed', async (t) => {
  const a = attrs(7, { size: 123456 })
  const n = 200_000
  let start = performance.now()
  let buf = Buffer.alloc(0)
  for (let i = 0; i < n; i++) buf = codec.encodeInode(a)
  const enc = n / ((performance.now() - start) / 1000)
  start = performance.now()
  for (let i = 0; i < n; i++) codec.decodeInode(a.ino, buf)
  const dec = n / ((performance.now() - start) / 1000)
  t.comment(`inode encode ${Math.round(enc / 1000)}k/s, decode ${Math.round(dec / 1000)}k/s`)
  t.ok(enc > 50_000 && dec > 50_000)
})
