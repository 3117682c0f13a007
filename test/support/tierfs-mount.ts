import { execFile, type ExecFileOptions } from 'node:child_process'
import { chmod, mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

/** The compiled CLI (tests run after `npm run build`). */
export const ROOT = resolve(fileURLToPath(new URL('../..', import.meta.url)))
export const CLI = join(ROOT, 'dist/src/cli/main.js')

export interface RunResult { code: number; stdout: string; stderr: string }

/** Runs a command asynchronously (never sync: the mount is served by daemons, but tests stay uniform). */
export function run(cmd: string, args: string[], opts: ExecFileOptions = {}): Promise<RunResult> {
  return new Promise((ok) => {
    execFile(cmd, args, { maxBuffer: 64 * 1024 * 1024, ...opts }, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 1
      ok({ code, stdout: String(stdout), stderr: String(stderr) })
    })
  })
}

export function tierfs(args: string[], opts: ExecFileOptions = {}): Promise<RunResult> {
  return run(process.execPath, [CLI, ...args], { env: { ...childEnv(), TIERFS_RUN_DIR: RUN_DIR }, ...opts })
}

/**
 * The environment for tierfs processes and other Node children: without tap's NODE_OPTIONS
 * (its process-info and coverage hooks would load into every CLI call and into the daemon,
 * slowing it and tying it to tap's node_modules).
 */
export function childEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {}
  for (const [k, v] of Object.entries(process.env)) {
    if (k === 'NODE_OPTIONS' || k === 'NODE_V8_COVERAGE' || k.startsWith('_TAPJS_')) continue
    env[k] = v
  }
  return env
}

/** A clean unmount takes well under a second; a daemon stuck in its stop fails the test instead of stalling it. */
const UMOUNT_TIMEOUT_MS = 120_000

/** Test daemons register here, not in /run/tierfs. */
export const RUN_DIR = join(tmpdir(), 'tierfs-test-run')

export interface TestMount {
  dir: string
  store: string
  mnt: string
  /** `tierfs ARGS` with this test's run dir. */
  cli(args: string[]): Promise<RunResult>
  mount(): Promise<void>
  umount(): Promise<void>
  /** kill -9 of the daemon; the kernel mount is left to autoUnmount / the next mount's force. */
  kill9(): Promise<void>
  pid(): Promise<number>
  /** Waits for a daemon that is killing itself (an armed crash point) to be gone, then clears the kernel mount as kill9 does. */
  died(pid: number): Promise<void>
  status(): Promise<Record<string, any>>
  /** Unmounts if mounted and removes everything. */
  cleanup(): Promise<void>
}

/**
 * Creates a store (optionally with config overrides) and mounts it at a fresh mount point.
 * Throws (never skips) when the mount fails.
 */
export async function tempMount(opts: { config?: Record<string, unknown>; mount?: boolean } = {}): Promise<TestMount> {
  await mkdir(RUN_DIR, { recursive: true })
  const dir = await mkdtemp(join(tmpdir(), 'tierfs-t-'))
  await traversable(dir)
  const store = join(dir, 'store')
  const mnt = join(dir, 'mnt')
  await mkdir(mnt)
  let cfgArgs: string[] = []
  if (opts.config !== undefined) {
    await writeFile(join(dir, 'config.json'), JSON.stringify(opts.config))
    cfgArgs = ['--config', join(dir, 'config.json')]
  }
  const init = await tierfs(['init', store, ...cfgArgs])
  if (init.code !== 0) throw new Error(`tierfs init failed: ${init.stderr}`)
  let mounted = false
  const m: TestMount = {
    dir, store, mnt,
    cli: (args) => tierfs(args),
    async mount() {
      const r = await tierfs(['mount', store, mnt])
      if (r.code !== 0) throw new Error(`tierfs mount failed (${r.code}): ${r.stderr}${await readFile(join(store, 'log/daemon.stderr'), 'utf8').catch(() => '')}`)
      mounted = true
    },
    async umount() {
      const started = Date.now()
      const r = await tierfs(['umount', mnt], { timeout: UMOUNT_TIMEOUT_MS })
      if (r.code !== 0) {
        const late = Date.now() - started >= UMOUNT_TIMEOUT_MS ? ` (no answer within ${UMOUNT_TIMEOUT_MS} ms)` : ''
        throw new Error(`tierfs umount failed${late}: ${r.stderr}`)
      }
      mounted = false
    },
    async pid() {
      const rec = JSON.parse(await readRegistry(mnt)) as { pid: number }
      return rec.pid
    },
    async kill9() {
      const pid = await m.pid()
      process.kill(pid, 'SIGKILL')
      await m.died(pid)
    },
    async died(pid) {
      for (let i = 0; ; i++) {
        try { process.kill(pid, 0) } catch { break }
        if (i >= 800) throw new Error(`daemon ${pid} still runs 20 s after it should have died`)
        await new Promise((r) => setTimeout(r, 25))
      }
      await run('fusermount', ['-uz', mnt])
      mounted = false
    },
    async status() {
      const r = await tierfs(['status', mnt, '--json'])
      if (r.code !== 0) throw new Error(`tierfs status failed: ${r.stderr}`)
      return JSON.parse(r.stdout) as Record<string, any>
    },
    async cleanup() {
      if (mounted) {
        await m.umount().catch(async () => {
          // A daemon that does not stop would keep the store locked: kill it.
          await m.kill9().catch(() => run('fusermount', ['-uz', mnt]))
        })
      }
      // A daemon killed with -9 leaves its record behind.
      await rm(await registryPath(mnt), { force: true })
      await rm(dir, { recursive: true, force: true })
    },
  }
  if (opts.mount !== false) await m.mount()
  return m
}

/**
 * Lets every uid reach the mount point (tests run commands as other users through it): mkdtemp
 * creates 0700 directories, and a private TMPDIR may be 0700 too.
 */
async function traversable(dir: string): Promise<void> {
  await chmod(dir, 0o755)
  const tmp = tmpdir()
  const mode = (await stat(tmp)).mode & 0o7777
  if ((mode & 0o011) !== 0o011) await chmod(tmp, mode | 0o011)
}

async function registryPath(mnt: string): Promise<string> {
  const { createHash } = await import('node:crypto')
  const id = createHash('sha256').update(resolve(mnt)).digest('hex').slice(0, 24)
  return join(RUN_DIR, `${id}.json`)
}

async function readRegistry(mnt: string): Promise<string> {
  return readFile(await registryPath(mnt), 'utf8')
}
