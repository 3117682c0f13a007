import t from 'tap'
import { readFile, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { BlobServiceClient, StorageSharedKeyCredential } from '@azure/storage-blob'
import { tempMount, type TestMount } from '../support/tierfs-mount.js'
import { firstRead, sha256File, waitSealed } from '../support/e2e-io.js'
import { startAzurite, DEV_ACCOUNT, DEV_KEY } from '../support/azurite-process.js'
import { FaultProxy } from '../support/fault-proxy.js'
import {
  MiB, apply, azureArchiveTarget, azureBlobs, azureTarget, clockOffset, coldRemount, eventually, fsckClean, ok, startChain,
  tierBytes, tieringConfig, useAzuriteCredentials, writeData, xattr, type AzureBlobInfo,
} from '../support/tiering-fixture.js'

const FILE_SIZE = 6 * MiB
const CONTAINER = 'tierfs-archive'
/** Both targets share one container, each under its own prefix. */
const HOT_PREFIX = 'hot/'
const ARCHIVE_PREFIX = 'archive/'
const PACK_BLOB = /^(hot|archive)\/packs\/[0-9a-f]{2}\/[0-9a-f]{32}\.pack$/
/** How long a rehydration takes here (Azure: hours; azurite: no time at all, hence the proxy). */
const REHYDRATE_MS = 3000

/** The daemon's counters of one tier's backend calls (`status --json`, tierMetrics). */
async function tierOps(m: TestMount, tier: string): Promise<{ ops: Record<string, { count: number; errors: number }>; errorsByCode: Record<string, number> }> {
  const s = await m.status()
  return s.tierMetrics[tier]
}

const sum = (blobs: AzureBlobInfo[]): number => blobs.reduce((n, b) => n + b.size, 0)
const tiersOf = (blobs: AzureBlobInfo[]): Array<string | undefined> => [...new Set(blobs.map((b) => b.accessTier))]

t.test('a file goes block -> azure Hot -> azure Archive, is recalled through the mount, and is deleted and pruned', async (t) => {
  const az = await startAzurite()
  t.teardown(() => az.stop())
  await az.createContainer(CONTAINER)
  useAzuriteCredentials(az.accountUrl, DEV_ACCOUNT, DEV_KEY)
  const blobs = (prefix: string): Promise<AzureBlobInfo[]> => azureBlobs(az.accountUrl, DEV_ACCOUNT, DEV_KEY, CONTAINER, prefix)
  const service = new BlobServiceClient(az.accountUrl, new StorageSharedKeyCredential(DEV_ACCOUNT, DEV_KEY), { retryOptions: { maxTries: 1 } })
  // Azure accepts Set Blob Tier (Archive -> Hot) with 202, reports archiveStatus
  // rehydrate-pending-to-hot for hours, then switches the tier. azurite (3.35,
  // LokiBlobMetadataStore.setTier) switches at once and never reports an archive status. The
  // daemon talks to azurite through a proxy that gives it Azure's timing: the tier change is
  // accepted at once and carried out REHYDRATE_MS later, and until then the blob's properties
  // carry the pending status. Data and every other request go to azurite unchanged; the test's
  // own clients talk to azurite directly.
  const proxy = await FaultProxy.start(Number(new URL(az.accountUrl).port))
  t.teardown(() => proxy.close())
  proxy.inject({ defer: { ms: REHYDRATE_MS, status: 202, headers: { 'x-ms-request-id': 'fault-proxy' } } }, {
    times: Infinity, match: (q) => q.method === 'PUT' && q.query.get('comp') === 'tier' && q.headers['x-ms-access-tier'] !== 'Archive',
  })
  proxy.inject({ addHeaders: { 'x-ms-archive-status': 'rehydrate-pending-to-hot' } }, { times: Infinity, match: (q) => q.method === 'HEAD' && proxy.deferred(q.path) })
  const daemonUrl = `${proxy.endpoint}/${DEV_ACCOUNT}`

  // recall.waitSeconds 0: a cold read asks for the rehydration, looks once, and answers EAGAIN
  // unless the blob is already readable; the shortest path to EAGAIN the config allows.
  const m = await tempMount({
    config: tieringConfig({
      'azure-hot': azureTarget(daemonUrl, CONTAINER, { prefix: 'hot' }),
      'azure-archive': azureArchiveTarget(daemonUrl, CONTAINER, { prefix: 'archive' }),
    }, { recall: { waitSeconds: 0 } }),
  })
  t.teardown(() => m.cleanup())
  const { a, aSha, control, controlSha } = await startChain(t, m, { seed: 'archive', size: FILE_SIZE, name: 'hbase-archive', object: 'azure-hot', cold: 'azure-archive' })
  const start = await tierBytes(m)
  t.equal(await xattr(a, 'user.tierfs.state'), 'resident')

  // Day 6: block -> azure-hot.
  await clockOffset(t, m, '6d')
  let r = await apply(m)
  t.equal(r.code, 0, `day 6: apply succeeds ${r.stderr}`)
  t.same(r.report.errors, [])
  t.equal(r.report.filesMoved, 1, 'day 6: a.bin moved to azure-hot')
  const day6 = await tierBytes(m)
  t.ok((day6['azure-hot'] ?? 0) >= FILE_SIZE, `day 6: azure-hot holds the data (${day6['azure-hot']} bytes)`)
  t.ok((day6.block ?? 0) <= (start.block ?? 0) - FILE_SIZE / 2, `day 6: block bytes dropped ${start.block} -> ${day6.block}`)
  const hot = await blobs(HOT_PREFIX)
  t.ok(hot.length > 0 && hot.every((b) => PACK_BLOB.test(b.name)), `the hot prefix holds packs (${hot.length})`)
  t.same(tiersOf(hot), ['Hot'], 'the hot packs are in the Hot access tier')
  t.equal(sum(hot), day6['azure-hot'], 'the hot prefix holds exactly the bytes status reports')
  t.same(await blobs(ARCHIVE_PREFIX), [], 'nothing archived yet')
  t.equal(await xattr(a, 'user.tierfs.tier'), 'object')
  t.equal(await xattr(a, 'user.tierfs.state'), 'resident')
  await coldRemount(t, m, '6d')
  t.equal(await sha256File(a), aSha, 'day 6: a.bin reads back exact from azure-hot after a remount')
  // The open block pack a.bin was sealed into is finished by the clean unmount; this pass frees it.
  r = await apply(m)
  t.equal(r.code, 0)
  t.equal(r.report.filesMoved, 0, 'day 6 again: nothing more to move')
  t.equal((await tierBytes(m)).block ?? 0, 0, 'day 6 again: nothing left on block')

  // Day 31: azure-hot -> azure-archive.
  await clockOffset(t, m, '31d')
  r = await apply(m)
  t.equal(r.code, 0, `day 31: apply succeeds ${r.stderr}`)
  t.same(r.report.errors, [])
  t.equal(r.report.filesMoved, 1, 'day 31: a.bin moved to azure-archive')
  const day31 = await tierBytes(m)
  t.ok((day31['azure-archive'] ?? 0) >= FILE_SIZE, `day 31: azure-archive holds the data (${day31['azure-archive']} bytes)`)
  t.equal(day31['azure-hot'] ?? 0, 0, 'day 31: azure-hot packs freed')
  t.same(await blobs(HOT_PREFIX), [], 'day 31: the hot prefix is empty')
  const archivedA = await blobs(ARCHIVE_PREFIX)
  t.equal(archivedA.length, 1, 'one cold pack in the archive prefix')
  t.ok(archivedA.every((b) => PACK_BLOB.test(b.name)), 'named as a pack')
  t.same(tiersOf(archivedA), ['Archive'], 'the cold pack is in the Archive access tier')
  t.equal(sum(archivedA), day31['azure-archive'], 'the archive prefix holds exactly the bytes status reports')
  t.equal(await xattr(a, 'user.tierfs.tier'), 'cold')
  t.equal(await xattr(a, 'user.tierfs.state'), 'cold')

  // A cold read after a remount (empty chunk cache, kernel caches dropped).
  await coldRemount(t, m, '31d')
  t.equal(await xattr(a, 'user.tierfs.state'), 'cold', 'after a remount the file is cold')
  t.same(tiersOf(await blobs(ARCHIVE_PREFIX)), ['Archive'], 'mounting and asking the state recalled nothing')
  t.equal((await m.status()).migrations.recallsInFlight, 0, 'no recall in flight before the read')
  const packA = archivedA[0]?.name ?? ''
  await t.rejects(service.getContainerClient(CONTAINER).getBlobClient(packA).download(0, 16), { statusCode: 409, code: 'BlobArchived' },
    'the service refuses to read the archived pack: a read must rehydrate it first')
  const first = await firstRead(a)
  t.equal(first, 'EAGAIN', 'the first cold read answers EAGAIN: the pack is being rehydrated')
  t.equal(await xattr(a, 'user.tierfs.state'), 'recalling', 'the state reads recalling')
  t.equal((await m.status()).migrations.recallsInFlight, 1, 'one recall in flight')
  const ops = await tierOps(m, 'azure-archive')
  t.ok((ops.errorsByCode.AGAIN ?? 0) >= 1, `the mount's get of the archived pack failed AGAIN (${ops.errorsByCode.AGAIN})`)
  t.ok(ops.ops.warmup!.count >= 1 && ops.ops.warmup!.errors === 0, `the mount asked for the rehydration (${ops.ops.warmup!.count} warm-up calls)`)
  t.ok(proxy.seen.some((q) => q.fault === 'defer' && q.path.endsWith(packA)), 'Set Blob Tier was sent for the pack')
  t.equal(await firstRead(a), 'EAGAIN', 'a second read while it rehydrates: EAGAIN again, the recall joined')
  t.same(tiersOf(await blobs(ARCHIVE_PREFIX)), ['Archive'], 'still in Archive while the rehydration runs')
  const t0 = Date.now()
  await eventually('the read to succeed after the rehydration', 60_000, async () => ((await firstRead(a)) === 'ok' ? true : undefined), 250)
  const waited = Date.now() - t0
  t.ok(waited >= REHYDRATE_MS / 2, `the read succeeds once the rehydration is done (${waited} ms later)`)
  t.same((await blobs(ARCHIVE_PREFIX)).map((b) => [b.name, b.accessTier]), [[packA, 'Hot']], 'the pack was rehydrated to Hot (rehydrateTo)')
  t.equal(await xattr(a, 'user.tierfs.state'), 'staged', 'recalled: the state reads staged')
  t.equal(await xattr(a, 'user.tierfs.tier'), 'cold', 'the data is still on the cold tier')
  t.equal((await m.status()).migrations.recallsInFlight, 0, 'the recall was seen done')
  t.equal(await sha256File(a), aSha, 'day 31: a.bin reads back exact from the rehydrated pack')

  // tierfs recall --wait: a file written now is 31 days old on the injected clock, so it goes
  // straight from block to the archive.
  const b = join(m.mnt, 'hbase/b.bin')
  const bSha = await writeData(b, 'archive-b', 3 * MiB)
  await waitSealed(m)
  r = await apply(m)
  t.equal(r.code, 0, `b.bin apply ${r.stderr}`)
  t.equal(r.report.filesMoved, 1, 'b.bin moved block -> azure-archive')
  const packB = (await blobs(ARCHIVE_PREFIX)).filter((x) => x.name !== packA)
  t.equal(packB.length, 1, 'b.bin has a cold pack of its own')
  t.same(tiersOf(packB), ['Archive'], "b.bin's pack is in the Archive access tier")
  await coldRemount(t, m, '31d')
  t.equal(await xattr(b, 'user.tierfs.state'), 'cold')
  const recall = await m.cli(['recall', b, '--wait', '--json'])
  t.equal(recall.code, 0, `tierfs recall --wait exits 0 ${recall.code === 0 ? '' : recall.stderr}`)
  t.same(JSON.parse(recall.stdout), { files: 1, packs: 1, warm: 1 }, 'tierfs recall --wait reports the pack warm')
  // The first request starts the rehydration and counts the pack as it was before (cold); the
  // wait loop's next request finds it warm.
  t.match(recall.stderr, /^recalling 1 files: \[-{30}\] 0\/1 packs warm/m, 'a progress bar on stderr while it waits')
  t.match(recall.stderr, /^recalling 1 files: \[#{30}\] 1\/1 packs warm/m, 'ending full')
  t.same((await blobs(ARCHIVE_PREFIX)).filter((x) => x.name !== packA).map((x) => x.accessTier), ['Hot'], "recall rehydrated b.bin's pack")
  t.equal((await tierOps(m, 'azure-archive')).errorsByCode.AGAIN ?? 0, 0, 'no read was refused: the recall came first')
  t.equal(await xattr(b, 'user.tierfs.state'), 'staged')
  t.equal(await firstRead(b), 'ok', 'no EAGAIN after recall --wait')
  t.equal(await sha256File(b), bSha, 'b.bin reads back exact')

  // c.bin stays archived: fsck must check its pack without reading it (or rehydrating it).
  const c = join(m.mnt, 'hbase/c.bin')
  await writeData(c, 'archive-c', MiB)
  await waitSealed(m)
  r = await apply(m)
  t.equal(r.report.filesMoved, 1, 'c.bin moved block -> azure-archive')
  await m.umount()
  const f = await fsckClean(t, m, 'after the recalls')
  t.ok(f.checked.coldUnverified >= 1, `fsck checks the cold packs by size, unread (${f.checked.coldUnverified} cold chunks)`)
  const archived = await blobs(ARCHIVE_PREFIX)
  t.same(archived.map((x) => x.accessTier).sort(), ['Archive', 'Hot', 'Hot'], "fsck rehydrated nothing: c.bin's pack is still in Archive")

  // Day 211: past the chain: the files are deleted, then prune deletes their packs, the archived one included.
  await m.mount()
  await clockOffset(t, m, '211d')
  r = await apply(m)
  t.equal(r.code, 0, `day 211 apply ${r.stderr}`)
  t.same(r.report.errors, [])
  t.equal(r.report.filesDeleted, 3, 'all three files deleted past the chain')
  await t.rejects(stat(a), { code: 'ENOENT' })
  t.equal((await blobs(ARCHIVE_PREFIX)).length, 3, 'dead cold packs are not the migrator\'s to free: prune frees them')
  const pruned = JSON.parse(await ok(t, m, ['prune', m.mnt, '--json'])) as { packsDeleted: number; packsDeferred: number; problems: string[] }
  t.same(pruned.problems, [])
  t.equal(pruned.packsDeferred, 0, 'every cold pack is past its minimum age (created day 31)')
  t.equal(pruned.packsDeleted, 3, 'prune deletes the three dead cold packs, the archived one without a recall')
  t.same(await blobs(''), [], 'the container is empty: rehydrated and archived packs all deleted')
  t.equal((await tierBytes(m))['azure-archive'] ?? 0, 0)
  t.equal(await readFile(control).then((d) => d.length), 4096, 'the file outside the policy stays')
  t.equal(await sha256File(control), controlSha)
  await m.umount()
  await fsckClean(t, m, 'after the chain')
})
