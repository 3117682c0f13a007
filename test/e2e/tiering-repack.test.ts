import t from 'tap'
import { mkdir, rm } from 'node:fs/promises'
import { join } from 'node:path'
import { tempMount } from '../support/tierfs-mount.js'
import { sha256File, waitSealed } from '../support/e2e-io.js'
import { S3rverProcess } from '../support/s3rver-process.js'
import {
  MiB, apply, chainPolicy, clockOffset, coldRemount, fsckClean, ok, reload, s3Keys, s3Target, tieringConfig, useTieringCredentials,
  writeData, writePolicy,
} from '../support/tiering-fixture.js'

await useTieringCredentials()

t.test('a sparse pack on s3 is repacked by a policy pass once deletes are collected, and its object removed', async (t) => {
  const s3 = await S3rverProcess.start({ buckets: ['tierfs-repack'] })
  t.teardown(() => s3.destroy())
  const m = await tempMount({ config: tieringConfig({ 's3-primary': s3Target(s3.endpoint, 'tierfs-repack') }) })
  t.teardown(() => m.cleanup())
  await mkdir(join(m.mnt, 'hbase'))
  const names = ['a', 'b', 'c', 'd']
  const sums = new Map<string, string>()
  for (const n of names) sums.set(n, await writeData(join(m.mnt, 'hbase', `${n}.bin`), `repack-${n}`, 900 * 1024))
  await waitSealed(m)
  await writePolicy(m, 'hbase', chainPolicy({ name: 'hbase', path: '/hbase/**', object: 's3-primary', then: 'keep' }))
  await reload(t, m)

  await clockOffset(t, m, '6d')
  const moved = await apply(m)
  t.same(moved.report.errors, [])
  t.equal(moved.report.filesMoved, 4)
  const before = await s3Keys(s3.endpoint, 'tierfs-repack')
  const packsBefore = before.filter((k) => k.key.endsWith('.pack'))
  t.equal(packsBefore.length, 1, `one pack object holds the four files (${JSON.stringify(packsBefore)})`)

  // Three files go; past the history window their versions are collected and the pack is sparse.
  for (const n of ['b', 'c', 'd']) await rm(join(m.mnt, 'hbase', `${n}.bin`))
  await clockOffset(t, m, '14d')
  const pruned = JSON.parse(await ok(t, m, ['prune', m.mnt, '--json'])) as { packsSparse: number }
  t.equal(pruned.packsSparse, 1, 'prune leaves the sparse s3 pack to the migrator')

  const r = await apply(m)
  t.same(r.report.errors, [])
  t.equal(r.report.packsRepacked, 1)
  t.equal(r.report.packsFreed, 1)
  const after = (await s3Keys(s3.endpoint, 'tierfs-repack')).filter((k) => k.key.endsWith('.pack'))
  t.equal(after.length, 1, 'one pack object again')
  t.not(after[0]?.key, packsBefore[0]?.key, 'a new one: the sparse object is deleted')
  t.ok((after[0]?.size ?? Infinity) < (packsBefore[0]?.size ?? 0) / 2, `${packsBefore[0]?.size} -> ${after[0]?.size} bytes`)

  await coldRemount(t, m, '14d')
  t.equal(await sha256File(join(m.mnt, 'hbase', 'a.bin')), sums.get('a'), 'the file left reads back exact from s3 after a remount')
  await m.umount()
  await fsckClean(t, m, 'after the repack')
})
