import t from 'tap'
import { execFile } from 'node:child_process'
import { createHash } from 'node:crypto'
import { chmod, chown, link, lstat, mkdir, readdir, readFile, readlink, rename, rm, symlink, utimes, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { runIngest, type IngestSummary } from '../../src/backup/ingest.js'
import { silentLogger } from '../../src/log.js'
import { O_RDONLY } from '../../src/vfs/vfs.js'
import { removeFixture, restorePoints, ROOT_CALLER, vfsStore, type VfsFixture } from '../support/vfs-store.js'
import { pseudoRandom } from '../support/e2e-io.js'

const exec = promisify(execFile)
const KiB = 1024

async function sha(fx: VfsFixture, path: string): Promise<string> {
  const h = createHash('sha256')
  const fh = await fx.vfs.open(path, O_RDONLY, ROOT_CALLER)
  const buf = Buffer.alloc(256 * KiB)
  for (let off = 0; ;) {
    const n = await fx.vfs.read(fh, buf, off)
    if (n === 0) break
    h.update(buf.subarray(0, n))
    off += n
  }
  await fx.vfs.release(fh)
  return h.digest('hex')
}

/** Sets atime and mtime to the nanosecond (fs.utimes goes through a double). */
async function touchNs(path: string, sec: number, ns: number): Promise<void> {
  await exec('touch', ['-h', '-d', `@${sec}.${String(ns).padStart(9, '0')}`, path])
}

/**
 * Asserts that the tree at `view` (a namespace path, or a restore point / history path) is an
 * exact copy of the directory `src`: names, types, modes, owners, mtimes (ns), sizes, contents,
 * symlink targets, device numbers and hard links.
 */
async function sameTree(t: Tap.Test, fx: VfsFixture, src: string, view: string): Promise<number> {
  const links = new Map<bigint, number>()
  let n = 0
  const walk = async (s: string, v: string): Promise<void> => {
    const names = (await readdir(s)).sort()
    const listed = (await fx.vfs.readdir(v)).map((e) => e.name).sort()
    if (JSON.stringify(listed) !== JSON.stringify(names)) t.same(listed, names, `entries of ${v}`)
    for (const name of names) {
      const sp = join(s, name)
      const vp = `${v}/${name}`
      const a = await lstat(sp, { bigint: true })
      const b = await fx.vfs.getattr(vp)
      n++
      const what = `${vp}`
      if (Number(a.mode) !== b.mode || Number(a.uid) !== b.uid || Number(a.gid) !== b.gid || a.mtimeNs !== b.mtimeNs) {
        t.fail(`${what}: mode/owner/mtime ${[Number(a.mode).toString(8), a.uid, a.gid, a.mtimeNs]} != ${[b.mode.toString(8), b.uid, b.gid, b.mtimeNs]}`)
      }
      if (a.isDirectory()) {
        await walk(sp, vp)
      } else if (a.isSymbolicLink()) {
        if ((await fx.vfs.readlink(vp)) !== (await readlink(sp))) t.fail(`${what}: symlink target`)
      } else if (a.isFile()) {
        if (b.size !== Number(a.size)) t.fail(`${what}: size ${b.size} != ${a.size}`)
        if (sha256(await readFile(sp)) !== (await sha(fx, vp))) t.fail(`${what}: contents differ`)
        if (a.nlink > 1n) {
          const first = links.get(a.ino)
          if (first === undefined) links.set(a.ino, b.ino)
          else if (b.ino !== first) t.fail(`${what}: hard link does not share the inode`)
        }
      } else {
        if (b.rdev !== Number(a.rdev)) t.fail(`${what}: rdev`)
      }
    }
  }
  await walk(src, view)
  return n
}

function sha256(b: Buffer): string {
  return createHash('sha256').update(b).digest('hex')
}

async function makeSource(src: string): Promise<void> {
  await mkdir(join(src, 'data/region-a'), { recursive: true })
  await mkdir(join(src, 'data/region-b'), { recursive: true })
  await mkdir(join(src, 'empty'))
  await writeFile(join(src, 'data/region-a/small'), 'tiny\n')
  await writeFile(join(src, 'data/region-a/mid'), pseudoRandom('mid', 40 * KiB))
  await writeFile(join(src, 'data/region-a/big'), pseudoRandom('big', 1536 * KiB))
  await writeFile(join(src, 'data/region-b/hfile'), pseudoRandom('hfile', 600 * KiB))
  await link(join(src, 'data/region-b/hfile'), join(src, 'data/region-b/hfile.link'))
  await writeFile(join(src, 'data/region-b/secret'), 'keys\n', { mode: 0o600 })
  await chmod(join(src, 'data/region-b/secret'), 0o600)
  await chown(join(src, 'data/region-b/secret'), 1234, 5678)
  await chown(join(src, 'data/region-b'), 1234, 5678)
  await chmod(join(src, 'data/region-b'), 0o2750)
  await symlink('region-a/big', join(src, 'data/latest'))
  await exec('mkfifo', [join(src, 'data/pipe')])
  await writeFile(join(src, 'run.sh'), '#!/bin/sh\n', { mode: 0o755 })
  await chmod(join(src, 'run.sh'), 0o4755)
  await touchNs(join(src, 'data/region-a/small'), 1_700_000_000, 123_456_789)
  await touchNs(join(src, 'data/latest'), 1_700_000_001, 1)
  await touchNs(join(src, 'data/region-a'), 1_700_000_002, 999_999_999)
}

t.test('ingest copies an external tree, then reads only what changed', async (t) => {
  const fx = await vfsStore()
  t.teardown(async () => { await fx.close(); await removeFixture(fx) })
  const src = t.testdir()
  await makeSource(src)
  let clock = Date.parse('2026-11-21T02:00:00Z')
  const deps = (f: VfsFixture): Parameters<typeof runIngest>[0] => ({
    vfs: f.vfs, meta: f.store.meta, log: silentLogger,
    restorePoints: restorePoints(f, () => clock),
  })
  const spec = { workflow: 'hbase', dir: src, dest: '/backups/hbase' }

  const s1 = await runIngest(deps(fx), spec)
  t.match(s1, { filesNew: 6, filesChanged: 0, filesUnchanged: 0, deleted: 0, hardLinks: 1, symlinks: 1, specials: 1, errors: 0 })
  t.equal(s1.bytesRead, 5 + 40 * KiB + 1536 * KiB + 600 * KiB + 5 + 10, 'every byte read once (the hard link is not read twice)')
  t.ok(s1.bytesStored > 2100 * KiB && s1.bytesStored < 2300 * KiB, `bytesStored ${s1.bytesStored}`)
  t.equal(s1.restorePoint.name, '2026-11-21T02:00:00Z')
  t.equal(await sameTree(t, fx, src, '/backups/hbase'), 13, 'the live copy')
  t.equal(await sameTree(t, fx, src, '/.snapshots/hbase/2026-11-21T02:00:00Z'), 13, 'the restore point')
  const root = await fx.vfs.getattr('/backups/hbase')
  const srcRoot = await lstat(src, { bigint: true })
  t.equal(root.mtimeNs, srcRoot.mtimeNs, 'the destination root takes the source root times')

  clock += 86_400_000
  const s2 = await runIngest(deps(fx), spec)
  t.match(s2, { filesNew: 0, filesChanged: 0, filesUnchanged: 6, deleted: 0, hardLinks: 0, bytesRead: 0, bytesStored: 0 })
  t.equal((await fx.vfs.getattr('/backups/hbase/data/region-b/hfile.link')).ino, (await fx.vfs.getattr('/backups/hbase/data/region-b/hfile')).ino)

  // Night three: same-size rewrite with the mtime put back (only ctime tells), a new file, a
  // deleted file, a deleted directory, a file replaced by a directory, a broken hard link, a new
  // symlink target, a mode change.
  const mid = join(src, 'data/region-a/mid')
  const before = await lstat(mid, { bigint: true })
  const midData = pseudoRandom('mid', 40 * KiB)
  midData[100] ^= 0xff
  await writeFile(mid, midData)
  await touchNs(mid, Number(before.mtimeNs / 1_000_000_000n), Number(before.mtimeNs % 1_000_000_000n))
  await writeFile(join(src, 'data/region-a/new'), pseudoRandom('new', 300 * KiB))
  await rm(join(src, 'data/region-a/small'))
  await rm(join(src, 'empty'), { recursive: true })
  await rm(join(src, 'run.sh'))
  await mkdir(join(src, 'run.sh'))
  await writeFile(join(src, 'run.sh/inside'), 'was a file\n')
  await rm(join(src, 'data/region-b/hfile.link'))
  await writeFile(join(src, 'data/region-b/hfile.link'), pseudoRandom('hfile', 600 * KiB))
  await rm(join(src, 'data/latest'))
  await symlink('region-b/hfile', join(src, 'data/latest'))
  await chmod(join(src, 'data/region-a'), 0o700)
  await touchNs(join(src, 'data/region-a'), 1_700_000_002, 999_999_999)
  clock += 86_400_000
  const s3 = await runIngest(deps(fx), spec)
  t.match(s3, { filesNew: 3, filesChanged: 2, filesUnchanged: 2, deleted: 2, hardLinks: 0, errors: 0 })
  // hfile counts as changed: unlinking its second name changed its ctime.
  t.equal(s3.bytesRead, 40 * KiB + 300 * KiB + 11 + 2 * 600 * KiB, 'only the new and changed files were read')
  t.ok(s3.bytesStored < 350 * KiB + 64 * KiB, `the unlinked copy of hfile dedups (${s3.bytesStored} bytes stored)`)
  t.equal(await sameTree(t, fx, src, '/backups/hbase'), 13)
  t.not((await fx.vfs.getattr('/backups/hbase/data/region-b/hfile.link')).ino, (await fx.vfs.getattr('/backups/hbase/data/region-b/hfile')).ino)
  t.equal((await fx.vfs.readdir('/backups/hbase/data/region-a')).filter((e) => e.name.startsWith('.tierfs')).length, 0, 'no temporary names left')

  const first = '/.snapshots/hbase/2026-11-21T02:00:00Z'
  t.equal(await fx.vfs.readlink(`${first}/data/latest`), 'region-a/big', 'earlier restore points are unchanged')
  t.equal((await fx.vfs.getattr(`${first}/run.sh`)).mode, 0o104755)
  t.same((await fx.vfs.readdir('/.snapshots/hbase')).map((e) => e.name), ['2026-11-21T02:00:00Z', '2026-11-22T02:00:00Z', '2026-11-23T02:00:00Z', 'latest'])
})

t.test('a run killed mid-way leaves no restore point; the next run completes the job', async (t) => {
  let fx = await vfsStore()
  t.teardown(async () => { await fx.close(); await removeFixture(fx) })
  const src = t.testdir()
  await mkdir(join(src, 'd'))
  for (let i = 0; i < 30; i++) await writeFile(join(src, 'd', `f${String(i).padStart(2, '0')}`), pseudoRandom(`f${i}`, (i % 5) * 20 * KiB + 100))
  let clock = Date.parse('2026-11-21T02:00:00Z')
  const deps = (f: VfsFixture): Parameters<typeof runIngest>[0] => ({
    vfs: f.vfs, meta: f.store.meta, log: silentLogger,
    restorePoints: restorePoints(f, () => clock),
  })
  const spec = { workflow: 'wf', dir: src, dest: '/wf' }
  await runIngest(deps(fx), spec)
  for (let i = 0; i < 30; i += 3) await writeFile(join(src, 'd', `f${String(i).padStart(2, '0')}`), pseudoRandom(`g${i}`, 50 * KiB))
  for (let i = 30; i < 40; i++) await writeFile(join(src, 'd', `f${i}`), pseudoRandom(`f${i}`, 30 * KiB))
  clock += 86_400_000

  let crashed = false
  const killed = runIngest(deps(fx), spec, {
    checkpointFiles: 4,
    onEntry: async (c) => {
      if (!crashed && c.filesNew + c.filesChanged >= 11) {
        crashed = true
        await fx.crash()
      }
    },
  })
  await t.rejects(killed, 'the run dies with the store')
  fx = await fx.reopen()
  const pins: string[] = []
  for await (const p of fx.store.meta.pins('wf')) pins.push(p.version.toString())
  t.equal(pins.length, 1, 'no restore point of the half-copied tree')
  t.equal(await sha(fx, '/.snapshots/wf/latest/d/f00'), sha256(pseudoRandom('f0', 100)), 'the old restore point shows the old tree')
  t.equal((await fx.vfs.readdir('/.snapshots/wf/latest/d')).length, 30)

  const s = await runIngest(deps(fx), spec)
  t.ok(s.filesUnchanged >= 20 + 8, `copies checkpointed before the crash are not read again (${s.filesUnchanged} unchanged)`)
  t.ok(s.filesNew + s.filesChanged <= 20 - 8 + 4, `the rest is copied (${s.filesNew} new, ${s.filesChanged} changed)`)
  t.equal(await sameTree(t, fx, src, '/wf'), 41)
  t.equal(await sameTree(t, fx, src, '/.snapshots/wf/2026-11-22T02:00:00Z'), 41)
  const again: IngestSummary = await runIngest(deps(fx), spec)
  t.equal(again.bytesRead, 0, 'a third run reads nothing')
})

t.test('a source entry that vanishes mid-run is gone from the copy; a missing source is refused', async (t) => {
  const fx = await vfsStore()
  t.teardown(async () => { await fx.close(); await removeFixture(fx) })
  const src = t.testdir()
  await writeFile(join(src, 'a'), 'one\n')
  await writeFile(join(src, 'b'), 'two\n')
  const deps: Parameters<typeof runIngest>[0] = {
    vfs: fx.vfs, meta: fx.store.meta, log: silentLogger,
    restorePoints: restorePoints(fx, () => Date.now()),
  }
  await runIngest(deps, { workflow: 'e', dir: src, dest: '/e' })
  await writeFile(join(src, 'b'), 'two, changed\n')
  let moved = false
  const s = await runIngest(deps, {
    workflow: 'e', dir: src, dest: '/e',
  }, {
    onEntry: async () => {
      if (moved) return
      moved = true
      await rename(join(src, 'b'), join(src, 'c'))
    },
  })
  t.match(s, { errors: 0, deleted: 1 }, 'a source file that vanished mid-run is gone from the copy')
  await t.rejects(runIngest(deps, { workflow: 'e', dir: join(src, 'nope'), dest: '/e' }), { code: 'NOT_FOUND' })
  await mkdir(join(src, 'store/deep'), { recursive: true })
  await writeFile(join(src, 'store/deep/pack'), 'not to be ingested into itself\n')
  const alias = `${src}-alias`
  await symlink(join(src, 'store'), alias)
  t.teardown(() => rm(alias, { force: true }))
  const x = await runIngest(deps, { workflow: 'e', dir: src, dest: '/e', exclude: [`${alias}/.`] })
  t.equal(x.errors, 0)
  t.same((await fx.vfs.readdir('/e')).map((e) => e.name).sort(), ['a', 'c'], 'an excluded directory (by identity, any spelling) is skipped')
})
