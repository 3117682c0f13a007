import t from 'tap'
import { TierfsError } from '../../src/errors.js'
import { O_RDONLY, O_RDWR } from '../../src/vfs/vfs.js'
import { removeFixture, restorePoints, ROOT_CALLER, vfsStore, type VfsFixture } from '../support/vfs-store.js'

async function put(fx: VfsFixture, path: string, text: string): Promise<void> {
  const fh = await fx.vfs.create(path, 0o644, 0o101, ROOT_CALLER)
  await fx.vfs.write(fh, Buffer.from(text), 0)
  await fx.vfs.release(fh)
}

async function get(fx: VfsFixture, path: string): Promise<string> {
  const fh = await fx.vfs.open(path, O_RDONLY, ROOT_CALLER)
  const buf = Buffer.alloc(1024)
  const n = await fx.vfs.read(fh, buf, 0)
  await fx.vfs.release(fh)
  return buf.subarray(0, n).toString()
}

const code = (p: Promise<unknown>): Promise<string> => p.then(() => 'ok', (e: unknown) => (e instanceof TierfsError ? e.code : String(e)))

t.test('restore points are pinned versions shown read-only under /.snapshots', async (t) => {
  const fx = await vfsStore()
  t.teardown(async () => { await fx.close(); await removeFixture(fx) })
  const v = fx.vfs
  let clock = Date.parse('2026-11-21T02:00:00Z')
  const rp = restorePoints(fx, () => clock)
  await v.mkdir('/hbase', 0o755, ROOT_CALLER)
  await put(fx, '/hbase/f', 'night one')
  await put(fx, '/outside', 'not in the workflow')
  const first = await rp.create('nightly', '/hbase')
  t.equal(first.name, '2026-11-21T02:00:00Z')
  await put(fx, '/hbase/f', 'night two!')
  await put(fx, '/hbase/g', 'new')
  const dup = await rp.create('nightly', '/hbase')
  t.equal(dup.name, '2026-11-21T02:00:01Z', 'same second: the next free second')
  clock += 86_400_000
  await v.unlink('/hbase/g')
  const third = await rp.create('nightly', '/hbase')

  t.same((await v.readdir('/.snapshots')).map((e) => e.name), ['nightly'])
  t.same((await v.readdir('/.snapshots/nightly')).map((e) => e.name), [first.name, dup.name, third.name, 'latest'])
  t.equal(await v.readlink('/.snapshots/nightly/latest'), third.name)
  t.equal(await get(fx, `/.snapshots/nightly/${first.name}/f`), 'night one')
  t.equal(await get(fx, `/.snapshots/nightly/${dup.name}/f`), 'night two!')
  t.same((await v.readdir(`/.snapshots/nightly/${dup.name}`)).map((e) => e.name).sort(), ['f', 'g'])
  t.same((await v.readdir(`/.snapshots/nightly/${third.name}`)).map((e) => e.name), ['f'])
  t.equal(await get(fx, '/.snapshots/nightly/latest/f'), 'night two!', 'paths through latest resolve')
  t.equal(await code(v.getattr(`/.snapshots/nightly/${first.name}/outside`)), 'NOT_FOUND', 'only the workflow tree')
  t.same((await v.readdir('/')).map((e) => e.name).sort(), ['hbase', 'outside'], 'views are hidden from the root listing')

  t.equal(await code(v.open(`/.snapshots/nightly/${first.name}/f`, O_RDWR, ROOT_CALLER)), 'READ_ONLY')
  t.equal(await code(v.unlink(`/.snapshots/nightly/${first.name}/f`)), 'READ_ONLY')
  t.equal(await code(v.mkdir(`/.snapshots/nightly/x`, 0o755, ROOT_CALLER)), 'READ_ONLY')
  t.equal(await code(v.rename('/hbase/f', `/.snapshots/nightly/${first.name}/f2`, 0)), 'READ_ONLY')
  t.equal(await code(v.mkdir('/.snapshots', 0o755, ROOT_CALLER)), 'EXISTS')
  t.equal(await code(v.setxattr(`/.snapshots/nightly/${first.name}/f`, 'user.x', Buffer.from('1'), 0)), 'READ_ONLY')

  await rp.delete('nightly', first.name)
  t.equal(await code(v.getattr(`/.snapshots/nightly/${first.name}`)), 'NOT_FOUND')
  t.same((await rp.list('nightly')).map((p) => p.name), [dup.name, third.name])
})

t.test('/.history shows the namespace at any instant inside the window', async (t) => {
  let nowMs = Date.now()
  const fx = await vfsStore()
  t.teardown(async () => { await fx.close(); await removeFixture(fx) })
  const v = fx.vfs
  await put(fx, '/doc', 'draft')
  await v.sealAll()
  await new Promise((r) => setTimeout(r, 20))
  const between = new Date().toISOString()
  await new Promise((r) => setTimeout(r, 20))
  await put(fx, '/doc', 'final')
  await v.rename('/doc', '/doc.txt', 0)
  nowMs = Date.now()
  t.ok(nowMs > 0)
  t.equal(await get(fx, `/.history/${between}/doc`), 'draft')
  t.equal(await code(v.getattr(`/.history/${between}/doc.txt`)), 'NOT_FOUND')
  t.equal(await get(fx, '/doc.txt'), 'final')
  t.equal(await code(v.getattr('/.history/2001-01-01T00:00:00Z')), 'NOT_FOUND', 'outside the window')
  t.equal(await code(v.getattr('/.history/not-a-time')), 'NOT_FOUND')
  t.same(await v.readdir('/.history'), [])
})

t.test('restore points through the views: each shows its own version of the same inodes', async (t) => {
  const fx = await vfsStore()
  t.teardown(async () => { await fx.close(); await removeFixture(fx) })
  const v = fx.vfs
  let clock = Date.parse('2026-11-21T02:00:00Z')
  const rp = restorePoints(fx, () => clock)
  await v.mkdir('/d', 0o755, ROOT_CALLER)
  for (let i = 0; i < 5; i++) await put(fx, `/d/f${i}`, `one ${i}`)
  await v.setxattr('/d/f1', 'user.night', Buffer.from('one'), 0)
  const one = await rp.create('w', '/d')
  clock += 1000
  await put(fx, '/d/f1', 'two, longer')
  await v.chmod('/d/f1', 0o600)
  await v.setxattr('/d/f1', 'user.night', Buffer.from('two'), 0)
  await v.setxattr('/d/f2', 'user.new', Buffer.from('x'), 0)
  await v.rename('/d/f3', '/d/g3', 0)
  const two = await rp.create('w', '/d')

  const p1 = `/.snapshots/w/${one.name}`
  const p2 = `/.snapshots/w/${two.name}`
  const listXattrs = fx.store.meta.listXattrs.bind(fx.store.meta)
  let scans = 0
  fx.store.meta.listXattrs = async (...args) => { scans++; return listXattrs(...args) }
  for (let round = 0; round < 2; round++) {
    t.same((await v.readdir(p1)).map((e) => e.name), ['f0', 'f1', 'f2', 'f3', 'f4'])
    t.same((await v.readdir(p2)).map((e) => e.name), ['f0', 'f1', 'f2', 'f4', 'g3'])
    for (const [p, mode, body, night, f2] of [[p1, 0o644, 'one 1', 'one', []], [p2, 0o600, 'two, longer', 'two', ['user.new']]] as const) {
      const st = await v.getattr(`${p}/f1`)
      t.equal(st.mode & 0o777, mode)
      t.equal(st.size, body.length)
      t.equal(await get(fx, `${p}/f1`), body)
      t.same(await v.listxattr(`${p}/f1`), ['user.night'])
      t.equal((await v.getxattr(`${p}/f1`, 'user.night')).toString(), night)
      t.same(await v.listxattr(`${p}/f2`), f2)
    }
    t.equal((await v.getattr(`${p1}/f3`)).ino, (await v.getattr(`${p2}/g3`)).ino, 'the renamed inode, low bits')
    t.not((await v.getattr(`${p1}/f3`)).inoHigh, (await v.getattr(`${p2}/g3`)).inoHigh, 'each view its own inode space')
    await t.rejects(v.getattr(`${p2}/f3`), { code: 'NOT_FOUND' })
    await t.rejects(v.getattr(`${p1}/g3`), { code: 'NOT_FOUND' })
  }
  t.equal(scans, 0, 'xattr names came with the listings')
  t.equal((await v.readdir(p1)).find((e) => e.name === 'f1')?.stat.inoHigh, (await v.getattr(`${p1}/f1`)).inoHigh, 'readdir gives the same st_ino as getattr')
})

t.test('a restore point committed without telling the views appears; a deleted one goes', async (t) => {
  const fx = await vfsStore()
  t.teardown(async () => { await fx.close(); await removeFixture(fx) })
  const v = fx.vfs
  await v.mkdir('/d', 0o755, ROOT_CALLER)
  await put(fx, '/d/f', 'x')
  t.same(await v.readdir('/.snapshots'), [])
  const meta = fx.store.meta
  const root = await v.resolve('/d')
  await meta.begin().putPin({ workflow: 'a', timeMs: Date.parse('2026-11-21T02:00:00Z'), version: meta.head, root }).commit()
  t.same((await v.readdir('/.snapshots')).map((e) => e.name), ['a'])
  t.equal(await get(fx, '/.snapshots/a/latest/f'), 'x')
  await meta.begin().putPin({ workflow: 'a', timeMs: Date.parse('2026-11-22T02:00:00Z'), version: meta.head, root }).commit()
  t.same((await v.readdir('/.snapshots/a')).map((e) => e.name), ['2026-11-21T02:00:00Z', '2026-11-22T02:00:00Z', 'latest'])
  t.equal(await v.readlink('/.snapshots/a/latest'), '2026-11-22T02:00:00Z')
  t.equal((await v.getattr('/.snapshots/a/2026-11-21T03:00:00+01:00/f')).size, 1, 'another spelling of the instant')
  await t.rejects(v.getattr('/.snapshots/a/not-a-time'), { code: 'NOT_FOUND' })
  await meta.begin().deletePin('a', Date.parse('2026-11-21T02:00:00Z')).commit()
  await t.rejects(v.getattr('/.snapshots/a/2026-11-21T02:00:00Z/f'), { code: 'NOT_FOUND' })
})
