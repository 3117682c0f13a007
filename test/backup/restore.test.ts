import t from 'tap'
import { execFile } from 'node:child_process'
import { chmod, chown, link, lstat, mkdir, readdir, readFile, readlink, rm, symlink, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { promisify } from 'node:util'
import type { DiffEntry } from '../../src/backup/diff.js'
import { restoreTree, type RestoreDeps } from '../../src/backup/restore.js'

/**
 * The restore engine on a plain directory laid out like a mount (MOUNT/.snapshots/wf/T/...): the
 * same fs calls it makes through a tierfs mount. Inode numbers come from lstat here, from the
 * daemon on a real mount. (test/e2e/backup.test.ts restores through a real mount.)
 */

const exec = promisify(execFile)
const VIEW = '/.snapshots/wf/2026-11-21T02:00:00Z'

async function touchNs(path: string, sec: number, ns: number): Promise<void> {
  await exec('touch', ['-h', '-d', `@${sec}.${String(ns).padStart(9, '0')}`, path])
}

function inodesOf(mount: string): RestoreDeps & { calls: number } {
  const deps = {
    calls: 0,
    async inodes(paths: string[]): Promise<Array<number | null>> {
      deps.calls++
      return Promise.all(paths.map((p) => lstat(join(mount, p)).then((s) => s.ino, () => null)))
    },
  }
  return deps
}

type Seen = { mode: number; uid: number; gid: number; mtimeNs: bigint; size: bigint; nlink: bigint; rdev: bigint; body?: string; target?: string }

async function snapshotOf(root: string): Promise<Map<string, Seen>> {
  const out = new Map<string, Seen>()
  const walk = async (rel: string): Promise<void> => {
    const p = rel === '' ? root : join(root, rel)
    const st = await lstat(p, { bigint: true })
    const e: Seen = { mode: Number(st.mode), uid: Number(st.uid), gid: Number(st.gid), mtimeNs: st.mtimeNs, size: st.isDirectory() ? 0n : st.size, nlink: st.isDirectory() ? 0n : st.nlink, rdev: st.rdev }
    if (st.isFile()) e.body = await readFile(p, 'latin1')
    if (st.isSymbolicLink()) e.target = await readlink(p)
    out.set(rel, e)
    if (st.isDirectory()) for (const n of (await readdir(p)).sort()) await walk(rel === '' ? n : `${rel}/${n}`)
  }
  await walk('')
  return out
}

async function xattrs(path: string): Promise<string> {
  const { stdout } = await exec('getfattr', ['-h', '-d', '-m', '^user\\.', '--absolute-names', path]).catch(() => ({ stdout: '' }))
  return stdout.split('\n').filter((l) => l.startsWith('user.')).join(',')
}

async function source(mount: string): Promise<string> {
  const root = join(mount, VIEW)
  await mkdir(join(root, 'a/deep'), { recursive: true })
  await mkdir(join(root, 'b'))
  await writeFile(join(root, 'a/f'), 'alpha\n')
  await writeFile(join(root, 'a/deep/g'), Buffer.alloc(300_000, 7))
  await link(join(root, 'a/f'), join(root, 'b/f-link'))
  await symlink('../a/f', join(root, 'b/sym'))
  await exec('mkfifo', [join(root, 'b/fifo')])
  await exec('mknod', [join(root, 'b/null'), 'c', '1', '3'])
  await writeFile(join(root, 'b/suid'), '#!/bin/sh\n')
  await chmod(join(root, 'b/suid'), 0o4750)
  await chown(join(root, 'b'), 1234, 5678)
  await chown(join(root, 'b/suid'), 1234, 5678)
  await chmod(join(root, 'b/suid'), 0o4750)
  await exec('setfattr', ['-n', 'user.color', '-v', 'blue', join(root, 'a/f')])
  await exec('setfattr', ['-n', 'user.dir', '-v', 'yes', join(root, 'a')])
  await touchNs(join(root, 'a/f'), 1_700_000_000, 123_456_789)
  await touchNs(join(root, 'b/sym'), 1_700_000_001, 987_654_321)
  await touchNs(join(root, 'a/deep'), 1_700_000_002, 5)
  await touchNs(join(root, 'a'), 1_700_000_003, 999_999_999)
  return root
}

t.test('a whole tree: contents, modes, owners, ns times, hard links, symlinks, specials, xattrs', async (t) => {
  const dir = t.testdir()
  const mount = join(dir, 'mnt')
  const root = await source(mount)
  const deps = inodesOf(mount)
  const dest = join(dir, 'out')
  const s = await restoreTree(deps, { mount, view: VIEW, dest })
  t.match(s, { files: 3, dirs: 3, symlinks: 1, hardLinks: 1, specials: 2, errors: 0, bytes: 6 + 300_000 + 10 })
  t.equal(s.times, 'atime and mtime to the nanosecond')
  t.ok(s.mtimeFallbacks > 0, `fs.utimes alone is not exact: ${s.mtimeFallbacks} touch fallbacks (special files)`)
  t.equal(s.owners, 'restored')
  t.match(s.xattrs, /user\.\* copied \(3 files/, 'a, a/f and its second name b/f-link')
  const want = await snapshotOf(root)
  const got = await snapshotOf(dest)
  for (const [p, w] of want) t.same(got.get(p), w, `${p || '.'} equal`)
  t.same([...got.keys()], [...want.keys()])
  t.equal((await lstat(join(dest, 'a/f'))).ino, (await lstat(join(dest, 'b/f-link'))).ino, 'hard link kept')
  t.equal(await xattrs(join(dest, 'a/f')), 'user.color="blue"')
  t.equal(await xattrs(join(dest, 'a')), 'user.dir="yes"')
  t.equal(deps.calls, 2, 'inode numbers asked once per directory holding multiply-linked files')

  const again = await restoreTree(deps, { mount, view: VIEW, dest, xattrs: false })
  t.match(again, { errors: 0, files: 3, xattrs: 'not copied (disabled)' }, 'restoring over an existing copy replaces files')
  t.equal((await lstat(join(dest, 'a/f'))).ino, (await lstat(join(dest, 'b/f-link'))).ino)
  await t.rejects(restoreTree(deps, { mount, view: VIEW, dest: join(mount, 'inside') }), { code: 'INVALID' }, 'never into the mount')
})

t.test('some paths, and the entries of a diff', async (t) => {
  const dir = t.testdir()
  const mount = join(dir, 'mnt')
  await source(mount)
  const deps = inodesOf(mount)
  const some = join(dir, 'some')
  const s = await restoreTree(deps, { mount, view: VIEW, dest: some, paths: ['/a/deep', 'b/sym'] })
  t.match(s, { errors: 0, files: 1, symlinks: 1 })
  t.same((await readdir(some)).sort(), ['a', 'b'])
  t.same(await readdir(join(some, 'a')), ['deep'], 'only the given paths and their parents')
  t.equal((await lstat(join(some, 'a/deep'), { bigint: true })).mtimeNs, 1_700_000_002_000_000_005n, 'a given directory keeps its times')
  t.equal(await readlink(join(some, 'b/sym')), '../a/f')
  t.equal((await lstat(join(some, 'b'))).uid, 1234, 'parents created with the source owner')

  const changes: DiffEntry[] = [
    { change: 'modified', path: '/a/f', type: 'file', sizeBefore: 1, sizeAfter: 6 },
    { change: 'deleted', path: '/a/old', type: 'file', sizeBefore: 9 },
    { change: 'added', path: '/b', type: 'dir', sizeAfter: 0 },
    { change: 'added', path: '/b/f-link', type: 'file', sizeAfter: 6 },
    { change: 'added', path: '/b/null', type: 'chardev', sizeAfter: 0 },
  ]
  const deleted: string[] = []
  const changed = join(dir, 'changed')
  await mkdir(join(changed, 'a'), { recursive: true })
  await writeFile(join(changed, 'a/keep'), 'untouched\n')
  const c = await restoreTree(deps, {
    mount, view: VIEW, dest: changed,
    changes: (async function* () { yield* changes })(),
    onDeleted: (e) => deleted.push(e.path),
  })
  t.match(c, { errors: 0, files: 1, hardLinks: 1, specials: 1, dirs: 1, deletedListed: 1 })
  t.same(deleted, ['/a/old'])
  t.same((await readdir(join(changed, 'a'))).sort(), ['f', 'keep'], 'other files of DEST are left alone')
  t.same((await readdir(join(changed, 'b'))).sort(), ['f-link', 'null'], 'only the listed entries of an added directory')
  t.equal((await lstat(join(changed, 'b/f-link'))).ino, (await lstat(join(changed, 'a/f'))).ino, 'a hard link to a restored file')
  t.equal((await lstat(join(changed, 'b'))).uid, 1234, 'an added directory takes its attributes')
  t.equal((await lstat(join(changed, 'b'), { bigint: true })).mtimeNs, (await lstat(join(mount, VIEW, 'b'), { bigint: true })).mtimeNs)

  const conflict = join(dir, 'conflict')
  await mkdir(join(conflict, 'a/f'), { recursive: true })
  const errors: string[] = []
  const x = await restoreTree(deps, { mount, view: VIEW, dest: conflict, paths: ['/a/f'], onError: (p, e) => errors.push(`${p}: ${e.message}`) })
  t.equal(x.errors, 1)
  t.match(errors[0], /^\/a\/f: .*a directory would be replaced by a file/, 'a directory in DEST is never replaced by a file')
})

t.test('files are copied by cp with exact times; a failing batch is copied again entry by entry', async (t) => {
  const dir = t.testdir()
  const mount = join(dir, 'mnt')
  const root = await source(mount)
  for (let i = 0; i < 40; i++) {
    await writeFile(join(root, `b/n${i}`), `file ${i}\n`)
    await touchNs(join(root, `b/n${i}`), 1_600_000_000 + i, 100_000_001 + i)
  }
  await writeFile(join(root, 'b/gone'), 'soon gone\n')
  const deps = inodesOf(mount)
  const inodes = deps.inodes
  // Called once b's names are read and before its entries are copied: the file vanishes between.
  deps.inodes = async (paths) => {
    await rm(join(root, 'b/gone'), { force: true })
    return inodes(paths)
  }
  const errors: string[] = []
  const dest = join(dir, 'out')
  const s = await restoreTree(deps, { mount, view: VIEW, dest, onError: (p, e) => errors.push(`${p}: ${e.message}`) })
  t.equal(s.errors, 1)
  t.match(errors, [/^\/b\/gone: /])
  t.equal(s.files, 3 + 40)
  t.ok(s.mtimeFallbacks <= s.specials, `touch only for special files (${s.mtimeFallbacks}): cp sets files', tar directories' mtimes`)
  for (const d of ['', 'a', 'a/deep']) {
    t.equal((await lstat(join(dest, d), { bigint: true })).mtimeNs, (await lstat(join(root, d), { bigint: true })).mtimeNs, `${d || '.'}: directory mtime to the nanosecond`)
  }
  for (let i = 0; i < 40; i++) {
    const st = await lstat(join(dest, `b/n${i}`), { bigint: true })
    t.equal(st.mtimeNs, BigInt(1_600_000_000 + i) * 1_000_000_000n + BigInt(100_000_001 + i), `b/n${i} mtime to the nanosecond`)
    t.equal(await readFile(join(dest, `b/n${i}`), 'utf8'), `file ${i}\n`)
  }
  t.equal((await lstat(join(dest, 'a/f'))).ino, (await lstat(join(dest, 'b/f-link'))).ino, 'hard link kept')
})
