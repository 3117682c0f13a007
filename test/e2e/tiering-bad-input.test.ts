import t, { type Test } from 'tap'
import { mkdir, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { tempMount, type TestMount } from '../support/tierfs-mount.js'
import { sha256File, waitSealed } from '../support/e2e-io.js'
import { S3rverProcess } from '../support/s3rver-process.js'
import { startGlacierServer } from '../support/glacier-server.js'
import {
  MiB, apply, clockOffset, coldRemount, fsckClean, glacierTarget, plan, reload, s3Target, tierBytes, tieringConfig, useTieringCredentials,
  writeData, writePolicy, xattr, type PassReport,
} from '../support/tiering-fixture.js'

await useTieringCredentials()

const GOOD = ['name: hbase-good', 'match: { path: "/hbase/**" }', 'tiers:', '  - { tier: block, days: 5 }', '  - { tier: object, days: 25 }', 'then: keep', ''].join('\n')
const UNKNOWN_TARGET = ['name: logs-bad', 'match: { path: "/logs/**" }', 'tiers:', '  - { tier: block, days: 5 }', '  - { tier: object, target: nowhere, days: 25 }', ''].join('\n')

/**
 * Writes DIR/f.bin, gives /DIR/** a policy of `steps`, and runs a pass at `offset` whose move to an
 * unusable target must fail: exit 1, nothing moved, the error matching `error`, the file on block.
 */
async function refusedMove(t: Test, m: TestMount, o: { dir: string; size: number; offset: string; error: RegExp; steps: string[] }): Promise<{ path: string; sha: string; report: PassReport }> {
  await mkdir(join(m.mnt, o.dir))
  const path = join(m.mnt, o.dir, 'f.bin')
  const sha = await writeData(path, `refused-${o.dir}`, o.size)
  await waitSealed(m)
  await writePolicy(m, o.dir, [`name: ${o.dir}`, `match: { path: "/${o.dir}/**" }`, 'tiers:', ...o.steps, ''].join('\n'))
  await reload(t, m)
  await clockOffset(t, m, o.offset)
  const r = await apply(m)
  t.equal(r.code, 1, 'apply exits 1')
  t.equal(r.report.filesMoved, 0)
  t.match(r.report.errors, [{ message: o.error }], `the error names the target: ${r.report.errors[0]?.message}`)
  t.equal(await xattr(path, 'user.tierfs.tier'), 'block')
  return { path, sha, report: r.report }
}

t.test('a policy naming an unknown target is reported; the other policies keep working', async (t) => {
  const m = await tempMount({ config: tieringConfig({}) })
  t.teardown(() => m.cleanup())
  await mkdir(join(m.mnt, 'hbase'))
  await mkdir(join(m.mnt, 'logs'))
  const h = join(m.mnt, 'hbase/h.bin')
  const l = join(m.mnt, 'logs/l.log')
  const hSha = await writeData(h, 'bad-h', 2 * MiB)
  const lSha = await writeData(l, 'bad-l', 2 * MiB)
  await waitSealed(m)
  await writePolicy(m, 'good', GOOD)
  await writePolicy(m, 'logs', UNKNOWN_TARGET)
  const loaded = await m.cli(['policy', 'reload', m.mnt])
  t.equal(loaded.code, 1, 'reload exits 1: a policy names a target the config does not define')
  t.match(loaded.stdout, /logs\.yaml:1:1: policy logs-bad: target "nowhere" is not defined/, `reload names the file, the policy and the target: ${loaded.stdout}`)
  t.match(loaded.stdout, /policies in force: hbase-good, logs-bad/, 'both stay in force')
  t.match(await readFile(join(m.store, 'log/tierfs.log'), 'utf8'), /policy names a target it cannot use.*nowhere/, 'and the log says so')
  await clockOffset(t, m, '6d')

  const p = await plan(t, m)
  t.same(p.rows.map((r) => [r.policy, r.transition, r.files]), [['hbase-good', 'block -> object', 1]], 'the good policy is planned')
  t.equal(p.errors.length, 1)
  t.equal(p.errors[0]?.path, '/logs/l.log')
  t.match(p.errors[0]?.message, /logs-bad .*target "nowhere" is not defined/, `the error names the policy and the target: ${p.errors[0]?.message}`)
  const text = await m.cli(['policy', 'plan', m.mnt])
  t.match(text.stdout, /error: \/logs\/l\.log policy logs-bad \(.*logs\.yaml:1:1\): target "nowhere"/, 'the text plan prints the error with the policy file')

  const r = await apply(m)
  t.equal(r.code, 1, 'apply exits 1: a policy could not be applied')
  t.equal(r.report.filesMoved, 1, 'the good policy moved its file anyway')
  t.match(r.report.errors, [{ path: '/logs/l.log', message: /nowhere/ }])
  t.equal(await xattr(h, 'user.tierfs.tier'), 'object')
  t.equal(await xattr(l, 'user.tierfs.tier'), 'block', 'the file of the broken policy stays where it is')
  await coldRemount(t, m, '6d')
  t.equal(await sha256File(h), hSha)
  t.equal(await sha256File(l), lSha)
})

t.test('a broken policy file: check names file:line:col; the daemon keeps the last good set', async (t) => {
  const m = await tempMount({ config: tieringConfig({}) })
  t.teardown(() => m.cleanup())
  await mkdir(join(m.mnt, 'hbase'))
  const h = join(m.mnt, 'hbase/h.bin')
  await writeData(h, 'broken-h', 2 * MiB)
  await waitSealed(m)
  const file = await writePolicy(m, 'good', GOOD)
  t.match(await reload(t, m), /policies in force: hbase-good/)

  // A typo: an unknown key on line 7, column 1.
  await writeFile(file, GOOD + 'tierz: 1\n')
  let check = await m.cli(['policy', 'check', file])
  t.equal(check.code, 1, 'policy check exits 1')
  t.match(check.stdout, new RegExp(`^${escape(file)}:7:1: unknown key "tierz" in a policy`, 'm'), `check names file:line:col: ${check.stdout.trim()}`)

  // A YAML syntax error.
  await writeFile(file, 'name: hbase-good\nmatch: { path: "/hbase/**"\ntiers:\n  - { tier: block, days: 5 }\n')
  check = await m.cli(['policy', 'check', file])
  t.equal(check.code, 1)
  t.match(check.stdout, new RegExp(`^${escape(file)}:\\d+:\\d+: `, 'm'), `syntax errors are located too: ${check.stdout.trim()}`)

  const rl = await m.cli(['policy', 'reload', m.mnt])
  t.equal(rl.code, 1, 'reload exits 1 while a file is broken')
  t.match(rl.stdout, new RegExp(`${escape(file)}:\\d+:\\d+: `), 'reload prints where the file is broken')
  t.match(rl.stdout, /policies in force: hbase-good/, 'the last good version stays in force')
  const log = await readFile(join(m.store, 'log/tierfs.log'), 'utf8')
  t.match(log, /policy file rejected; its last good version stays in force/, 'the daemon logged it')

  await clockOffset(t, m, '6d')
  const p = await plan(t, m)
  t.same(p.rows.map((r) => [r.policy, r.transition, r.files]), [['hbase-good', 'block -> object', 1]], 'the last good set still plans')
  const r = await apply(m)
  t.equal(r.code, 0)
  t.equal(r.report.filesMoved, 1, 'and applies')

  await writeFile(file, GOOD.replace('hbase-good', 'hbase-fixed'))
  t.match(await reload(t, m), /policies in force: hbase-fixed/, 'a fixed file replaces the last good version')
})

t.test('a target whose bucket is missing: a clear error naming it, the file stays readable on block', async (t) => {
  const s3 = await S3rverProcess.start()
  t.teardown(() => s3.destroy())
  const m = await tempMount({ config: tieringConfig({ 's3-gone': s3Target(s3.endpoint, 'no-such-bucket') }) })
  t.teardown(() => m.cleanup())
  const log = await readFile(join(m.store, 'log/tierfs.log'), 'utf8')
  t.match(log, /target unavailable at start-up.*s3-gone.*bucket no-such-bucket does not exist/, 'the mount logs the missing bucket, naming the target')
  const { path: h, sha: hSha, report } = await refusedMove(t, m, {
    dir: 'hbase', size: 3 * MiB, offset: '6d', error: /s3-gone.*bucket no-such-bucket does not exist/,
    steps: ['  - { tier: block, days: 5 }', '  - { tier: object, target: s3-gone, days: 25 }'],
  })
  t.notMatch(JSON.stringify(report), /S3RVER|aws_secret/i, 'no credentials in the report')
  t.equal((await tierBytes(m))['s3-gone'] ?? 0, 0)
  await coldRemount(t, m, '6d')
  t.equal(await sha256File(h), hSha, 'the file reads back exact from block')

  // Once the bucket exists the next pass completes.
  await s3.createBucket('no-such-bucket')
  const r2 = await apply(m)
  t.equal(r2.code, 0, `apply once the bucket exists ${r2.stderr}`)
  t.equal(r2.report.filesMoved, 1)
  t.equal(await xattr(h, 'user.tierfs.tier'), 'object')
  await coldRemount(t, m, '6d')
  t.equal(await sha256File(h), hSha)
  await m.umount()
  await fsckClean(t, m, 'after the bucket appeared')
})

function escape(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')
}

t.test('a Glacier target whose vault is missing: named at mount and in the pass, the file stays on block', async (t) => {
  const glacier = await startGlacierServer({ vaults: ['some-other-vault'] })
  t.teardown(() => glacier.stop())
  const m = await tempMount({ config: tieringConfig({ 'vault-gone': glacierTarget(glacier.endpoint, 'no-such-vault') }) })
  t.teardown(() => m.cleanup())
  const log = await readFile(join(m.store, 'log/tierfs.log'), 'utf8')
  t.match(log, /target unavailable at start-up.*vault-gone.*vault no-such-vault of target vault-gone does not exist/, 'the mount logs the missing vault, naming the target')
  t.notMatch(log, /tierfs-glacier-test-secret|AKIDTIERFSGLACIER01/, 'no credentials in the log')
  const { path: f, sha: fSha } = await refusedMove(t, m, {
    dir: 'arch', size: 2 * MiB, offset: '2d', error: /vault-gone.*vault no-such-vault/,
    steps: ['  - { tier: block, days: 1 }', '  - { tier: cold, target: vault-gone }'],
  })
  await coldRemount(t, m, '2d')
  t.equal(await sha256File(f), fSha, 'the file reads back exact from block')
  await m.umount()
  await fsckClean(t, m, 'after the refused move')
})
