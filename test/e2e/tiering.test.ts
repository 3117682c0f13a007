import t from 'tap'
import { readFile, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { tempMount } from '../support/tierfs-mount.js'
import { firstRead, sha256File, waitSealed } from '../support/e2e-io.js'
import { startAzurite, DEV_ACCOUNT, DEV_KEY } from '../support/azurite-process.js'
import {
  MiB, apply, azureTarget, chainPolicy, clockOffset, coldRemount, dropCaches, eventually, fsckClean, glacierTarget, plan, startChain,
  reload, s3Keys, s3Target, startS3AndGlacier, tierBytes, tieringConfig, useAzuriteCredentials, useTieringCredentials,
  writeData, writePolicy, xattr,
} from '../support/tiering-fixture.js'

await useTieringCredentials()

const FILE_SIZE = 6 * MiB

t.test('a file goes block -> s3 -> glacier -> deleted as its policy ages, readable at every stage', async (t) => {
  const { s3, glacier } = await startS3AndGlacier(t, { bucket: 'tierfs-chain', vault: 'tierfs-chain', jobDelayMs: 3000 })
  const m = await tempMount({
    config: tieringConfig({ 's3-primary': s3Target(s3.endpoint, 'tierfs-chain'), 'glacier-archive': glacierTarget(glacier.endpoint, 'tierfs-chain') }),
  })
  t.teardown(() => m.cleanup())
  const { a, aSha, control, controlSha } = await startChain(t, m, { seed: 'chain', size: FILE_SIZE, name: 'hbase-nightly', object: 's3-primary', cold: 'glacier-archive' })

  // Day 0: nothing to do.
  let p = await plan(t, m)
  t.equal(p.files, 0, 'day 0: the plan is empty')
  t.equal(await xattr(a, 'user.tierfs.tier'), 'block')
  t.equal(await xattr(a, 'user.tierfs.state'), 'resident')
  const start = await tierBytes(m)
  t.ok((start.block ?? 0) >= FILE_SIZE, `day 0: block holds the data (${start.block} bytes)`)

  // Day 6: block -> s3-primary.
  await clockOffset(t, m, '6d')
  p = await plan(t, m)
  t.same(p.rows.map((r) => [r.policy, r.transition, r.files, r.bytes]), [['hbase-nightly', 'block -> s3-primary', 1, FILE_SIZE]], 'day 6: the plan moves a.bin to s3-primary')
  let r = await apply(m)
  t.equal(r.code, 0, `day 6: apply succeeds ${r.stderr}`)
  t.same(r.report.errors, [])
  t.equal(r.report.filesMoved, 1)
  t.ok(r.report.packsFreed > 0, `day 6: block packs freed right after the commit (${r.report.packsFreed})`)
  const day6 = await tierBytes(m)
  t.ok((day6['s3-primary'] ?? 0) >= FILE_SIZE, `day 6: s3-primary holds the data (${day6['s3-primary']} bytes)`)
  // All but the block tier's open pack (a.bin's last chunks; the sealer still appends to it).
  t.ok((day6.block ?? 0) <= (start.block ?? 0) - FILE_SIZE / 2, `day 6: block bytes dropped ${start.block} -> ${day6.block}`)
  const objects = await s3Keys(s3.endpoint, 'tierfs-chain')
  t.ok(objects.length > 0 && objects.every((o) => /^packs\/[0-9a-f]{2}\/[0-9a-f]{32}\.pack$/.test(o.key)), `the bucket holds packs (${objects.length})`)
  t.equal(objects.reduce((n, o) => n + o.size, 0), day6['s3-primary'], 'the bucket holds exactly the bytes status reports')
  t.equal(await xattr(a, 'user.tierfs.tier'), 'object')
  t.equal(await xattr(a, 'user.tierfs.state'), 'resident')
  await dropCaches()
  t.equal(await sha256File(a), aSha, 'day 6: a.bin reads back exact (page cache dropped)')
  await coldRemount(t, m, '6d')
  t.equal(await sha256File(a), aSha, 'day 6: a.bin reads back exact from s3 after a remount')
  t.equal(await sha256File(control), controlSha, 'the file outside the policy is untouched')
  // The open block pack the file was sealed into is finished by the clean unmount; the next pass frees it.
  r = await apply(m)
  t.equal(r.code, 0)
  t.equal(r.report.filesMoved, 0, 'day 6 again: nothing more to move')
  const day6b = await tierBytes(m)
  t.ok(r.report.packsFreed >= 1, `day 6 again: the pass freed the dead pack (${r.report.packsFreed})`)
  t.equal(day6b.block ?? 0, 0, `day 6 again: nothing left on block (${day6.block} -> ${day6b.block ?? 0})`)

  // Day 31: s3-primary -> glacier-archive.
  await clockOffset(t, m, '31d')
  p = await plan(t, m)
  t.same(p.rows.map((r) => r.transition), ['s3-primary -> glacier-archive'])
  r = await apply(m)
  t.equal(r.code, 0, `day 31: apply succeeds ${r.stderr}`)
  t.same(r.report.errors, [])
  t.equal(r.report.filesMoved, 1)
  const day31 = await tierBytes(m)
  t.ok((day31['glacier-archive'] ?? 0) >= FILE_SIZE, `day 31: the vault holds the data (${day31['glacier-archive']} bytes)`)
  t.equal(day31['s3-primary'] ?? 0, 0, 'day 31: s3-primary packs freed')
  t.same(await s3Keys(s3.endpoint, 'tierfs-chain'), [], 'day 31: the bucket is empty')
  t.equal((await glacier.stats()).vaults['tierfs-chain']?.archives, 1, 'one archive in the vault')
  t.equal(await xattr(a, 'user.tierfs.tier'), 'cold')

  // A cold read: EAGAIN while the recall runs, then the data.
  await coldRemount(t, m, '31d')
  t.equal(await xattr(a, 'user.tierfs.state'), 'cold', 'after a remount the file is cold')
  const t0 = Date.now()
  t.equal(await firstRead(a), 'EAGAIN', 'a read of cold data fails with EAGAIN while the recall runs')
  const waited = Date.now() - t0
  t.ok(waited >= 900 && waited < 2900, `the read waited recall.waitSeconds (1 s) first: ${waited} ms`)
  t.equal(await xattr(a, 'user.tierfs.state'), 'recalling')
  t.equal(await xattr(a, 'user.tierfs.tier'), 'cold')
  const status = await m.status()
  t.ok(status.migrations.recallsInFlight >= 1, 'status shows the recall in flight')
  await eventually('the recall', 20_000, async () => ((await firstRead(a)) === 'ok' ? true : undefined), 500)
  t.ok(Date.now() - t0 >= 2500, 'the data became readable once the job completed (3 s)')
  t.equal(await xattr(a, 'user.tierfs.state'), 'staged')
  t.equal(await sha256File(a), aSha, 'day 31: a.bin reads back exact from the recalled archive')

  // tierfs recall --wait: a file written now is 31 days old on the injected clock, so it goes
  // straight from block to the vault.
  const b = join(m.mnt, 'hbase/b.bin')
  const bSha = await writeData(b, 'chain-b', 3 * MiB)
  await waitSealed(m)
  r = await apply(m)
  t.equal(r.code, 0)
  t.equal(r.report.filesMoved, 1, 'b.bin moved block -> glacier-archive')
  await coldRemount(t, m, '31d')
  t.equal(await xattr(b, 'user.tierfs.state'), 'cold')
  const t1 = Date.now()
  const recall = await m.cli(['recall', b, '--wait', '--json'])
  t.equal(recall.code, 0, recall.stderr)
  t.same(JSON.parse(recall.stdout), { files: 1, packs: 1, warm: 1 }, 'tierfs recall --wait reports the pack warm')
  t.match(recall.stderr, /^recalling 1 files: \[-{30}\] 0\/1 packs warm/m, 'a progress bar on stderr while it waits')
  t.match(recall.stderr, /^recalling 1 files: \[#{30}\] 1\/1 packs warm/m, 'ending full')
  t.ok(Date.now() - t1 >= 2500, `recall --wait waited for the job (${Date.now() - t1} ms)`)
  t.equal(await xattr(b, 'user.tierfs.state'), 'staged')
  t.equal(await firstRead(b), 'ok', 'no EAGAIN after recall --wait')
  t.equal(await sha256File(b), bSha, 'b.bin reads back exact')

  // Day 211: past the 210-day chain, then: delete.
  await clockOffset(t, m, '211d')
  p = await plan(t, m)
  t.same(p.rows.map((r) => [r.transition, r.files]), [['glacier-archive -> delete', 2]])
  r = await apply(m)
  t.equal(r.code, 0)
  t.equal(r.report.filesDeleted, 2, 'both files deleted past the chain')
  await t.rejects(stat(a), { code: 'ENOENT' })
  await t.rejects(stat(b), { code: 'ENOENT' })
  t.equal(await readFile(control).then((d) => d.length), 4096, 'the file outside the policy stays')
  t.equal(await sha256File(control), controlSha)
  await m.umount()
  const f = await fsckClean(t, m, 'after the chain')
  t.ok(f.checked.coldUnverified >= 0)
})

t.test('the object stage through azurite', async (t) => {
  const az = await startAzurite()
  t.teardown(() => az.stop())
  await az.createContainer('tierfs-chain')
  useAzuriteCredentials(az.accountUrl, DEV_ACCOUNT, DEV_KEY)
  const m = await tempMount({ config: tieringConfig({ 'azure-primary': azureTarget(az.accountUrl, 'tierfs-chain') }) })
  t.teardown(() => m.cleanup())
  await import('node:fs/promises').then((fs) => fs.mkdir(join(m.mnt, 'hbase')))
  const a = join(m.mnt, 'hbase/a.bin')
  const aSha = await writeData(a, 'azure-a', FILE_SIZE)
  await waitSealed(m)
  await writePolicy(m, 'hbase', chainPolicy({ name: 'hbase-azure', path: '/hbase/**', object: 'azure-primary', then: 'keep' }))
  await reload(t, m)
  const start = await tierBytes(m)
  await clockOffset(t, m, '6d')
  const r = await apply(m)
  t.equal(r.code, 0, `apply succeeds ${r.stderr}`)
  t.same(r.report.errors, [])
  t.equal(r.report.filesMoved, 1)
  const after = await tierBytes(m)
  t.ok((after['azure-primary'] ?? 0) >= FILE_SIZE, `azure-primary holds the data (${after['azure-primary']} bytes)`)
  t.ok((after.block ?? 0) <= (start.block ?? 0) - FILE_SIZE / 2, `block bytes dropped ${start.block} -> ${after.block}`)
  t.equal(await xattr(a, 'user.tierfs.tier'), 'object')
  await coldRemount(t, m, '6d')
  t.equal(await sha256File(a), aSha, 'a.bin reads back exact from azurite after a remount')
  // Day 31 with no cold target named: the store's own cold tier (a local directory).
  await clockOffset(t, m, '31d')
  const r2 = await apply(m)
  t.equal(r2.code, 0, `day 31 apply ${r2.stderr}`)
  t.equal(r2.report.filesMoved, 1)
  const cold = await tierBytes(m)
  t.equal(cold['azure-primary'] ?? 0, 0, 'azure packs freed')
  t.ok((cold.cold ?? 0) >= FILE_SIZE, 'the store cold tier holds it')
  t.equal(await xattr(a, 'user.tierfs.tier'), 'cold')
  await coldRemount(t, m, '31d')
  t.equal(await sha256File(a), aSha, 'a.bin reads back exact from the local cold tier')
  await m.umount()
  await fsckClean(t, m, 'azure stage')
})
