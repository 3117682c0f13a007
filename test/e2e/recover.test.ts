import t from 'tap'
import { createHash } from 'node:crypto'
import { createReadStream } from 'node:fs'
import { lstat, mkdir, mkdtemp, open, readdir, readlink, rm, symlink, utimes, lutimes, writeFile, chmod, readFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pseudoRandom, waitSealed } from '../support/e2e-io.js'
import { run, tempMount, tierfs, type TestMount } from '../support/tierfs-mount.js'

const MiB = 1024 * 1024

interface Entry { path: string; type: string; mode: number; mtimeNs: string; uid: number; gid: number; size: number; content: string }

/** Every entry under `root` (not root itself), sorted: type, permission bits, mtime (ns), owner, size, SHA-256 or link target. */
async function treeOf(root: string): Promise<Entry[]> {
  const out: Entry[] = []
  const walk = async (rel: string): Promise<void> => {
    for (const name of (await readdir(join(root, rel))).sort()) {
      const p = join(rel, name)
      const st = await lstat(join(root, p), { bigint: true })
      const type = st.isDirectory() ? 'dir' : st.isSymbolicLink() ? 'symlink' : st.isFile() ? 'file' : 'other'
      const content = type === 'file' ? await sha256File(join(root, p)) : type === 'symlink' ? await readlink(join(root, p)) : ''
      out.push({ path: p, type, mode: Number(st.mode & 0o7777n), mtimeNs: st.mtimeNs.toString(), uid: Number(st.uid), gid: Number(st.gid), size: type === 'dir' ? 0 : Number(st.size), content })
      if (type === 'dir') await walk(p)
    }
  }
  await walk('')
  return out
}

async function sha256File(path: string): Promise<string> {
  const h = createHash('sha256')
  for await (const b of createReadStream(path)) h.update(b as Buffer)
  return h.digest('hex')
}

/** A source tree with inline and chunked files, a sparse-ish zero file, a symlink, odd modes and past mtimes. */
async function sourceTree(dir: string): Promise<void> {
  await mkdir(join(dir, 'sub/deeper'), { recursive: true })
  await writeFile(join(dir, 'a.txt'), 'small enough to live inline in the metadata\n')
  await writeFile(join(dir, 'big.bin'), pseudoRandom('recover-big', 3 * MiB + 1234))
  await writeFile(join(dir, 'sub/mid.bin'), pseudoRandom('recover-mid', 1536 * 1024))
  await writeFile(join(dir, 'sub/zeros.bin'), Buffer.alloc(MiB))
  await writeFile(join(dir, 'sub/deeper/run.sh'), '#!/bin/sh\necho hi\n')
  await symlink('../a.txt', join(dir, 'sub/link'))
  await chmod(join(dir, 'big.bin'), 0o600)
  await chmod(join(dir, 'sub/deeper/run.sh'), 0o755)
  await chmod(join(dir, 'sub'), 0o750)
  let s = Date.UTC(2021, 2, 3, 4, 5, 6) / 1000
  for (const p of ['a.txt', 'big.bin', 'sub/mid.bin', 'sub/zeros.bin', 'sub/deeper/run.sh']) await utimes(join(dir, p), s, (s += 3600.25))
  await lutimes(join(dir, 'sub/link'), s, (s += 60))
  for (const p of ['sub/deeper', 'sub']) await utimes(join(dir, p), s, (s += 7))
}

async function ok(t: Tap.Test, args: string[]): Promise<string> {
  const r = await tierfs(args)
  if (r.code !== 0) t.fail(`tierfs ${args.join(' ')}: exit ${r.code}: ${r.stderr}${r.stdout}`)
  return r.stdout
}

async function cmd(t: Tap.Test, c: string, args: string[]): Promise<void> {
  const r = await run(c, args)
  if (r.code !== 0) t.fail(`${c} ${args.join(' ')}: exit ${r.code}: ${r.stderr}`)
}

/** A store whose object tier is a directory outside it (what survives the host). */
async function setup(t: Tap.Test): Promise<{ m: TestMount; objectDir: string; src: string; config: string }> {
  const objectDir = await mkdtemp(join(tmpdir(), 'tierfs-object-'))
  const src = await mkdtemp(join(tmpdir(), 'tierfs-src-'))
  t.teardown(() => rm(objectDir, { recursive: true, force: true }))
  t.teardown(() => rm(src, { recursive: true, force: true }))
  const m = await tempMount({
    config: {
      tiers: { object: { type: 'local', path: objectDir } },
      migrate: { schedule: '' },
      checkpoint: { everyHours: 0 },
    },
  })
  t.teardown(() => m.cleanup())
  await sourceTree(src)
  await mkdir(join(m.mnt, 'data'))
  await cmd(t, 'cp', ['-a', `${src}/.`, join(m.mnt, 'data')])
  await waitSealed(m)
  return { m, objectDir, src, config: join(m.dir, 'config.json') }
}

async function snapshot(t: Tap.Test, m: TestMount): Promise<string> {
  return (JSON.parse(await ok(t, ['snapshot', 'create', m.mnt, '--workflow', 'w', '--path', '/data', '--json'])) as { name: string }).name
}

async function checkpoint(t: Tap.Test, m: TestMount): Promise<Record<string, any>> {
  return JSON.parse(await ok(t, ['checkpoint', m.mnt, '--json'])) as Record<string, any>
}

/** Loses the host: unmounts and deletes the whole store directory (the object tier lives elsewhere). */
async function loseHost(m: TestMount): Promise<void> {
  await m.umount()
  await rm(m.store, { recursive: true, force: true })
}

/** Mounts the recovered store; unmounted in teardown. */
async function mountNew(t: Tap.Test, m: TestMount, store: string): Promise<{ mnt: string; unmount(): Promise<void> }> {
  const mnt = join(m.dir, 'mnt-new')
  await mkdir(mnt, { recursive: true })
  const r = await tierfs(['mount', store, mnt])
  if (r.code !== 0) throw new Error(`mount of the recovered store failed: ${r.stderr}`)
  let mounted = true
  t.teardown(async () => { if (mounted) await tierfs(['umount', mnt]).then((u) => u.code === 0 || run('fusermount', ['-uz', mnt])) })
  return { mnt, unmount: async () => { await ok(t, ['umount', mnt]); mounted = false } }
}

async function copyOut(t: Tap.Test, from: string, to: string): Promise<void> {
  await rm(to, { recursive: true, force: true })
  await mkdir(to)
  await cmd(t, 'cp', ['-a', `${from}/.`, to])
}

t.test('the object tier alone brings back every restore point: checkpoint, lose the host, recover, mount', async (t) => {
  const { m, objectDir, src, config } = await setup(t)
  const rp1 = await snapshot(t, m)
  const first = await checkpoint(t, m)
  t.equal(first.kind, 'full', 'the first checkpoint is full')

  // After the full checkpoint: a new file, a move of everything to the object tier, a second restore point.
  await writeFile(join(m.mnt, 'data/more.bin'), pseudoRandom('recover-more', MiB + 99))
  await waitSealed(m)
  const moved = JSON.parse(await ok(t, ['migrate', join(m.mnt, 'data'), '--to', 'object', '-r'])) as Record<string, any>
  t.same(moved.errors, [], 'migrate reports no errors')
  t.ok(moved.filesMoved >= 5, `migrate moved ${moved.filesMoved} files to the object tier`)
  const rp2 = await snapshot(t, m)
  const second = await checkpoint(t, m)
  t.equal(second.kind, 'delta', 'the second checkpoint is a delta')
  t.equal(second.base, first.key.replace('meta/checkpoints/', ''), 'against the first')
  const moreSha = createHash('sha256').update(pseudoRandom('recover-more', MiB + 99)).digest('hex')

  await loseHost(m)
  t.same((await readdir(join(objectDir, 'meta/checkpoints'))).sort(), [first.key, second.key].map((k: string) => k.replace('meta/checkpoints/', '')).sort(),
    'the object directory holds both checkpoints')

  const fresh = join(m.dir, 'new-store')
  const rec = JSON.parse(await ok(t, ['recover', '--from', 'object', fresh, '--config', config, '--json'])) as Record<string, any>
  t.equal(rec.checkpoint.name, second.key.replace('meta/checkpoints/', ''), 'recovered from the newest checkpoint')
  t.equal(rec.checkpoint.kind, 'delta')
  t.equal(rec.checkpoint.head, second.head)
  t.same(rec.skipped, [])
  t.equal(rec.reconcile.chunks.lost, 0, 'no chunk is lost')
  t.same(rec.reconcile.lost, { current: [], restorePoints: [] }, 'no file is lost')
  t.ok((rec.reconcile.packs.dropped.block ?? 0) > 0, `the block packs are dropped (${rec.reconcile.packs.dropped.block})`)
  t.ok(rec.reconcile.packs.kept > 0, `${rec.reconcile.packs.kept} object packs kept`)

  const { mnt, unmount } = await mountNew(t, m, fresh)
  const listed = (await readdir(join(mnt, '.snapshots/w'))).filter((n) => /^\d{4}-/.test(n)).sort()
  t.same(listed, [rp1, rp2].sort(), 'both restore points are there')
  const want = await treeOf(src)
  const out1 = join(m.dir, 'out1')
  await copyOut(t, join(mnt, '.snapshots/w', rp1), out1)
  t.same(await treeOf(out1), want, 'restore point 1 copies out equal to the source: bytes, modes, mtimes, owners, link')
  const out2 = join(m.dir, 'out2')
  await copyOut(t, join(mnt, '.snapshots/w', rp2), out2)
  const tree2 = await treeOf(out2)
  t.same(tree2.filter((e) => e.path !== 'more.bin'), want, 'restore point 2 holds the source')
  t.equal(tree2.find((e) => e.path === 'more.bin')?.content, moreSha, 'and the file written after the full checkpoint')
  const out3 = join(m.dir, 'out3')
  await copyOut(t, join(mnt, 'data'), out3)
  t.same(await treeOf(out3), tree2, 'the current tree is the same')
  await unmount()
  const fsck = await tierfs(['fsck', fresh, '--json'])
  const report = JSON.parse(fsck.stdout) as { ok: boolean; problems: unknown[]; checked: { bytesVerified: number } }
  t.equal(fsck.code, 0, 'fsck of the recovered store exits 0')
  t.same(report.problems, [], 'fsck finds nothing wrong')
  t.ok(report.checked.bytesVerified >= 5 * MiB, `fsck read and verified ${report.checked.bytesVerified} bytes`)
})

t.test('data that lived only on the block tier is reported lost, exactly; everything else reads', async (t) => {
  const { m, src, config } = await setup(t)
  const moved = JSON.parse(await ok(t, ['migrate', join(m.mnt, 'data'), '--to', 'object', '-r'])) as Record<string, any>
  t.same(moved.errors, [])
  const rp1 = await snapshot(t, m)
  await writeFile(join(m.mnt, 'data/late.bin'), pseudoRandom('late', 2 * MiB))
  await writeFile(join(m.mnt, 'data/sub/late2.bin'), pseudoRandom('late2', MiB + 5))
  await writeFile(join(m.mnt, 'data/tiny-late.txt'), 'inline: survives with the metadata\n')
  await mkdir(join(m.mnt, 'other'))
  await writeFile(join(m.mnt, 'other/blockonly.bin'), pseudoRandom('blockonly', 700_000))
  await waitSealed(m)
  const rp2 = await snapshot(t, m)
  t.equal((await checkpoint(t, m)).kind, 'full')
  await loseHost(m)

  const fresh = join(m.dir, 'new-store')
  const text = await ok(t, ['recover', '--from', 'object', fresh, '--config', config])
  t.match(text, /LOST/, 'the text report says what is lost')
  t.match(text, new RegExp(`/\\.snapshots/w/${rp2.replace(/[.:]/g, '\\$&')}/late\\.bin`))
  await rm(fresh, { recursive: true, force: true })
  const rec = JSON.parse(await ok(t, ['recover', '--from', 'object', fresh, '--config', config, '--json'])) as Record<string, any>
  t.same([...rec.reconcile.lost.current].sort(), ['/data/late.bin', '/data/sub/late2.bin', '/other/blockonly.bin'], 'exactly the block-only files of the current tree')
  t.same(rec.reconcile.lost.restorePoints, [{ workflow: 'w', name: rp2, files: ['/late.bin', '/sub/late2.bin'] }],
    'exactly the block-only files of the one restore point that has them')
  t.ok(rec.reconcile.chunks.lost >= 4, `${rec.reconcile.chunks.lost} chunks lost`)

  const { mnt, unmount } = await mountNew(t, m, fresh)
  const out1 = join(m.dir, 'out1')
  await copyOut(t, join(mnt, '.snapshots/w', rp1), out1)
  t.same(await treeOf(out1), await treeOf(src), 'the restore point from before is whole')
  t.equal(await readFile(join(mnt, 'data/tiny-late.txt'), 'utf8'), 'inline: survives with the metadata\n', 'a small late file lives in the metadata: readable')
  for (const p of ['data/big.bin', 'data/sub/mid.bin', 'data/sub/zeros.bin', `.snapshots/w/${rp2}/big.bin`]) {
    t.ok((await sha256File(join(mnt, p))).length === 64, `${p} reads`)
  }
  const readErr = async (p: string): Promise<string> => {
    const fh = await open(p, 'r')
    try {
      await fh.read(Buffer.alloc(4096), 0, 4096, 0)
      return 'ok'
    } catch (err) {
      return (err as NodeJS.ErrnoException).code ?? String(err)
    } finally {
      await fh.close()
    }
  }
  t.equal(await readErr(join(mnt, 'data/late.bin')), 'EIO', 'a lost file fails with EIO')
  t.equal(await readErr(join(mnt, `.snapshots/w/${rp2}/sub/late2.bin`)), 'EIO', 'also inside its restore point')
  await unmount()
  const fsck = await tierfs(['fsck', fresh, '--json'])
  const report = JSON.parse(fsck.stdout) as { problems: Array<{ kind: string }> }
  t.ok(report.problems.length > 0 && report.problems.every((p) => p.kind === 'missing-chunk'), 'fsck reports only the lost chunks')
})

t.test('packs moved to the object tier after the checkpoint are found by their trailers and adopted', async (t) => {
  const { m, src, config } = await setup(t)
  const rp = await snapshot(t, m)
  t.equal((await checkpoint(t, m)).kind, 'full', 'checkpoint while every chunk is on the block tier')
  const moved = JSON.parse(await ok(t, ['migrate', join(m.mnt, 'data'), '--to', 'object', '-r'])) as Record<string, any>
  t.same(moved.errors, [])
  t.ok(moved.packsWritten >= 1, `the move wrote ${moved.packsWritten} object packs the checkpoint does not know`)
  await loseHost(m)

  const fresh = join(m.dir, 'new-store')
  const rec = JSON.parse(await ok(t, ['recover', '--from', 'object', fresh, '--config', config, '--json'])) as Record<string, any>
  t.equal(rec.reconcile.packs.adopted, moved.packsWritten, 'every pack the move wrote is adopted')
  t.ok(rec.reconcile.chunks.repointed >= 5, `${rec.reconcile.chunks.repointed} chunks repointed from the lost block packs`)
  t.equal(rec.reconcile.chunks.lost, 0, 'nothing lost')
  t.same(rec.reconcile.lost, { current: [], restorePoints: [] })
  const { mnt, unmount } = await mountNew(t, m, fresh)
  const out = join(m.dir, 'out')
  await copyOut(t, join(mnt, '.snapshots/w', rp), out)
  t.same(await treeOf(out), await treeOf(src), 'the restore point copies out equal to the source')
  await unmount()
  const fsck = await tierfs(['fsck', fresh, '--json'])
  t.equal(fsck.code, 0, 'fsck of the recovered store exits 0')
  t.same((JSON.parse(fsck.stdout) as { problems: unknown[] }).problems, [], 'fsck finds nothing wrong')
})

t.test('the daemon writes checkpoints on its schedule', async (t) => {
  const objectDir = await mkdtemp(join(tmpdir(), 'tierfs-object-'))
  t.teardown(() => rm(objectDir, { recursive: true, force: true }))
  // 0.0005 h = 1.8 s: the first scheduled run comes 1.8 s after the first mount.
  const m = await tempMount({ config: { tiers: { object: { type: 'local', path: objectDir } }, checkpoint: { everyHours: 0.0005, keep: 2 } } })
  t.teardown(() => m.cleanup())
  await writeFile(join(m.mnt, 'f.txt'), 'scheduled\n')
  let status: Record<string, any> = {}
  for (let i = 0; i < 100 && !((status.checkpoints?.runs ?? 0) >= 3); i++) {
    await new Promise((r) => setTimeout(r, 200))
    status = await m.status()
  }
  t.ok(status.checkpoints.runs >= 3, `the daemon ran ${status.checkpoints.runs} scheduled checkpoints`)
  t.equal(status.checkpoints.failures, 0)
  t.match(status.checkpoints.last, { key: /^meta\/checkpoints\/.*\.tfck$/ })
  const names = await readdir(join(objectDir, 'meta/checkpoints'))
  t.ok(names.length >= 2 && names.length <= 3, `keep 2 holds the newest two and their base (${names.join(', ')})`)
})
