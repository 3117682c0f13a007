import t from 'tap'
import { asIno } from '../../src/ids.js'
import * as keys from '../../src/meta/keys.js'

const names = ['a', 'ab', 'a b', 'a\u00e9', 'a\u00e9b', 'b', 'Z', '', 'x'.repeat(255), 'é'.repeat(127), '\u{1f600}', 'a\u0001']

t.test('dentry keys sort by UTF-8 name bytes and never collide', async (t) => {
  const parent = asIno(7)
  const v = 123n
  const built = names.map((n) => ({ n, key: keys.withVersion(keys.dentryKey(parent, n), v) }))
  const sorted = [...built].sort((x, y) => Buffer.compare(x.key, y.key)).map((x) => x.n)
  const byName = [...names].sort((x, y) => Buffer.compare(Buffer.from(x), Buffer.from(y)))
  t.same(sorted, byName)
  t.equal(new Set(built.map((x) => x.key.toString('hex'))).size, names.length)
  for (const { n, key } of built) {
    t.equal(keys.dentryName(keys.logicalKey(key)), n)
    t.equal(keys.keyVersion(key), v)
    const range = keys.dentryRange(parent)
    t.ok(Buffer.compare(key, range.gte) >= 0 && Buffer.compare(key, range.lt) < 0, 'inside the directory range')
  }
  // A versioned key of "a" must not fall into the key range of "ab" or the reverse.
  const a = keys.dentryKey(parent, 'a')
  const ab = keys.dentryKey(parent, 'ab')
  const aLast = keys.lastVersionKey(a)
  t.ok(Buffer.compare(aLast, ab) < 0, 'every version of "a" sorts before "ab"')
})

t.test('newer versions sort first', async (t) => {
  const k = keys.inodeKey(asIno(1))
  const ks = [1n, 2n, 1n << 40n, 0n, 2n ** 64n - 1n].map((v) => keys.withVersion(k, v))
  const order = [...ks].sort(Buffer.compare).map((x) => keys.keyVersion(x))
  t.same(order, [2n ** 64n - 1n, 1n << 40n, 2n, 1n, 0n])
  t.same(keys.versionSuffix(0n), Buffer.alloc(8, 0xff))
})

t.test('after-ranges start strictly after the name', async (t) => {
  const r = keys.dentryRange(asIno(3), 'a')
  t.ok(Buffer.compare(keys.lastVersionKey(keys.dentryKey(asIno(3), 'a')), r.gte) < 0)
  t.ok(Buffer.compare(keys.dentryKey(asIno(3), 'a\u0001'), r.gte) >= 0)
  t.ok(Buffer.compare(keys.dentryKey(asIno(3), 'ab'), r.gte) >= 0)
  t.ok(Buffer.compare(keys.dentryKey(asIno(4), ''), r.lt) >= 0, 'the next directory is outside')
})

t.test('prefixEnd', async (t) => {
  t.same(keys.prefixEnd(Buffer.from([1, 2])), Buffer.from([1, 3]))
  t.same(keys.prefixEnd(Buffer.from([1, 0xff])), Buffer.from([2]))
  t.equal(keys.prefixEnd(Buffer.from([0xff, 0xff])), undefined)
})

t.test('pins, chunks, packs and validation', async (t) => {
  const k = keys.pinKey('night\u00e9', 1_700_000_000_123)
  t.same(keys.parsePinKey(k), { workflow: 'night\u00e9', timeMs: 1_700_000_000_123 })
  const r = keys.pinRange('night\u00e9')
  t.ok(Buffer.compare(k, r.gte!) >= 0 && Buffer.compare(k, r.lt!) < 0)
  t.ok(Buffer.compare(keys.pinKey('night\u00e9x', 1), r.lt!) >= 0, 'a longer workflow name is not in the range')
  t.same(keys.pinRange(), {})
  const id = 'ab'.repeat(32)
  t.equal(keys.chunkIdOf(keys.chunkKey(id as never)), id)
  t.equal(keys.packIdOf(keys.packKey('cd'.repeat(16) as never)), 'cd'.repeat(16))
  t.throws(() => keys.chunkKey('AB'.repeat(32) as never), { code: 'INVALID' })
  t.throws(() => keys.packKey('x' as never), { code: 'INVALID' })
  t.throws(() => keys.dentryKey(asIno(1), 'a\0b'), { code: 'INVALID' })
  t.throws(() => keys.xattrKey(asIno(1), 'user.\0'), { code: 'INVALID' })
  t.throws(() => keys.inodeKey(asIno(0)), { code: 'INVALID' })
  t.throws(() => keys.inodeKey(asIno(2 ** 32)), { code: 'INVALID' })
  t.throws(() => keys.pinKey('w', -1), { code: 'INVALID' })
  t.equal(keys.inoOfKey(keys.inodeKey(asIno(0xffffffff))), 0xffffffff)
  t.equal(keys.xattrName(keys.xattrKey(asIno(9), 'user.x')), 'user.x')
  t.ok(Buffer.compare(keys.xattrKey(asIno(9), 'user.x'), keys.xattrRange(asIno(9)).gte) >= 0)
})
