import t from 'tap'
import { mkdir, open, readFile, rm } from 'node:fs/promises'
import { join } from 'node:path'
import { tempMount } from '../support/tierfs-mount.js'
import { pseudoRandom, sha256File, waitSealed } from '../support/e2e-io.js'
import {
  MiB, apply, clockOffset, coldRemount, fsckClean, ok, plan, reload, tierBytes, tieringConfig, writeData, writePolicy, xattr,
} from '../support/tiering-fixture.js'

// Placement: a chunk stays on the warmest tier any current file that references it demands.
// The store's own local object tier is enough here: what is tested is the migrator's choice.
t.test('chunks shared with a file that must stay on block are held warm', async (t) => {
  const m = await tempMount({ config: tieringConfig({}) })
  t.teardown(() => m.cleanup())
  await mkdir(join(m.mnt, 'hot'))
  await mkdir(join(m.mnt, 'archive'))
  const a = join(m.mnt, 'hot/a.bin')
  const b = join(m.mnt, 'archive/b.bin')
  const c = join(m.mnt, 'archive/c.bin')
  const aSha = await writeData(a, 'placement-a', 6 * MiB)
  // b: a copy of a (every chunk shared); c: a's first 3 MiB and 2 MiB of its own.
  await writeFileFrom(b, await readFile(a))
  const cData = Buffer.concat([(await readFile(a)).subarray(0, 3 * MiB), pseudoRandom('placement-c', 2 * MiB)])
  await writeFileFrom(c, cData)
  await waitSealed(m)
  const bSha = await sha256File(b)
  const cSha = await sha256File(c)
  t.equal(bSha, aSha)
  const before = await m.status()
  t.ok(before.dedupRatio > 1.5, `the copy deduplicated (ratio ${before.dedupRatio})`)

  await writePolicy(m, 'hot', ['name: hot', 'match: { path: "/hot/**" }', 'tiers:', '  - { tier: block }', ''].join('\n'))
  await writePolicy(m, 'archive', ['name: archive', 'match: { path: "/archive/**" }', 'tiers:', '  - { tier: block, days: 5 }', '  - { tier: object, days: 25 }', 'then: keep', ''].join('\n'))
  t.match(await reload(t, m), /policies in force: (archive, hot|hot, archive)/)
  await clockOffset(t, m, '6d')
  const p = await plan(t, m)
  t.same(p.rows.map((r) => [r.policy, r.transition, r.files]), [['archive', 'block -> object', 2]], 'the plan wants b and c on object')

  let r = await apply(m)
  t.equal(r.code, 0, `apply ${r.stderr}`)
  t.same(r.report.errors, [])
  t.ok(r.report.chunksHeldWarm >= 3, `chunks shared with /hot/a.bin held on block (${r.report.chunksHeldWarm})`)
  t.equal(r.report.filesMoved, 0, 'neither file counts as moved while part of it is held')
  t.ok(r.report.chunksCopied >= 1, `c.bin's own chunks went to object (${r.report.chunksCopied})`)
  t.equal(await xattr(b, 'user.tierfs.tier'), 'block', 'b.bin (all shared) stays on block')
  t.equal(await xattr(c, 'user.tierfs.tier'), 'block', 'c.bin (partly shared) keeps its tier until all of it can move')
  const held = await tierBytes(m)
  t.ok((held.object ?? 0) > 0 && (held.object ?? 0) < 3 * MiB, `only c.bin's own bytes are on object (${held.object})`)
  t.ok((held.block ?? 0) >= 6 * MiB, `a.bin's chunks stay on block (${held.block})`)
  const explain = await ok(t, m, ['policy', 'explain', m.mnt, '/archive/b.bin'])
  t.match(explain, /policy archive .*move.*belongs on object/, `explain says where b.bin belongs: ${explain.trim()}`)

  // The same pass again holds the same chunks: nothing moves while a.bin exists.
  r = await apply(m)
  t.equal(r.report.filesMoved, 0)
  t.ok(r.report.chunksHeldWarm >= 3)

  await rm(a)
  r = await apply(m)
  t.equal(r.code, 0, `apply after the delete ${r.stderr}`)
  t.equal(r.report.chunksHeldWarm, 0, 'nothing is held once a.bin is gone')
  t.equal(r.report.filesMoved, 2, 'b.bin and c.bin move')
  t.equal(await xattr(b, 'user.tierfs.tier'), 'object')
  t.equal(await xattr(c, 'user.tierfs.tier'), 'object')
  const moved = await tierBytes(m)
  t.ok((moved.object ?? 0) >= 8 * MiB - 64 * 1024, `object holds both files' unique chunks (${moved.object})`)
  await coldRemount(t, m, '6d')
  t.equal(await sha256File(b), bSha, 'b.bin reads back exact from object')
  t.equal(await sha256File(c), cSha, 'c.bin reads back exact from object')

  // By hand, whatever the policies say: the tree back to block.
  const manual = JSON.parse(await ok(t, m, ['migrate', join(m.mnt, 'archive'), '-r', '--to', 'block', '--json'])) as { filesMoved: number; errors: unknown[] }
  t.equal(manual.filesMoved, 2, 'tierfs migrate -r --to block moved both files')
  t.same(manual.errors, [])
  t.equal(await xattr(b, 'user.tierfs.tier'), 'block')
  t.equal((await tierBytes(m)).object ?? 0, 0, 'the object packs were freed')
  await coldRemount(t, m, '6d')
  t.equal(await sha256File(b), bSha, 'b.bin reads back exact from block')
  t.equal(await sha256File(c), cSha, 'c.bin reads back exact from block')
  const bad = await m.cli(['migrate', b, '--to', 'nowhere'])
  t.equal(bad.code, 2)
  t.match(bad.stderr, /unknown tier or target "nowhere" \(known: block, object, cold\)/, 'an unknown destination is named')
  await m.umount()
  await fsckClean(t, m, 'placement')
})

async function writeFileFrom(path: string, data: Buffer): Promise<void> {
  const fh = await open(path, 'w')
  try {
    for (let off = 0; off < data.length; off += MiB) await fh.write(data, off, Math.min(MiB, data.length - off), off)
  } finally {
    await fh.close()
  }
}
