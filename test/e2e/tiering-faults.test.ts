import t, { type Test } from 'tap'
import { mkdir, readdir } from 'node:fs/promises'
import { join } from 'node:path'
import { tempMount, type TestMount } from '../support/tierfs-mount.js'
import { sha256File, waitSealed } from '../support/e2e-io.js'
import { FaultProxy } from '../support/fault-proxy.js'
import { S3rverProcess } from '../support/s3rver-process.js'
import {
  MiB, apply, chainPolicy, clockOffset, coldRemount, eventually, fsckClean, reload, s3Keys, s3Target, tierBytes, tieringConfig,
  useTieringCredentials, writeData, writePolicy, xattr,
} from '../support/tiering-fixture.js'

await useTieringCredentials()

const FILES = 6
const FILE_SIZE = 4 * MiB

/** FILES files of FILE_SIZE under /hbase, sealed; returns path -> SHA-256. */
async function writeFiles(m: TestMount, seed: string): Promise<Map<string, string>> {
  await mkdir(join(m.mnt, 'hbase'))
  const out = new Map<string, string>()
  for (let i = 0; i < FILES; i++) {
    const p = join(m.mnt, `hbase/f${i}.bin`)
    out.set(p, await writeData(p, `${seed}-${i}`, FILE_SIZE))
  }
  await waitSealed(m)
  return out
}

async function readsExact(t: Test, files: Map<string, string>, label: string): Promise<void> {
  let bad = 0
  for (const [p, sha] of files) {
    const got = await sha256File(p).catch((err: NodeJS.ErrnoException) => `read failed: ${err.code}`)
    if (got !== sha) { bad++; t.fail(`${label}: ${p}: ${got === sha ? '' : got.startsWith('read failed') ? got : 'contents differ'}`) }
  }
  t.equal(bad, 0, `${label}: all ${files.size} files read back exact`)
}

/** Any object file in s3rver's directory (its store writes `<key>._S3rver_object`). */
async function s3rverHasObject(dir: string, bucket: string): Promise<boolean> {
  const names = await readdir(join(dir, bucket), { recursive: true }).catch(() => [] as string[])
  return names.some((n) => String(n).endsWith('._S3rver_object'))
}

t.test('s3rver killed during a migration and restarted: the pass fails, the next completes', async (t) => {
  const s3 = await S3rverProcess.start({ buckets: ['tierfs-kill'] })
  t.teardown(() => s3.destroy())
  const m = await tempMount({ config: tieringConfig({ 's3-primary': s3Target(s3.endpoint, 'tierfs-kill') }) })
  t.teardown(() => m.cleanup())
  const files = await writeFiles(m, 'kill-s3rver')
  await writePolicy(m, 'hbase', chainPolicy({ name: 'hbase', path: '/hbase/**', object: 's3-primary', then: 'keep' }))
  await reload(t, m)
  await clockOffset(t, m, '6d')

  const pass = apply(m)
  await eventually('the first upload', 30_000, async () => ((await s3rverHasObject(s3.dir, 'tierfs-kill')) ? true : undefined), 20)
  await s3.kill()
  const failed = await pass
  t.equal(failed.code, 1, 'the pass reports failure')
  t.match(failed.report.errors, [{ message: /s3-primary/ }], `the error names the target: ${failed.report.errors[0]?.message}`)
  t.ok(failed.report.filesMoved < FILES, `not every file moved (${failed.report.filesMoved})`)
  t.equal(failed.report.filesMoved + failed.report.filesFailed, FILES, `the files not moved are counted as failed moves (${failed.report.filesFailed})`)
  const st = (await m.status()).migrations as { failedMoves: number; failedMovesTotal: number; failures: number; moving: number }
  t.same([st.failedMoves, st.failedMovesTotal, st.failures, st.moving], [failed.report.filesFailed, failed.report.filesFailed, 0, 0], 'status counts the failed moves (the pass itself ran)')

  await s3.start()
  // Whatever committed is on s3, the rest still on block: every file reads back, caches cold.
  await coldRemount(t, m, '6d')
  await readsExact(t, files, 'after the failed pass')
  const r = await apply(m)
  t.equal(r.code, 0, `the next pass completes ${r.stderr}`)
  t.same(r.report.errors, [])
  for (const p of files.keys()) t.equal(await xattr(p, 'user.tierfs.tier'), 'object', `${p} on object`)
  const bytes = await tierBytes(m)
  t.ok((bytes['s3-primary'] ?? 0) >= FILES * FILE_SIZE, `s3-primary holds everything (${bytes['s3-primary']})`)
  const keys = await s3Keys(s3.endpoint, 'tierfs-kill')
  t.equal(keys.reduce((n, k) => n + k.size, 0), bytes['s3-primary'], 'the bucket holds exactly the recorded packs: no stray upload left')
  await coldRemount(t, m, '6d')
  await readsExact(t, files, 'after the next pass')
  await m.umount()
  await fsckClean(t, m, 's3rver killed')
})

t.test('500s, 503s, delays and dropped connections from a proxy: the migration completes through RetryTier', async (t) => {
  const s3 = await S3rverProcess.start({ buckets: ['tierfs-proxy'] })
  t.teardown(() => s3.destroy())
  const proxy = await FaultProxy.start(s3.port)
  t.teardown(() => proxy.close())
  const m = await tempMount({ config: tieringConfig({ 's3-primary': s3Target(proxy.endpoint, 'tierfs-proxy') }) })
  t.teardown(() => m.cleanup())
  const files = await writeFiles(m, 'proxy')
  await writePolicy(m, 'hbase', chainPolicy({ name: 'hbase', path: '/hbase/**', object: 's3-primary', then: 'keep' }))
  await reload(t, m)
  await clockOffset(t, m, '6d')

  proxy.reset()
  const put = (r: { method: string; query: URLSearchParams }): boolean => r.method === 'PUT'
  const get = (r: { method: string }): boolean => r.method === 'GET'
  const head = (r: { method: string }): boolean => r.method === 'HEAD'
  proxy.inject({ error: { status: 500, code: 'InternalError' } }, { times: 2, match: put })
  proxy.inject({ reset: true }, { times: 1, match: put })
  proxy.inject({ delayMs: 1500 }, { times: 2, match: put })
  proxy.inject({ error: { status: 503, code: 'SlowDown' } }, { times: 2, match: head })
  proxy.inject({ cutAfterBytes: 10 }, { times: 1, match: get })
  proxy.inject({ reset: true }, { times: 1, match: get })
  const r = await apply(m)
  t.equal(r.code, 0, `the pass completes ${r.stderr}`)
  t.same(r.report.errors, [])
  t.equal(r.report.filesMoved, FILES)
  t.equal(proxy.pending(), 0, 'every injected fault was served')
  const faults = proxy.seen.filter((s) => s.fault !== undefined).map((s) => `${s.method} ${s.fault}`)
  t.ok(faults.length >= 9, `faults seen by the daemon: ${faults.join(', ')}`)
  for (const p of files.keys()) t.equal(await xattr(p, 'user.tierfs.tier'), 'object')
  const keys = await s3Keys(s3.endpoint, 'tierfs-proxy')
  t.equal(keys.reduce((n, k) => n + k.size, 0), (await tierBytes(m))['s3-primary'], 'no stray upload in the bucket')

  // Reads through the same faults.
  await coldRemount(t, m, '6d')
  proxy.inject({ error: { status: 500, code: 'InternalError' } }, { times: 2, match: get })
  proxy.inject({ reset: true }, { times: 1, match: get })
  proxy.inject({ delayMs: 1000 }, { times: 1, match: get })
  await readsExact(t, files, 'through the faulty proxy')
  t.equal(proxy.pending(), 0)
  await m.umount()
  await fsckClean(t, m, 'proxy faults')
})
