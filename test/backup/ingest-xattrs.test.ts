import t from 'tap'
import { execFile } from 'node:child_process'
import { chmod, mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { runIngest } from '../../src/backup/ingest.js'
import { silentLogger } from '../../src/log.js'
import { removeFixture, restorePoints, vfsStore, type VfsFixture } from '../support/vfs-store.js'

const exec = promisify(execFile)

/** user.* xattrs of a namespace path (views included), name -> hex value. */
async function userXattrs(fx: VfsFixture, path: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {}
  for (const name of (await fx.vfs.listxattr(path)).filter((n) => n.startsWith('user.')).sort()) {
    out[name] = (await fx.vfs.getxattr(path, name)).toString('hex')
  }
  return out
}

function hex(text: string): string {
  return Buffer.from(text).toString('hex')
}

async function setx(path: string, name: string, value: string): Promise<void> {
  await exec('setfattr', ['-h', '-n', name, '-v', value, '--', path])
}

function ingestDeps(fx: VfsFixture, clock: { ms: number }): Parameters<typeof runIngest>[0] {
  return {
    vfs: fx.vfs, meta: fx.store.meta, log: silentLogger,
    restorePoints: restorePoints(fx, () => clock.ms),
  }
}

const DIR = 'r\u00e9pertoire x'
const FILE = `${DIR}/fichier \u00e9t\u00e9`

t.test('ingest copies user.* xattrs of files and directories, and follows their changes', async (t) => {
  const fx = await vfsStore()
  t.teardown(async () => { await fx.close(); await removeFixture(fx) })
  const src = t.testdir()
  await mkdir(join(src, DIR, 'deep'), { recursive: true })
  await writeFile(join(src, FILE), 'data\n')
  await writeFile(join(src, 'plain'), 'no xattrs\n')
  await symlink('plain', join(src, 'link'))
  await setx(src, 'user.root', 'top')
  await setx(join(src, FILE), 'user.with space', 'spaced')
  await setx(join(src, FILE), 'user.binary', '0x00ff0a3d5c')
  await setx(join(src, FILE), 'user.gone', 'soon')
  await setx(join(src, DIR), 'user.dir', 'one')
  await setx(join(src, DIR), 'user.dir.old', 'removed later')
  await setx(join(src, DIR, 'deep'), 'user.empty', '')
  await t.rejects(setx(join(src, 'link'), 'user.l', '1'), /Operation not permitted/, 'Linux has no user.* xattrs on symlinks: nothing to copy')
  await setx(join(src, 'link'), 'trusted.l', '1').catch(() => undefined)
  const clock = { ms: Date.parse('2026-11-21T02:00:00Z') }
  const spec = { workflow: 'x', dir: src, dest: '/backups/x' }

  const s1 = await runIngest(ingestDeps(fx, clock), spec)
  t.match(s1, { filesNew: 2, errors: 0, xattrs: 'user.* copied (7 set, 0 removed)' })
  const dest = '/backups/x'
  const first = {
    root: { 'user.root': hex('top') },
    file: { 'user.binary': '00ff0a3d5c', 'user.gone': hex('soon'), 'user.with space': hex('spaced') },
    dir: { 'user.dir': hex('one'), 'user.dir.old': hex('removed later') },
    deep: { 'user.empty': '' },
  }
  t.same(await userXattrs(fx, dest), first.root, 'the destination root takes the source root\'s')
  t.same(await userXattrs(fx, `${dest}/${FILE}`), first.file, 'a name with a space, a binary value, a path with a space and accents')
  t.same(await userXattrs(fx, `${dest}/${DIR}`), first.dir)
  t.same(await userXattrs(fx, `${dest}/${DIR}/deep`), first.deep, 'an empty value')
  t.same(await userXattrs(fx, `${dest}/plain`), {})
  t.same(await fx.vfs.listxattr(`${dest}/link`), [], 'the symlink has none (nor trusted.* ones: only user.* is copied)')
  const point1 = `/.snapshots/x/${s1.restorePoint.name}`
  t.same(await userXattrs(fx, `${point1}/${FILE}`), first.file, 'the restore point shows them')
  t.same(await userXattrs(fx, `${point1}/${DIR}`), first.dir)

  // A value changed and a name removed on a file (its ctime changes: it is copied again), a name
  // removed and a value changed on a directory, one added to another; names set in the namespace
  // directly on the copy: user.* ones are the source's to decide, trusted.* ones are left alone.
  await setx(join(src, FILE), 'user.with space', 'changed')
  await exec('setfattr', ['-x', 'user.gone', join(src, FILE)])
  await exec('setfattr', ['-x', 'user.dir.old', join(src, DIR)])
  await setx(join(src, DIR), 'user.dir', 'two')
  await setx(join(src, 'plain'), 'user.new', 'late')
  await fx.vfs.setxattr(`${dest}/${DIR}/deep`, 'user.stray', Buffer.from('not in the source'), 0)
  await fx.vfs.setxattr(`${dest}/${DIR}/deep`, 'trusted.local', Buffer.from('kept'), 0)
  clock.ms += 86_400_000
  const s2 = await runIngest(ingestDeps(fx, clock), spec)
  t.match(s2, { filesNew: 0, filesChanged: 2, errors: 0, xattrs: 'user.* copied (4 set, 2 removed)' })
  const second = {
    file: { 'user.binary': '00ff0a3d5c', 'user.with space': hex('changed') },
    dir: { 'user.dir': hex('two') },
  }
  t.same(await userXattrs(fx, `${dest}/${FILE}`), second.file, 'the file follows')
  t.same(await userXattrs(fx, `${dest}/${DIR}`), second.dir, 'the directory follows (a name removed, a value changed)')
  t.same(await userXattrs(fx, `${dest}/plain`), { 'user.new': hex('late') })
  t.same(await userXattrs(fx, `${dest}/${DIR}/deep`), first.deep, 'a user.* name the source lacks is removed')
  t.equal((await fx.vfs.getxattr(`${dest}/${DIR}/deep`, 'trusted.local')).toString(), 'kept')
  const point2 = `/.snapshots/x/${s2.restorePoint.name}`
  t.same(await userXattrs(fx, `${point2}/${DIR}`), second.dir, 'the new restore point shows the new ones')
  t.same(await userXattrs(fx, `${point1}/${FILE}`), first.file, 'the earlier restore point keeps the old ones')
  t.same(await userXattrs(fx, `${point1}/${DIR}`), first.dir)

  clock.ms += 86_400_000
  const s3 = await runIngest(ingestDeps(fx, clock), spec)
  t.match(s3, { filesNew: 0, filesChanged: 0, filesUnchanged: 2, bytesRead: 0, errors: 0, xattrs: 'user.* copied (0 set, 0 removed)' },
    'nothing changed: nothing read, nothing set')
})

t.test('many entries: xattrs go in batches, before each checkpoint records the files', async (t) => {
  const fx = await vfsStore()
  t.teardown(async () => { await fx.close(); await removeFixture(fx) })
  const src = t.testdir()
  for (let d = 0; d < 3; d++) {
    await mkdir(join(src, `d${d}`))
    await setx(join(src, `d${d}`), 'user.d', String(d))
    for (let i = 0; i < 150; i++) {
      const f = join(src, `d${d}`, `f ${i}`)
      await writeFile(f, `file ${d}/${i}\n`)
      if (i % 2 === 0) await setx(f, 'user.i', String(i))
    }
  }
  const clock = { ms: Date.parse('2026-11-21T02:00:00Z') }
  const s = await runIngest(ingestDeps(fx, clock), { workflow: 'm', dir: src, dest: '/m' }, { checkpointFiles: 300 })
  t.match(s, { filesNew: 450, errors: 0, xattrs: 'user.* copied (228 set, 0 removed)' })
  for (const [d, i] of [[0, 0], [1, 148], [2, 74]] as const) {
    t.equal((await fx.vfs.getxattr(`/m/d${d}/f ${i}`, 'user.i')).toString(), String(i))
  }
  t.same(await fx.vfs.listxattr('/m/d1/f 1'), [])
  t.equal((await fx.vfs.getxattr('/m/d2', 'user.d')).toString(), '2')
  const again = await runIngest(ingestDeps(fx, clock), { workflow: 'm', dir: src, dest: '/m' })
  t.match(again, { filesUnchanged: 450, bytesRead: 0, xattrs: 'user.* copied (0 set, 0 removed)' })
})

t.test('a file that vanishes before its xattrs are read is no error; an xattr the store refuses is one', async (t) => {
  const fx = await vfsStore()
  t.teardown(async () => { await fx.close(); await removeFixture(fx) })
  const src = t.testdir()
  await writeFile(join(src, 'a'), 'one\n')
  await writeFile(join(src, 'b'), 'two\n')
  await setx(join(src, 'a'), 'user.a', '1')
  await setx(join(src, 'b'), 'user.tierfs.tier', 'cold')
  await setx(join(src, 'b'), 'user.b', '2')
  const clock = { ms: Date.parse('2026-11-21T02:00:00Z') }
  const spec = { workflow: 'v', dir: src, dest: '/v' }
  // One copy at a time: a's copy is done once b's starts at the latest; its xattrs wait for the
  // final checkpoint.
  let removed = false
  const s = await runIngest(ingestDeps(fx, clock), spec, {
    concurrency: 1,
    onEntry: async (c) => {
      if (removed || c.filesNew === 0) return
      removed = true
      await rm(join(src, 'a'))
    },
  })
  t.match(s, { filesNew: 2, errors: 1, xattrs: 'user.* copied (1 set, 0 removed)' }, 'user.tierfs.tier is read-only in tierfs')
  t.same(await fx.vfs.listxattr('/v/b'), ['user.b'])
  clock.ms += 86_400_000
  t.match(await runIngest(ingestDeps(fx, clock), spec), { deleted: 1, filesUnchanged: 1, errors: 0 })
})

t.test('without getfattr the tree is copied without xattrs; a failing getfattr leaves files to copy again', async (t) => {
  const fx = await vfsStore()
  t.teardown(async () => { await fx.close(); await removeFixture(fx) })
  const path = process.env.PATH
  t.teardown(() => { process.env.PATH = path })
  const src = t.testdir()
  await mkdir(join(src, 'd'))
  await writeFile(join(src, 'd/f'), 'data\n')
  await setx(join(src, 'd/f'), 'user.a', '1')
  const clock = { ms: Date.parse('2026-11-21T02:00:00Z') }
  const spec = { workflow: 'n', dir: src, dest: '/n' }

  const empty = await mkdtemp(join(tmpdir(), 'tierfs-no-tools-'))
  t.teardown(() => rm(empty, { recursive: true, force: true }))
  process.env.PATH = empty
  const none = await runIngest(ingestDeps(fx, clock), spec)
  t.match(none, { filesNew: 1, errors: 0, xattrs: 'not copied: getfattr (Debian package attr) is not installed' })
  t.same(await fx.vfs.listxattr('/n/d/f'), [])

  // A getfattr that runs but fails: an error, and the file is not recorded as done.
  const bin = await mkdtemp(join(tmpdir(), 'tierfs-fake-getfattr-'))
  t.teardown(() => rm(bin, { recursive: true, force: true }))
  await writeFile(join(bin, 'getfattr'), '#!/bin/sh\n[ "$1" = --version ] && exit 0\necho "getfattr: broken" >&2\nexit 2\n')
  await chmod(join(bin, 'getfattr'), 0o755)
  process.env.PATH = `${bin}:${path ?? ''}`
  await writeFile(join(src, 'd/f'), 'data, changed\n')
  await setx(join(src, 'd/f'), 'user.a', '2')
  clock.ms += 86_400_000
  const failed = await runIngest(ingestDeps(fx, clock), spec)
  t.match(failed, { filesChanged: 1, errors: 1, xattrs: 'user.* copied (0 set, 0 removed)' })

  process.env.PATH = path
  clock.ms += 86_400_000
  const retried = await runIngest(ingestDeps(fx, clock), spec)
  t.match(retried, { filesNew: 1, errors: 0, xattrs: 'user.* copied (1 set, 0 removed)' }, 'the file is copied again, with its xattrs')
  t.equal((await fx.vfs.getxattr('/n/d/f', 'user.a')).toString(), '2')
})
