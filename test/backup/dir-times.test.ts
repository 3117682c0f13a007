import t from 'tap'
import { execFile } from 'node:child_process'
import { lstat, mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { DirTimes } from '../../src/backup/dir-times.js'

const exec = promisify(execFile)

t.test('directory mtimes to the nanosecond, modes and owners, with one tar', async (t) => {
  const dir = t.testdir()
  const src = join(dir, 'src')
  const dest = join(dir, 'dest')
  const long = `${'x'.repeat(120)}/${'é'.repeat(70)}/sub dir`
  const rels = ['a', 'a/b', long, 'mode']
  for (const r of ['', ...rels]) {
    await mkdir(join(src, r), { recursive: true })
    await mkdir(join(dest, r), { recursive: true })
  }
  await exec('chmod', ['2750', join(src, 'mode')])
  await exec('chown', ['1234:5678', join(src, 'mode')])
  await writeFile(join(dest, 'a/b/kept'), 'contents are left alone\n')
  const times: Record<string, string> = { '': '@1700000000.000000001', a: '@1700000001.999999999', 'a/b': '@10.5', [long]: '@1700000002.123456789', mode: '@1700000003.000000007' }
  for (const [r, time] of Object.entries(times)) await exec('touch', ['-d', time, join(src, r)])
  await exec('touch', ['-a', '-d', '@1600000000.25', join(dest, 'a')])

  t.ok(await DirTimes.supported(), 'GNU tar')
  const times2 = new DirTimes(dest, process.getuid?.() === 0)
  for (const r of [...rels, '']) t.ok(await times2.add(r, await lstat(join(src, r), { bigint: true })))
  t.same(await times2.close(), [], 'no complaints')
  for (const r of ['', ...rels]) {
    const want = await lstat(join(src, r), { bigint: true })
    const got = await lstat(join(dest, r), { bigint: true })
    t.equal(got.mtimeNs, want.mtimeNs, `${r || '.'}: mtime`)
    t.equal(got.mode, want.mode, `${r || '.'}: mode`)
  }
  if (process.getuid?.() === 0) t.match(await lstat(join(dest, 'mode')), { uid: 1234, gid: 5678 }, 'owner (as root)')
  t.equal((await lstat(join(dest, 'a'), { bigint: true })).atimeNs, 1_600_000_000_250_000_000n, 'atime left alone')
  t.equal((await lstat(join(dest, 'a/b/kept'))).size, 24)
})

t.test('complaints come back by path', async (t) => {
  const dir = t.testdir()
  await mkdir(join(dir, 'd'))
  await writeFile(join(dir, 'f'), 'a file\n')
  const st = await lstat(join(dir, 'd'), { bigint: true })
  const times = new DirTimes(dir, false)
  await times.add('f/d', st)
  t.match(await times.close(), [{ rel: 'f/d', message: /^Cannot .*: Not a directory/ }])
  const gone = new DirTimes(join(dir, 'missing-dest'), false)
  await gone.add('d', st)
  t.match(await gone.close(), [{ rel: '', message: /missing-dest: Cannot open: No such file/ }], 'others under the root')
})
