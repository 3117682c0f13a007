import { spawnSync } from 'node:child_process'
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'

const ROOT = resolve(fileURLToPath(new URL('..', import.meta.url)))
const SCRIPTS = ['scripts/setup.sh', 'scripts/quickstart.sh', 'scripts/test.sh', 'scripts/bench.sh', 'scripts/mount.fuse.tierfs', '.ci/run']
const IS_ROOT = process.getuid?.() === 0

/** The environment without tap's: its NODE_OPTIONS would instrument every node the scripts start. */
const ENV: NodeJS.ProcessEnv = Object.fromEntries(Object.entries(process.env)
  .filter(([k]) => k !== 'NODE_OPTIONS' && !/^(TAP|_TAPJS_|TS_NODE_)/.test(k)))

interface Ran { code: number | null; stdout: string; stderr: string; ms: number }

function run(cmd: string, args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): Ran {
  const t0 = performance.now()
  const r = spawnSync(cmd, args, {
    cwd: opts.cwd ?? ROOT, env: opts.env ?? ENV, encoding: 'utf8', timeout: 180_000, stdio: ['ignore', 'pipe', 'pipe'],
  })
  return { code: r.status, stdout: r.stdout ?? '', stderr: r.stderr ?? '', ms: performance.now() - t0 }
}

const shown = (r: Ran): string => `exit ${r.code}\n--- stdout\n${r.stdout}--- stderr\n${r.stderr}`

/** A directory holding copies of some project files, as a project root of its own. */
function fakeProject(dir: string, files: string[]): string {
  for (const f of files) {
    mkdirSync(join(dir, f, '..'), { recursive: true })
    copyFileSync(join(ROOT, f), join(dir, f))
  }
  return dir
}

/** A directory of executables named after commands: each records its argv (one per line) in ARGV_OUT. */
function fakeBin(dir: string, names: string[], exitCode = 0): string {
  mkdirSync(dir, { recursive: true })
  for (const name of names) {
    const path = join(dir, name)
    writeFileSync(path, `#!/bin/sh\nprintf '%s\\n' "$PWD" "$@" > "$ARGV_OUT"\nexit ${exitCode}\n`)
    chmodSync(path, 0o755)
  }
  return dir
}

/** Mount points of /proc/mounts, with its octal escapes undone. */
function mountPoints(): string[] {
  return readFileSync('/proc/mounts', 'utf8').split('\n').filter((l) => l !== '')
    .map((l) => (l.split(' ')[1] ?? '').replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8))))
}

t.test('every script parses', async (t) => {
  for (const s of SCRIPTS) {
    const r = run('bash', ['-n', s])
    t.equal(r.code, 0, `${s}: ${r.stderr}`)
    t.ok((statSync(join(ROOT, s)).mode & 0o111) !== 0, `${s} is executable`)
  }
})

t.test('setup.sh: with nothing missing it is silent, fast and idempotent', async (t) => {
  // Only --check runs unless it finds nothing missing: this test must never install anything.
  const check = run('bash', ['scripts/setup.sh', '--check', '--test'])
  t.equal(check.code, 0, `--check finds nothing missing on this machine (run npm test, which sets it up)\n${shown(check)}`)
  t.equal(check.stdout + check.stderr, '', '--check is silent')
  if (check.code !== 0) return
  const again = run('bash', ['scripts/setup.sh', '--test'])
  t.equal(again.code, 0, shown(again))
  t.equal(again.stdout + again.stderr, '', 'a run with nothing to do prints nothing')
  t.ok(again.ms < 10_000, `and took ${Math.round(again.ms)} ms`)
  const after = run('bash', ['scripts/setup.sh', '--check', '--test'])
  t.equal(after.code, 0, shown(after))
  t.equal(after.stdout + after.stderr, '', 'still nothing missing')
})

t.test('setup.sh --check names what is missing and installs nothing', async (t) => {
  const dir = fakeProject(t.testdir(), ['scripts/setup.sh', 'package.json', 'package-lock.json'])
  const r = run('bash', [join(dir, 'scripts/setup.sh'), '--check', '--build'], { cwd: '/' })
  t.equal(r.code, 1, shown(r))
  t.match(r.stderr, /npm packages: node_modules is missing or differs from package-lock\.json/)
  t.match(r.stderr, /build: dist\/ is missing/)
  t.notOk(existsSync(join(dir, 'node_modules')), 'no npm install happened')
  t.notOk(existsSync(join(dir, 'dist')), 'no build happened')

  const bad = run('bash', [join(dir, 'scripts/setup.sh'), '--frobnicate'])
  t.equal(bad.code, 2)
  t.match(bad.stderr, /unknown option --frobnicate/)
})

const AS_NOBODY = ['--reuid=65534', '--regid=65534', '--clear-groups']
const canBeNobody = IS_ROOT && existsSync('/dev/fuse') && run('setpriv', [...AS_NOBODY, 'node', '--version']).code === 0

t.test('setup.sh says to run as root when /dev/fuse is not usable', {
  skip: canBeNobody ? false : 'needs root, /dev/fuse and setpriv to run setup.sh as nobody',
}, async (t) => {
  // nobody must be able to read the copy: a world-readable directory of its own.
  const dir = mkdtempSync('/tmp/tierfs-setup-')
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  chmodSync(dir, 0o755)
  fakeProject(dir, ['scripts/setup.sh', 'package.json', 'package-lock.json'])
  const r = run('setpriv', [...AS_NOBODY, 'bash', join(dir, 'scripts/setup.sh')],
    { cwd: '/', env: { PATH: process.env.PATH ?? '/usr/bin:/bin' } })
  t.equal(r.code, 1, shown(r))
  t.match(r.stderr, /ERROR: .* cannot open \/dev\/fuse/)
  t.match(r.stderr, /run as root/)
})

t.test('mount.fuse.tierfs drops fstab-only options and runs tierfs mount', async (t) => {
  const dir = t.testdir()
  const bin = fakeBin(join(dir, 'bin'), ['tierfs'])
  const argvFile = join(dir, 'argv')
  const env = { ...ENV, PATH: `${bin}:${process.env.PATH ?? ''}`, ARGV_OUT: argvFile, TIERFS_BIN: '' }
  const helper = join(ROOT, 'scripts/mount.fuse.tierfs')
  const recorded = (): string[] => readFileSync(argvFile, 'utf8').split('\n').slice(1, -1)
  const mount = (...args: string[]): Ran => {
    rmSync(argvFile, { force: true })
    return run(helper, args, { env })
  }

  let r = mount('/var/lib/tierfs/main', '/srv/backup', '-o',
    'defaults,_netdev,auto,noauto,nofail,user,users,nouser,owner,group,comment=x,x-systemd.automount,x-systemd.requires=net.service,allow_other,ro,cache=/a b')
  t.equal(r.code, 0, shown(r))
  t.same(recorded(), ['mount', '/var/lib/tierfs/main', '/srv/backup', '-o', 'allow_other,ro,cache=/a b'])

  r = mount('/var/lib/tierfs/main', '/srv/backup', '-o', 'defaults,_netdev')
  t.equal(r.code, 0, shown(r))
  t.same(recorded(), ['mount', '/var/lib/tierfs/main', '/srv/backup'], 'no -o when only fstab options were given')

  r = mount('/s', '/d', '-n', '-sv', '-t', 'fuse.tierfs', '-o', 'rw', '-onosuid,x-gvfs-show')
  t.equal(r.code, 0, shown(r))
  t.same(recorded(), ['mount', '/s', '/d', '-o', 'rw,nosuid'], 'mount(8) flags ignored, repeated -o merged')
  t.match(r.stderr, /tierfs mount \/s \/d -o rw,nosuid/, '-v shows the command')

  r = mount('/s', '/d', '-f', '-o', 'ro')
  t.equal(r.code, 0, shown(r))
  t.notOk(existsSync(argvFile), '-f (fake) runs nothing')

  r = mount('/s')
  t.equal(r.code, 1)
  t.match(r.stderr, /usage: mount\.fuse\.tierfs/)
  t.notOk(existsSync(argvFile))

  r = mount('/s', '/d', '-N', '/proc/1/ns/mnt')
  t.equal(r.code, 1)
  t.match(r.stderr, /namespaces/)
})

t.test('mount.fuse.tierfs finds tierfs via TIERFS_BIN, passes its exit code, and says when it finds none', async (t) => {
  const dir = t.testdir()
  const failing = fakeBin(join(dir, 'failing'), ['tierfs-x'], 32)
  const argvFile = join(dir, 'argv')
  // A copy away from the checkout, so the dist/ fallback next to the script does not apply.
  const helper = join(dir, 'mount.fuse.tierfs')
  copyFileSync(join(ROOT, 'scripts/mount.fuse.tierfs'), helper)
  chmodSync(helper, 0o755)

  let r = run(helper, ['/s', '/d', '-o', 'ro,_netdev'], { env: { PATH: '/usr/bin:/bin', ARGV_OUT: argvFile, TIERFS_BIN: join(failing, 'tierfs-x') } })
  t.equal(r.code, 32, 'the exit code of tierfs mount is the helper\'s')
  t.same(readFileSync(argvFile, 'utf8').split('\n').slice(1, -1), ['mount', '/s', '/d', '-o', 'ro'])

  r = run(helper, ['/s', '/d'], { env: { PATH: '/usr/bin:/bin' } })
  t.equal(r.code, 1, shown(r))
  t.match(r.stderr, /cannot find the tierfs command/)

  // Installed as a symlink into the checkout, it runs the built CLI beside it.
  const link = join(dir, 'mount.fuse.tierfs-link')
  symlinkSync(join(ROOT, 'scripts/mount.fuse.tierfs'), link)
  r = run(link, ['/s', '/d', '-f'], { env: { PATH: '/usr/bin:/bin' } })
  t.equal(r.code, 0, shown(r))
  t.ok(r.stderr.includes(`node ${ROOT}/scripts/../dist/src/cli/main.js mount /s /d`), r.stderr)
})

t.test('systemd unit: tierfs@.service has the settings it needs and runs the built daemon', async (t) => {
  const unit = readFileSync(join(ROOT, 'systemd/tierfs@.service'), 'utf8')
  const settings = new Map<string, string[]>()
  for (const line of unit.split('\n')) {
    const m = /^([A-Za-z]+)=(.*)$/.exec(line)
    if (m?.[1] !== undefined && m[2] !== undefined) settings.set(m[1], [...(settings.get(m[1]) ?? []), m[2]])
  }
  const one = (k: string): string | undefined => settings.get(k)?.[0]
  t.equal(one('Type'), 'notify')
  t.equal(one('NotifyAccess'), 'all')
  t.equal(one('EnvironmentFile'), '/etc/tierfs/%i.conf')
  t.equal(one('Restart'), 'on-failure')
  t.equal(one('KillSignal'), 'SIGTERM')
  t.match(one('After') ?? '', /network-online\.target/)
  t.match(one('After') ?? '', /local-fs\.target/)
  t.match(one('TimeoutStopSec') ?? '', /^\d+min$/)
  t.equal(one('ExecStart'), '/usr/bin/env node --initial-old-space-size=128 ${TIERFS_HOME}/dist/daemon/main.js ${STORE} ${MOUNTPOINT} -o ${OPTIONS} --foreground')
  t.equal(one('ExecStop'), '-/usr/bin/env node ${TIERFS_HOME}/dist/src/cli/main.js umount ${MOUNTPOINT}')
  t.ok(existsSync(join(ROOT, 'dist/daemon/main.js')), 'ExecStart\'s daemon is what the build makes')
  t.ok(existsSync(join(ROOT, 'dist/src/cli/main.js')), 'ExecStop\'s CLI is what the build makes')

  const example = readFileSync(join(ROOT, 'systemd/tierfs.conf.example'), 'utf8')
  for (const key of ['STORE', 'MOUNTPOINT', 'OPTIONS']) t.match(example, new RegExp(`^${key}=\\S+$`, 'm'), `example sets ${key}`)
})

const hasAnalyze = run('sh', ['-c', 'command -v systemd-analyze']).code === 0

t.test('systemd unit: systemd-analyze verify accepts tierfs@.service', {
  skip: hasAnalyze ? false : 'systemd-analyze is not installed',
}, async (t) => {
  const dir = t.testdir()
  copyFileSync(join(ROOT, 'systemd/tierfs@.service'), join(dir, 'tierfs@ci.service'))
  const r = run('systemd-analyze', ['verify', join(dir, 'tierfs@ci.service')], { cwd: dir })
  t.equal(r.code, 0, shown(r))
  t.notMatch(r.stdout + r.stderr, /tierfs@/, 'no complaint about the unit')
})

t.test('.ci/run is executable and runs npm test from the repository root, passing its exit code', async (t) => {
  const path = join(ROOT, '.ci/run')
  t.ok((statSync(path).mode & 0o111) !== 0, 'executable')
  const text = readFileSync(path, 'utf8')
  t.match(text, /^#!\/usr\/bin\/env bash\n/)
  t.match(text, /^set -euo pipefail$/m)
  const dir = t.testdir()
  const argvFile = join(dir, 'argv')
  const bin = fakeBin(join(dir, 'bin'), ['npm'], 7)
  const r = run(path, [], { cwd: '/', env: { ...ENV, PATH: `${bin}:${process.env.PATH ?? ''}`, ARGV_OUT: argvFile } })
  t.equal(r.code, 7, 'npm test\'s exit code comes back')
  t.same(readFileSync(argvFile, 'utf8').split('\n').slice(0, -1), [ROOT, 'test'])
})

t.test('test.sh --summarize reads tap\'s closing tally', async (t) => {
  const dir = t.testdir()
  const summarize = (name: string, tap: string): string => {
    writeFileSync(join(dir, name), tap)
    const r = run('bash', ['scripts/test.sh', '--summarize', join(dir, name)])
    t.equal(r.code, 0, shown(r))
    return r.stdout
  }
  const okFile = '# Subtest: a.test.ts\n    ok 1 - x\n    1..1\nok 1 - a.test.ts # time=1ms\n'
  t.equal(summarize('pass.tap', `${okFile}\n# { total: 27, pass: 27 }\n# time=1176.934ms\n`), '27 passed, 0 failed\n')
  t.equal(summarize('mixed.tap', `${okFile}not ok 2 - b.test.ts\n# { total: 13, pass: 6, fail: 5, todo: 1, skip: 1 }\n`), '6 passed, 5 failed\n')
  t.equal(summarize('cut.tap', `${okFile}not ok 2 - b.test.ts\nnot ok 3 - c.test.ts\n`), '1 passed, 2 failed\n', 'without the tally: test files')
  t.equal(summarize('empty.tap', ''), '0 passed, 0 failed\n')
  const bad = run('bash', ['scripts/test.sh', '--summarize', join(dir, 'missing.tap')])
  t.equal(bad.code, 2)
})

t.test('bench.sh with no benchmarks says so and exits 0', async (t) => {
  const dir = fakeProject(t.testdir(), ['scripts/bench.sh'])
  const r = run('bash', [join(dir, 'scripts/bench.sh')], { cwd: '/' })
  t.equal(r.code, 0, shown(r))
  t.match(r.stdout, /no benchmarks/)
  const named = run('bash', [join(dir, 'scripts/bench.sh'), 'nonesuch'])
  t.equal(named.code, 2)
  t.match(named.stderr, /no such benchmark: test\/bench\/nonesuch\.bench\.ts/)
})

/** Children of a process, by /proc/PID/stat's parent field. */
function childrenOf(pid: number): { pid: number; comm: string }[] {
  const out: { pid: number; comm: string }[] = []
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8')
      const close = stat.lastIndexOf(')')
      const ppid = Number(stat.slice(close + 2).split(' ')[1])
      if (ppid === pid) out.push({ pid: Number(name), comm: stat.slice(stat.indexOf('(') + 1, close) })
    } catch { /* the process is gone */ }
  }
  return out
}

const alive = (pid: number): boolean => existsSync(`/proc/${pid}`)

async function until(what: string, cond: () => boolean, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 50))
  }
}

t.test('quickstart.sh mounts, recognises a live mount, and cleans a stale one', {
  skip: IS_ROOT && existsSync('/dev/fuse') ? false : 'mounting needs root and /dev/fuse',
}, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'tierfs-quickstart-'))
  const store = join(dir, 'store')
  const mnt = join(dir, 'mnt')
  const pids = new Set<number>()
  t.teardown(async () => {
    if (mountPoints().includes(mnt)) run('node', ['dist/src/cli/main.js', 'umount', mnt])
    if (mountPoints().includes(mnt)) run('fusermount', ['-uz', mnt])
    for (const pid of pids) if (alive(pid)) process.kill(pid, 'SIGKILL')
    rmSync(dir, { recursive: true, force: true })
  })
  const daemonPid = (r: Ran): number => {
    const pid = Number(/daemon pid (\d+)/.exec(r.stdout)?.[1])
    if (pid > 0) pids.add(pid)
    return pid
  }

  const first = run('bash', ['scripts/quickstart.sh', store, mnt])
  t.equal(first.code, 0, shown(first))
  t.ok(existsSync(join(store, 'tierfs.json')), 'the store was created')
  t.ok(mountPoints().includes(mnt), 'mounted')
  t.match(first.stdout, /Unmount: .* umount /)
  const pid = daemonPid(first)
  t.ok(pid > 0 && alive(pid), `daemon ${pid} runs`)
  writeFileSync(join(mnt, 'hello.txt'), 'hello\n')

  const second = run('bash', ['scripts/quickstart.sh', store, mnt])
  t.equal(second.code, 0, shown(second))
  t.match(second.stdout, /already mounted at .* by a live daemon/)

  // A daemon that dies with its auto-unmount helper leaves a stale mount (ENOTCONN).
  for (const c of childrenOf(pid)) if (c.comm.startsWith('fusermount')) process.kill(c.pid, 'SIGKILL')
  process.kill(pid, 'SIGKILL')
  await until('the daemon to die', () => !alive(pid))
  t.ok(mountPoints().includes(mnt), 'the dead mount is still listed')
  t.throws(() => statSync(mnt), { code: 'ENOTCONN' })

  const third = run('bash', ['scripts/quickstart.sh', store, mnt])
  t.equal(third.code, 0, shown(third))
  t.match(third.stdout, /cleaning a stale mount/)
  t.ok(daemonPid(third) > 0, 'a new daemon')
  t.equal(readFileSync(join(mnt, 'hello.txt'), 'utf8'), 'hello\n', 'the file written before the crash is there')

  const umount = run('node', ['dist/src/cli/main.js', 'umount', mnt])
  t.equal(umount.code, 0, shown(umount))
  t.notOk(mountPoints().includes(mnt), 'unmounted')
})
