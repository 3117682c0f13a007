// Child processes for binding tests. The FUSE handlers run on this process's event loop, so the
// mount is only ever touched from other processes (never by a synchronous call from here).
import { spawn } from 'node:child_process'

export const NOBODY = { uid: 65534, gid: 65534 }

export interface ChildResult {
  pid: number
  stdout: string
}

export interface ChildOptions {
  /** Run as this uid/gid with no supplementary groups (via setpriv). */
  as?: { uid: number, gid: number }
  env?: NodeJS.ProcessEnv
  /** Kill the child (SIGTERM) if it has not exited after this many ms. */
  timeoutMs?: number
  /** Called with each complete stdout line as it arrives. */
  onLine?: (line: string) => void
}

/** Runs a command; resolves with its pid and stdout, rejects (with stderr) on a non-zero exit. */
export function runChild (cmd: string, args: string[], options: ChildOptions = {}): Promise<ChildResult> {
  const argv = options.as === undefined
    ? [cmd, ...args]
    : ['setpriv', `--reuid=${options.as.uid}`, `--regid=${options.as.gid}`, '--clear-groups', cmd, ...args]
  const child = spawn(argv[0] as string, argv.slice(1), {
    env: { ...process.env, TZ: 'UTC', ...options.env },
    stdio: ['ignore', 'pipe', 'pipe'],
    ...(options.timeoutMs === undefined ? {} : { timeout: options.timeoutMs })
  })
  let stdout = ''
  let stderr = ''
  let partial = ''
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
    stdout += chunk
    if (options.onLine === undefined) return
    const lines = (partial + chunk).split('\n')
    partial = lines.pop() ?? ''
    for (const line of lines) options.onLine(line)
  })
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => { stderr += chunk })
  return new Promise((resolve, reject) => {
    child.on('error', reject)
    child.on('close', code => {
      if (code === 0 && child.pid !== undefined) resolve({ pid: child.pid, stdout })
      else reject(new Error(`${argv.join(' ')} exited ${code ?? child.signalCode}: ${stderr}`))
    })
  })
}

/** Runs `sh -c script` (optionally as another user); `exec` in the script keeps the child's pid. */
export function sh (script: string, options: ChildOptions = {}): Promise<ChildResult> {
  return runChild('sh', ['-c', script], options)
}
