import t, { type Test } from 'tap'
import { mkdir, open, readFile, readdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { tempMount, tierfs, type TestMount } from '../support/tierfs-mount.js'
import { mountedAt } from '../../src/fuse/mount.js'
import { fileRandomAccess, scanPack } from '../../src/chunk/pack-reader.js'
import { pseudoRandom, sha256, sha256File, waitSealed } from '../support/e2e-io.js'

const MiB = 1024 * 1024

/** A failed mount must leave nothing mounted and no daemon holding the store. */
async function assertNothingMounted(t: Test, mnt: string): Promise<void> {
  t.equal(await mountedAt(mnt), undefined, `nothing mounted at ${mnt}`)
}

t.test('mount refuses bad mount points', async (t) => {
  const m = await tempMount({ mount: false })
  t.teardown(() => m.cleanup())
  const cases: Array<{ what: string; mnt: string; expect: RegExp; setup?: () => Promise<void> }> = [
    { what: 'missing', mnt: join(m.dir, 'no/such/dir'), expect: /does not exist/ },
    { what: 'not a directory', mnt: join(m.dir, 'afile'), expect: /is not a directory/, setup: () => writeFile(join(m.dir, 'afile'), 'x') },
    {
      what: 'non-empty', mnt: join(m.dir, 'full'), expect: /is not empty/,
      setup: async () => { await mkdir(join(m.dir, 'full')); await writeFile(join(m.dir, 'full/x'), 'x') },
    },
  ]
  for (const c of cases) {
    await c.setup?.()
    const r = await m.cli(['mount', m.store, c.mnt])
    t.not(r.code, 0, `${c.what}: non-zero exit`)
    t.match(r.stderr, c.expect, `${c.what}: says why`)
    t.ok(r.stderr.includes(c.mnt), `${c.what}: names the mount point (${r.stderr.trim()})`)
    await assertNothingMounted(t, c.mnt)
  }
  // The store is free again after every refusal.
  await m.mount()
  t.same(await readdir(m.mnt), [])

  // Already mounted: a second store onto the same mount point.
  const other = await tempMount({ mount: false })
  t.teardown(() => other.cleanup())
  const r = await other.cli(['mount', other.store, m.mnt])
  t.not(r.code, 0, 'already mounted: non-zero exit')
  t.match(r.stderr, /already mounted/, 'already mounted: says why')
  t.ok(r.stderr.includes(m.mnt), `already mounted: names the mount point (${r.stderr.trim()})`)
  await writeFile(join(m.mnt, 'still'), 'works')
  t.equal(await readFile(join(m.mnt, 'still'), 'utf8'), 'works', 'the existing mount is untouched')
})

t.test('mount refuses bad stores', async (t) => {
  const m = await tempMount()
  t.teardown(() => m.cleanup())
  const mnt2 = join(m.dir, 'mnt2')
  await mkdir(mnt2)

  const missing = join(m.dir, 'no-store')
  let r = await m.cli(['mount', missing, mnt2])
  t.not(r.code, 0, 'missing store: non-zero exit')
  t.ok(r.stderr.includes(missing), `missing store: names it (${r.stderr.trim()})`)
  t.match(r.stderr, /not a tierfs store|does not exist|no such/i, 'missing store: says why')
  await assertNothingMounted(t, mnt2)

  const notStore = join(m.dir, 'plain-dir')
  await mkdir(notStore)
  await writeFile(join(notStore, 'file'), 'x')
  r = await m.cli(['mount', notStore, mnt2])
  t.not(r.code, 0, 'not a store: non-zero exit')
  t.ok(r.stderr.includes(notStore), `not a store: names it (${r.stderr.trim()})`)
  t.match(r.stderr, /not a tierfs store/, 'not a store: says why')
  await assertNothingMounted(t, mnt2)

  r = await m.cli(['mount', m.store, mnt2])
  t.not(r.code, 0, 'store in use: non-zero exit')
  t.match(r.stderr, /LOCKED|in use/, 'store in use: says why')
  t.ok(r.stderr.includes(m.store), `store in use: names the store (${r.stderr.trim()})`)
  await assertNothingMounted(t, mnt2)

  const fresh = await tempMount({ mount: false })
  t.teardown(() => fresh.cleanup())
  r = await fresh.cli(['mount', fresh.store, fresh.mnt, '-o', 'nonsense=1'])
  t.not(r.code, 0, 'unknown -o option on a free store: non-zero exit')
  t.match(r.stderr, /nonsense=1/, `names it (${r.stderr.trim()})`)
  await assertNothingMounted(t, fresh.mnt)
  await fresh.mount()
  t.pass('the store mounts after the refused option (no stale lock)')

  r = await m.cli(['fsck', m.store])
  t.not(r.code, 0, 'fsck of a mounted store is refused')
  t.match(r.stderr, /in use|LOCKED/, `fsck says why (${r.stderr.trim()})`)
  r = await tierfs(['status', join(m.dir, 'not-mounted-here')])
  t.not(r.code, 0, 'status of a path nothing serves')
})

/**
 * Writes a victim and a bystander file, stops the daemon (`umount`, or kill -9 so the pack is
 * left open), flips one byte inside the victim's first chunk, remounts and checks that only the
 * victim fails, that the log and fsck name the damage.
 */
async function corruptChunk(t: Test, stop: 'umount' | 'kill9'): Promise<void> {
  const m: TestMount = await tempMount()
  t.teardown(() => m.cleanup())
  const victim = pseudoRandom('victim', 3 * MiB)
  const bystander = pseudoRandom('bystander', 3 * MiB)
  await writeFile(join(m.mnt, 'victim'), victim)
  await waitSealed(m)
  await writeFile(join(m.mnt, 'bystander'), bystander)
  await mkdir(join(m.mnt, 'dir'))
  await writeFile(join(m.mnt, 'dir/small'), 'inline data')
  await waitSealed(m)
  if (stop === 'umount') await m.umount()
  else await m.kill9()

  // The victim's first chunk: the first record of the first pack (it was sealed first, alone).
  const packs: string[] = []
  const packDir = join(m.store, 'block/packs')
  for (const sub of await readdir(packDir)) for (const f of await readdir(join(packDir, sub))) if (f.endsWith('.pack')) packs.push(join(packDir, sub, f))
  let target: { pack: string; id: string; offset: number; length: number } | undefined
  for (const pack of packs) {
    const ra = fileRandomAccess(pack)
    const { entries } = await scanPack(ra)
    await (ra as { close?: () => Promise<void> }).close?.()
    for (const e of entries) {
      const fh = await open(pack, 'r')
      const b = Buffer.alloc(e.length)
      await fh.read(b, 0, e.length, e.offset)
      await fh.close()
      if (e.codec === 0 && b.equals(victim.subarray(0, e.length))) target = { pack, id: e.id, offset: e.offset, length: e.length }
    }
  }
  if (target === undefined) throw new Error(`the victim's first chunk is in none of ${packs.length} packs`)
  t.comment(`corrupting chunk ${target.id} in ${target.pack}`)
  const fh = await open(target.pack, 'r+')
  const one = Buffer.alloc(1)
  const at = target.offset + Math.floor(target.length / 2)
  await fh.read(one, 0, 1, at)
  one[0] = one[0]! ^ 0xff
  await fh.write(one, 0, 1, at)
  await fh.close()

  await m.mount()
  const err = await readFile(join(m.mnt, 'victim')).then(() => undefined, (e: NodeJS.ErrnoException) => e)
  t.equal(err?.code, 'EIO', 'reading the damaged file fails with EIO')
  t.equal(await sha256File(join(m.mnt, 'bystander')), sha256(bystander), 'another file reads fine')
  t.equal(await readFile(join(m.mnt, 'dir/small'), 'utf8'), 'inline data', 'an inline file reads fine')
  // Bytes of the victim past its first chunk are still readable.
  const r = await open(join(m.mnt, 'victim'), 'r')
  const tail = Buffer.alloc(4096)
  const { bytesRead } = await r.read(tail, 0, 4096, victim.length - 4096)
  await r.close()
  t.equal(bytesRead, 4096)
  t.ok(tail.equals(victim.subarray(victim.length - 4096)), 'the victim\'s undamaged chunks still read')
  t.same((await readdir(m.mnt)).sort(), ['bystander', 'dir', 'victim'], 'listing works')

  const log = (await readFile(join(m.store, 'log/tierfs.log'), 'utf8')).split('\n').filter((l) => l.includes(target!.id))
  t.ok(log.length > 0, 'the log mentions the chunk id')
  t.comment(`log line: ${log[0]}`)
  const rec = log.map((l) => JSON.parse(l) as Record<string, any>).find((l) => l.op === 'read')
  t.equal(rec?.path, '/victim', 'the log line names the file')
  t.equal(rec?.level, 'error')
  t.match(JSON.stringify(rec?.err), /CORRUPT/, 'with the error code')

  await m.umount()
  const fsck = await m.cli(['fsck', m.store, '--json'])
  t.equal(fsck.code, 1, 'fsck exits 1')
  const rep = JSON.parse(fsck.stdout) as { ok: boolean; problems: Array<{ kind: string; message: string }> }
  t.equal(rep.ok, false)
  const p = rep.problems.find((x) => x.kind === 'chunk-corrupt')
  t.ok(p !== undefined && p.message.includes(target.id), `fsck reports the corrupt chunk (${JSON.stringify(rep.problems)})`)
  t.equal(rep.problems.filter((x) => x.kind !== 'chunk-corrupt').length, 0, 'and nothing else')
  const human = await m.cli(['fsck', m.store])
  t.equal(human.code, 1)
  t.match(human.stdout, new RegExp(`PROBLEM chunk-corrupt: chunk ${target.id}`), 'the human report names the chunk')
  await m.mount()
}

t.test('a corrupt chunk fails reads of its file only', (t) => corruptChunk(t, 'umount'))

t.test('a corrupt chunk in a pack left open by a crash fails reads of its file only', (t) => corruptChunk(t, 'kill9'))
