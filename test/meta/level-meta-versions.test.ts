import t from 'tap'
import { asVersion, ROOT_INO } from '../../src/ids.js'
import { attrs, chunkId, collectAll, ino, ManualClock, openMeta } from './helpers.js'

t.test('put at v1, overwrite at v2, delete at v3: reads as of each version and now', async (t) => {
  const clock = new ManualClock()
  const meta = await openMeta(t.testdir(), { now: clock.now })
  t.teardown(() => meta.close())
  const x = meta.allocIno()
  const v0 = meta.head
  clock.ms += 10
  const v1 = await meta.begin()
    .putInode(attrs(x, { size: 1 }))
    .putDentry(ROOT_INO, 'f', x)
    .putFileMap(x, { kind: 'inline', data: Buffer.from('one') })
    .putXattr(x, 'user.k', Buffer.from('a'))
    .commit()
  clock.ms += 10
  const v2 = await meta.begin()
    .putInode(attrs(x, { size: 2 }))
    .putDentry(ROOT_INO, 'f', ino(99))
    .putFileMap(x, { kind: 'extents', extents: [{ offset: 0, length: 5, id: chunkId('c') }] })
    .putXattr(x, 'user.k', Buffer.from('b'))
    .commit()
  clock.ms += 10
  const v3 = await meta.begin().deleteInode(x).deleteDentry(ROOT_INO, 'f').commit()
  t.ok(v0 < v1 && v1 < v2 && v2 < v3, 'versions increase')
  t.equal(meta.head, v3)

  t.equal(await meta.getInode(x, v0), undefined)
  t.equal((await meta.getInode(x, v1))?.size, 1)
  t.equal((await meta.getInode(x, asVersion(v2 - 1n)))?.size, 1, 'just before v2')
  t.equal((await meta.getInode(x, v2))?.size, 2)
  t.equal(await meta.getInode(x, v3), undefined)
  t.equal(await meta.getInode(x), undefined)

  t.equal(await meta.lookup(ROOT_INO, 'f', v0), undefined)
  t.equal(await meta.lookup(ROOT_INO, 'f', v1), x)
  t.equal(await meta.lookup(ROOT_INO, 'f', v2), 99)
  t.equal(await meta.lookup(ROOT_INO, 'f', v3), undefined)
  t.equal(await meta.lookup(ROOT_INO, 'f'), undefined)

  t.same(await meta.getFileMap(x, v1), { kind: 'inline', data: Buffer.from('one') })
  t.same(await meta.getFileMap(x, v2), { kind: 'extents', extents: [{ offset: 0, length: 5, id: chunkId('c') }] })
  t.equal(await meta.getFileMap(x, v3), undefined, 'deleteInode tombstones the filemap')
  t.equal(await meta.getFileMap(x), undefined)

  t.same(await meta.getXattr(x, 'user.k', v1), Buffer.from('a'))
  t.same(await meta.getXattr(x, 'user.k', v2), Buffer.from('b'))
  t.same(await meta.listXattrs(x, v2), ['user.k'])
  t.equal(await meta.getXattr(x, 'user.k'), undefined, 'deleteInode tombstones the xattrs too')
  t.same(await meta.listXattrs(x), [])

  t.same((await collectAll(meta.inodes(v1))).map((a) => a.ino), [ROOT_INO, x])
  t.same((await collectAll(meta.inodes())).map((a) => a.ino), [ROOT_INO])
  t.same(await collectAll(meta.readdir(ROOT_INO, v1)), [{ name: 'f', ino: x }])
  t.same(await collectAll(meta.readdir(ROOT_INO, v2)), [{ name: 'f', ino: 99 }])
  t.same(await collectAll(meta.readdir(ROOT_INO)), [])
})

t.test('the root directory exists from the first open', async (t) => {
  const clock = new ManualClock(1_650_000_000_000)
  const meta = await openMeta(t.testdir(), { now: clock.now })
  t.teardown(() => meta.close())
  const root = await meta.getInode(ROOT_INO)
  t.match(root, { ino: 1, type: 'dir', mode: 0o755, uid: 0, gid: 0, nlink: 2, tier: 'block', mtimeNs: 1_650_000_000_000_000_000n })
  t.equal(meta.allocIno(), 2)
  t.ok(meta.head > 0n)
  t.same(await meta.getSys('meta.format'), Buffer.from([2]))
})

t.test('names that are prefixes of each other do not collide', async (t) => {
  const meta = await openMeta(t.testdir())
  t.teardown(() => meta.close())
  const names = ['a', 'ab', 'a\u00e9', 'a b', 'aa', 'b', 'x'.repeat(255), 'x'.repeat(254), '\u00e9'.repeat(127), '\u{1f600}']
  const dir = meta.allocIno()
  const txn = meta.begin().putInode(attrs(dir, { type: 'dir' }))
  const inos = new Map<string, number>()
  for (const n of names) {
    const i = meta.allocIno()
    inos.set(n, i)
    txn.putDentry(dir, n, i).putXattr(dir, `user.${n}`, Buffer.from(n))
  }
  await txn.commit()
  for (const n of names) {
    t.equal(await meta.lookup(dir, n), inos.get(n), `lookup ${n.slice(0, 12)}`)
    t.same(await meta.getXattr(dir, `user.${n}`), Buffer.from(n))
  }
  t.equal(await meta.lookup(dir, 'a\u00e9b'), undefined)
  t.equal(await meta.lookup(dir, 'x'.repeat(253)), undefined)
  const expected = [...names].sort((p, q) => Buffer.compare(Buffer.from(p), Buffer.from(q)))
  t.same((await collectAll(meta.readdir(dir))).map((e) => e.name), expected)
  t.same(await meta.listXattrs(dir), expected.map((n) => `user.${n}`).sort((p, q) => Buffer.compare(Buffer.from(p), Buffer.from(q))))

  await meta.begin().deleteDentry(dir, 'a').deleteXattr(dir, 'user.a').commit()
  t.equal(await meta.lookup(dir, 'a'), undefined)
  t.equal(await meta.lookup(dir, 'ab'), inos.get('ab'), '"ab" survives the delete of "a"')
  t.equal(await meta.lookup(dir, 'aa'), inos.get('aa'))
  t.same(await meta.getXattr(dir, 'user.ab'), Buffer.from('ab'))
  t.same((await collectAll(meta.readdir(dir))).map((e) => e.name), expected.filter((n) => n !== 'a'))
  // the uncached path agrees
  t.equal(await meta.lookup(dir, 'ab', meta.head), inos.get('ab'))
  t.equal(await meta.lookup(dir, 'a', meta.head), undefined)
})

t.test('deleteInode tombstones xattrs queued earlier in the same transaction', async (t) => {
  const meta = await openMeta(t.testdir())
  t.teardown(() => meta.close())
  const x = meta.allocIno()
  await meta.begin().putInode(attrs(x)).putXattr(x, 'user.old', Buffer.from('1')).commit()
  const v = await meta.begin().putXattr(x, 'user.new', Buffer.from('2')).deleteInode(x).commit()
  t.same(await meta.listXattrs(x), [])
  t.same(await meta.listXattrs(x, asVersion(v - 1n)), ['user.old'])
  // recreating after the delete in one txn wins
  await meta.begin().deleteInode(x).putInode(attrs(x, { size: 9 })).putXattr(x, 'user.again', Buffer.alloc(0)).commit()
  t.equal((await meta.getInode(x))?.size, 9)
  t.same(await meta.listXattrs(x), ['user.again'])
  t.same(await meta.getXattr(x, 'user.again'), Buffer.alloc(0), 'an empty value is not a tombstone')
})

t.test('many versions of one key: as-of reads seek, they do not scan', async (t) => {
  const clock = new ManualClock()
  const meta = await openMeta(t.testdir(), { now: clock.now })
  t.teardown(() => meta.close())
  const x = meta.allocIno()
  const versions: bigint[] = []
  for (let i = 0; i < 300; i++) {
    clock.ms += 1
    const txn = meta.begin()
    if (i % 7 === 6) txn.deleteInode(x).deleteDentry(ROOT_INO, 'v')
    else txn.putInode(attrs(x, { size: i })).putDentry(ROOT_INO, 'v', x)
    versions.push(await txn.commit())
  }
  for (let i = 0; i < versions.length; i += 13) {
    const a = await meta.getInode(x, asVersion(versions[i]!))
    t.equal(a?.size, i % 7 === 6 ? undefined : i, `as of version #${i}`)
    const listed = await collectAll(meta.readdir(ROOT_INO, asVersion(versions[i]!)))
    t.same(listed, i % 7 === 6 ? [] : [{ name: 'v', ino: x }])
  }
  t.equal((await meta.getInode(x))?.size, 299)
})
