import t from 'tap'
import { diffVersions, type DiffEntry, type DiffReader } from '../../src/backup/diff.js'
import { asIno, asVersion, type Version } from '../../src/ids.js'
import { removeFixture, restorePoints, ROOT_CALLER, vfsStore, type VfsFixture } from '../support/vfs-store.js'
import { pseudoRandom } from '../support/e2e-io.js'

async function put(fx: VfsFixture, path: string, data: Buffer | string): Promise<void> {
  const fh = await fx.vfs.create(path, 0o644, 0o1101, ROOT_CALLER)
  await fx.vfs.ftruncate(fh, 0)
  await fx.vfs.write(fh, Buffer.from(data), 0)
  await fx.vfs.release(fh)
}

async function at(fx: VfsFixture): Promise<Version> {
  await fx.vfs.sealAll()
  return fx.store.meta.head
}

async function all(it: AsyncIterable<DiffEntry>): Promise<string[]> {
  const out: string[] = []
  for await (const e of it) {
    const sizes = e.change === 'added' ? `${e.sizeAfter}` : e.change === 'deleted' ? `${e.sizeBefore}` : `${e.sizeBefore}->${e.sizeAfter}`
    out.push(`${e.change} ${e.typeBefore === undefined ? '' : e.typeBefore + '->'}${e.type} ${e.path} ${sizes}`)
  }
  return out
}

async function entries(it: AsyncIterable<DiffEntry>): Promise<DiffEntry[]> {
  const out: DiffEntry[] = []
  for await (const e of it) out.push(e)
  return out
}

/** Counts the reads a diff makes (the walk's cost). */
function counting(fx: VfsFixture): { meta: DiffReader; calls: Record<string, number> } {
  const calls: Record<string, number> = { getInode: 0, getInodeVersioned: 0, lookup: 0, readdir: 0, getFileMap: 0 }
  const m = fx.store.meta
  return {
    calls,
    meta: {
      getInode: (...a) => { calls.getInode!++; return m.getInode(...a) },
      getInodeVersioned: (...a) => { calls.getInodeVersioned!++; return m.getInodeVersioned(...a) },
      lookup: (...a) => { calls.lookup!++; return m.lookup(...a) },
      readdir: (...a) => { calls.readdir!++; return m.readdir(...a) },
      getFileMap: (...a) => { calls.getFileMap!++; return m.getFileMap(...a) },
    },
  }
}

t.test('diff lists added, modified and deleted entries in walk order', async (t) => {
  const fx = await vfsStore()
  t.teardown(async () => { await fx.close(); await removeFixture(fx) })
  const v = fx.vfs
  for (const d of ['/a', '/a/sub', '/b', '/c', '/keep', '/keep/deep']) await v.mkdir(d, 0o755, ROOT_CALLER)
  await put(fx, '/a/f1', 'one')
  await put(fx, '/a/f2', 'two')
  await put(fx, '/a/sub/g', 'gee')
  await put(fx, '/b/h', 'aitch')
  await put(fx, '/big', pseudoRandom('big', 900 * 1024))
  await put(fx, '/same-size', 'abc')
  await put(fx, '/keep/deep/x', 'x')
  await v.symlink('a/f1', '/link', ROOT_CALLER)
  await v.symlink('b/h', '/link2', ROOT_CALLER)
  const v1 = await at(fx)

  await put(fx, '/a/f1', 'one, longer')
  await v.utimens('/a/f2', 'omit', 1_000_000_000n)
  await v.unlink('/a/sub/g')
  await v.rmdir('/a/sub')
  await v.chmod('/b/h', 0o600)
  await v.setxattr('/b/h', 'user.k', Buffer.from('v'), 0)
  await v.rename('/b/h', '/b/h2', 0)
  await v.mkdir('/c/new', 0o755, ROOT_CALLER)
  await put(fx, '/c/new/n', 'new')
  await v.unlink('/link')
  await v.mkdir('/link', 0o755, ROOT_CALLER)
  await put(fx, '/link/inside', 'in')
  await v.unlink('/link2')
  await v.symlink('b/h2', '/link2', ROOT_CALLER)
  const bigFh = await v.open('/big', 0o2, ROOT_CALLER)
  await v.write(bigFh, Buffer.from('X'), 500 * 1024)
  await v.release(bigFh)
  // Same size and mtime, other bytes: only the filemap tells.
  await v.chmod('/keep/deep/x', 0o600)
  await v.setxattr('/keep/deep/x', 'user.note', Buffer.from('attributes alone are not a change'), 0)
  const st = await v.getattr('/same-size')
  await put(fx, '/same-size', 'xyz')
  await v.utimens('/same-size', st.atimeNs, st.mtimeNs)
  const v2 = await at(fx)

  const expected = [
    'modified file /a/f1 3->11',
    'modified file /a/f2 3->3',
    'deleted dir /a/sub 0',
    'deleted file /a/sub/g 3',
    'deleted file /b/h 5',
    'added file /b/h2 5',
    'modified file /big 921600->921600',
    'added dir /c/new 0',
    'added file /c/new/n 3',
    'modified symlink->dir /link 4->0',
    'added file /link/inside 2',
    'modified symlink /link2 3->4',
    'modified file /same-size 3->3',
  ]
  t.same(await all(diffVersions(fx.store.meta, v1, v2)), expected)
  t.same(await all(diffVersions(fx.store.meta, v2, v2)), [], 'a version does not differ from itself')
  t.same(await all(diffVersions(fx.store.meta, v2, v1)), [
    'modified file /a/f1 11->3',
    'modified file /a/f2 3->3',
    'added dir /a/sub 0',
    'added file /a/sub/g 3',
    'added file /b/h 5',
    'deleted file /b/h2 5',
    'modified file /big 921600->921600',
    'deleted dir /c/new 0',
    'deleted file /c/new/n 3',
    'modified dir->symlink /link 0->4',
    'deleted file /link/inside 2',
    'modified symlink /link2 4->3',
    'modified file /same-size 3->3',
  ], 'the reverse diff mirrors it')
  t.same(await all(diffVersions(fx.store.meta, v1, v2, '/a')), expected.slice(0, 4), 'under a path')
  t.same(await all(diffVersions(fx.store.meta, v1, v2, '/c/new')), ['added dir /c/new 0', 'added file /c/new/n 3'], 'a path that is new')
  t.same(await all(diffVersions(fx.store.meta, v1, v2, '/a/f1')), ['modified file /a/f1 3->11'], 'a single file')
  t.same(await all(diffVersions(fx.store.meta, v1, v2, '/nowhere')), [])

  const list = await entries(diffVersions(fx.store.meta, v1, v2))
  for (let k = 0; k < list.length; k++) {
    const rest = await entries(diffVersions(fx.store.meta, v1, v2, '/', list[k]!.path))
    t.same(rest, list.slice(k + 1), `resumes after ${list[k]!.path}`)
  }
  t.same(await entries(diffVersions(fx.store.meta, v1, v2, '/', '/b')), list.slice(4), 'resumes after a path that is not an entry')
  t.same(await entries(diffVersions(fx.store.meta, v1, v2, '/', '/0')), list, 'resumes before everything')
})

t.test('restore point sides: paths from the workflow root', async (t) => {
  const fx = await vfsStore()
  t.teardown(async () => { await fx.close(); await removeFixture(fx) })
  const v = fx.vfs
  let clock = Date.parse('2026-11-21T02:00:00Z')
  const rp = restorePoints(fx, () => clock)
  await v.mkdir('/hbase', 0o755, ROOT_CALLER)
  await put(fx, '/hbase/f', 'night one')
  await put(fx, '/outside', 'x')
  const p1 = await rp.create('nightly', '/hbase')
  await put(fx, '/hbase/g', 'night two')
  await put(fx, '/outside', 'y')
  clock += 86_400_000
  const p2 = await rp.create('nightly', '/hbase')
  const side = (p: typeof p1): { version: Version; root: ReturnType<typeof asIno> } => ({ version: asVersion(BigInt(p.version)), root: asIno(p.root) })
  t.same(await all(diffVersions(fx.store.meta, side(p1), side(p2))), ['added file /g 9'])
})

t.test('an untouched tree is listed once and its files are not read twice', async (t) => {
  const fx = await vfsStore()
  t.teardown(async () => { await fx.close(); await removeFixture(fx) })
  const v = fx.vfs
  for (let d = 0; d < 10; d++) {
    await v.mkdir(`/d${d}`, 0o755, ROOT_CALLER)
    for (let f = 0; f < 20; f++) await put(fx, `/d${d}/f${f}`, `${d}/${f}`)
  }
  const v1 = await at(fx)
  await put(fx, '/d7/f3', 'changed')
  const v2 = await at(fx)
  const { meta, calls } = counting(fx)
  t.same(await all(diffVersions(meta, v1, v2)), ['modified file /d7/f3 3->7'])
  t.comment(`reads for 210 entries: ${JSON.stringify(calls)}`)
  t.equal(calls.readdir, 11, 'each untouched directory (the root too) listed once')
  t.equal(calls.getInodeVersioned, 211, 'one versioned read per entry')
  t.equal(calls.getInode, 3, 'other reads only for the roots and what changed')
  t.equal(calls.getFileMap, 0, 'sizes differ: no filemap read')
})
