import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process'
import { createInterface } from 'node:readline'
import { join } from 'node:path'
import { ROOT } from './tierfs-mount.js'

const SCRIPT = join(ROOT, 'test/e2e/fixtures/posix-agent.py')
/** The system interpreter: readable and runnable by any uid (a pyenv shim under /root is not). */
const PYTHON = '/usr/bin/python3'

export type AgentResult<T> = { ok: true; value: T } | { ok: false; errno: string; message: string }

/** An lstat/fstat result as the agent returns it (times as decimal strings of nanoseconds). */
export interface AgentStat {
  ino: number
  mode: number
  nlink: number
  uid: number
  gid: number
  size: number
  blocks: number
  atimeNs: string
  mtimeNs: string
  ctimeNs: string
  rdev: number
}

/** One node of a tree snapshot (see posix-agent.py `tree`). */
export interface TreeEntry {
  path: string
  mode: number
  nlink: number
  size: number
  mtimeNs: string
  ino: number
  sha256?: string
  target?: string
  xattrs?: Record<string, string>
}

/**
 * A Python child process that performs POSIX calls on request (exact errno names, ns times,
 * xattr flags, small-buffer xattr calls), optionally as another uid. The test process itself
 * only does async pipe I/O with it.
 */
export interface PosixAgent {
  call<T = unknown>(op: string, ...args: unknown[]): Promise<AgentResult<T>>
  /** Like call, but throws when the operation fails. */
  ok<T = unknown>(op: string, ...args: unknown[]): Promise<T>
  /** The errno name the operation failed with, or 'OK'. */
  errno(op: string, ...args: unknown[]): Promise<string>
  close(): Promise<void>
}

export function b64(data: Buffer | string): string {
  return Buffer.from(data).toString('base64')
}

export function unb64(text: string): Buffer {
  return Buffer.from(text, 'base64')
}

export async function posixAgent(opts: { uid?: number; gid?: number } = {}): Promise<PosixAgent> {
  const cmd = opts.uid === undefined
    ? [PYTHON, SCRIPT]
    : ['setpriv', `--reuid=${opts.uid}`, `--regid=${opts.gid ?? opts.uid}`, '--clear-groups', PYTHON, SCRIPT]
  const child: ChildProcessWithoutNullStreams = spawn(cmd[0] as string, cmd.slice(1), { stdio: ['pipe', 'pipe', 'pipe'], cwd: '/' })
  let stderr = ''
  child.stdin.on('error', () => { /* the exit handler reports it */ })
  child.stderr.setEncoding('utf8')
  child.stderr.on('data', (d: string) => { stderr += d })
  const lines = createInterface({ input: child.stdout })
  const waiting: Array<{ ok: (line: string) => void; fail: (err: Error) => void }> = []
  lines.on('line', (line) => waiting.shift()?.ok(line))
  child.on('exit', (code) => {
    for (const w of waiting.splice(0)) w.fail(new Error(`posix agent exited (${code}): ${stderr}`))
  })
  let chain: Promise<unknown> = Promise.resolve()

  const call = <T>(op: string, ...args: unknown[]): Promise<AgentResult<T>> => {
    const p = chain.then(() => new Promise<AgentResult<T>>((ok, fail) => {
      waiting.push({ ok: (line) => ok(JSON.parse(line) as AgentResult<T>), fail })
      child.stdin.write(JSON.stringify({ op, args }) + '\n')
    }))
    chain = p.catch(() => undefined)
    return p
  }
  const agent: PosixAgent = {
    call,
    async ok<T>(op: string, ...args: unknown[]): Promise<T> {
      const r = await call<T>(op, ...args)
      if (!r.ok) throw new Error(`${op}(${JSON.stringify(args).slice(0, 200)}) failed: ${r.errno} ${r.message}`)
      return r.value
    },
    async errno(op: string, ...args: unknown[]): Promise<string> {
      const r = await call(op, ...args)
      return r.ok ? 'OK' : r.errno
    },
    async close() {
      if (child.exitCode !== null) return
      const exited = new Promise<void>((ok) => child.once('exit', () => ok()))
      child.stdin.end()
      await exited
    },
  }
  const who = await call<{ uid: number }>('whoami')
  if (!who.ok) throw new Error(`posix agent did not start: ${stderr}`)
  return agent
}
