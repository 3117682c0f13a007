import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'

const MAIN = fileURLToPath(new URL('../glacier-server/main.mjs', import.meta.url))

/**
 * The key pair the Glacier tests use. It is set as AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY in
 * the test process (where the SDK's standard chain picks it up) and in the server's environment
 * (which then verifies every SigV4 signature against it). Not a real credential.
 */
export const TEST_KEYS = { accessKeyId: 'AKIDTIERFSGLACIER01', secretAccessKey: 'tierfs-glacier-test-secret-not-a-real-key' }
export const TEST_REGION = 'us-east-1'

export interface GlacierServer {
  endpoint: string
  port: number
  /** Fails the next `count` API requests (of `op` only, when given) with this status and code. */
  faults(f: { count: number; status?: number; code?: string; op?: string }): Promise<void>
  /** Changes how long archive-retrieval (and inventory-retrieval) jobs take from now on. */
  setJobDelay(ms: number): Promise<void>
  /**
   * Changes, from now on: the job delay; how old the vault's latest inventory is (0: taken just
   * now); how long a completed multipart upload can be completed again (default 1 h).
   */
  configure(c: { jobDelayMs?: number; inventoryLagMs?: number; completionMemoryMs?: number }): Promise<void>
  stats(): Promise<{ requests: Record<string, number>; vaults: Record<string, { archives: number; uploads: number; jobs: number }> }>
  stop(): Promise<void>
}

/** Sets the test key pair in this process's environment, for the SDK's default credential chain. */
export function useTestCredentials(): void {
  process.env.AWS_ACCESS_KEY_ID = TEST_KEYS.accessKeyId
  process.env.AWS_SECRET_ACCESS_KEY = TEST_KEYS.secretAccessKey
  delete process.env.AWS_SESSION_TOKEN
  delete process.env.AWS_PROFILE
}

/** Starts test/glacier-server/main.mjs as a child process on 127.0.0.1 with a free port. */
export async function startGlacierServer(opts: { jobDelayMs?: number; vaults?: string[] } = {}): Promise<GlacierServer> {
  const args = [MAIN, '--port', '0', '--job-delay-ms', String(opts.jobDelayMs ?? 1000), '--region', TEST_REGION]
  for (const v of opts.vaults ?? []) args.push('--vault', v)
  const child = spawn(process.execPath, args, {
    env: { PATH: process.env.PATH, TMPDIR: process.env.TMPDIR, AWS_ACCESS_KEY_ID: TEST_KEYS.accessKeyId, AWS_SECRET_ACCESS_KEY: TEST_KEYS.secretAccessKey },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let stderr = ''
  child.stderr.setEncoding('utf8').on('data', (s: string) => { stderr += s })
  const lines = createInterface({ input: child.stdout })
  const first = await Promise.race([
    once(lines, 'line').then(([l]) => String(l)),
    once(child, 'exit').then(([code]) => { throw new Error(`glacier test server exited ${String(code)}: ${stderr}`) }),
  ])
  const port = (JSON.parse(first) as { port: number }).port
  const endpoint = `http://127.0.0.1:${port}`
  const admin = async (path: string, body?: unknown): Promise<unknown> => {
    const res = await fetch(`${endpoint}/__admin/${path}`, body === undefined ? {} : { method: 'POST', body: JSON.stringify(body) })
    if (!res.ok) throw new Error(`glacier test server admin ${path}: HTTP ${res.status}`)
    return res.json()
  }
  let stopped: Promise<void> | undefined
  return {
    endpoint,
    port,
    faults: async (f) => { await admin('faults', f) },
    setJobDelay: async (ms) => { await admin('config', { jobDelayMs: ms }) },
    configure: async (c) => { await admin('config', c) },
    stats: async () => (await admin('stats')) as Awaited<ReturnType<GlacierServer['stats']>>,
    stop: () => {
      stopped ??= (async () => {
        if (child.exitCode !== null || child.signalCode !== null) return
        const exited = once(child, 'exit')
        child.kill('SIGTERM')
        await exited
      })()
      return stopped
    },
  }
}
