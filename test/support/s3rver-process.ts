import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { mkdtemp, rm } from 'node:fs/promises'
import { request } from 'node:http'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'

const require = createRequire(import.meta.url)
const S3RVER_BIN = join(dirname(require.resolve('s3rver/package.json')), 'bin', 's3rver.js')

// A test that dies before its teardown must not leave an s3rver behind.
const live = new Set<ChildProcess>()
process.on('exit', () => {
  for (const c of live) c.kill('SIGKILL')
})

/** s3rver's built-in account: the only access key id it accepts (it does not check V4 signatures). */
export const S3RVER_KEY = 'S3RVER'

/**
 * Points the AWS SDK's default credential chain at s3rver's account through the environment,
 * and away from anything on the host: no shared config files, no instance metadata service.
 */
export function useS3rverCredentials(): void {
  process.env.AWS_ACCESS_KEY_ID = S3RVER_KEY
  process.env.AWS_SECRET_ACCESS_KEY = S3RVER_KEY
  process.env.AWS_REGION = 'us-east-1'
  process.env.AWS_EC2_METADATA_DISABLED = 'true'
  process.env.AWS_SHARED_CREDENTIALS_FILE = join(tmpdir(), 'tierfs-no-aws-credentials')
  process.env.AWS_CONFIG_FILE = join(tmpdir(), 'tierfs-no-aws-config')
  delete process.env.AWS_PROFILE
  delete process.env.AWS_SESSION_TOKEN
}

/**
 * A real s3rver, run as a child process (its own CLI under this node) on 127.0.0.1, storing
 * into a temporary directory. The first start takes a free port from the OS; `restart` and
 * `start` after `kill`/`stop` come back on the same port and directory, so clients configured
 * with `endpoint` reconnect to the same data.
 */
export class S3rverProcess {
  private child: ChildProcess | undefined
  private exited: Promise<unknown> | undefined
  private listenPort = 0

  private constructor(readonly dir: string) {}

  /** The server's process id while it runs (benchmarks read its CPU time). */
  get pid(): number | undefined {
    return this.child?.pid
  }

  static async start(opts: { buckets?: string[] } = {}): Promise<S3rverProcess> {
    const s = new S3rverProcess(await mkdtemp(join(tmpdir(), 'tierfs-s3rver-')))
    try {
      await s.start()
      for (const b of opts.buckets ?? []) await s.createBucket(b)
    } catch (err) {
      await s.destroy()
      throw err
    }
    return s
  }

  get port(): number {
    return this.listenPort
  }

  get endpoint(): string {
    return `http://127.0.0.1:${this.listenPort}`
  }

  get running(): boolean {
    return this.child !== undefined
  }

  /** Starts the process (again) and resolves once it answers HTTP. */
  async start(): Promise<void> {
    if (this.child !== undefined) return
    // s3rver encrypts ListObjectsV2 continuation tokens with DES, which OpenSSL 3 keeps in its
    // legacy provider: without it every listing longer than one page fails with a 500.
    const child = spawn(process.execPath, ['--openssl-legacy-provider', S3RVER_BIN, '-d', this.dir, '-a', '127.0.0.1', '-p', String(this.listenPort), '--silent'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    this.child = child
    this.exited = once(child, 'exit')
    live.add(child)
    child.once('exit', () => live.delete(child))
    let output = ''
    const listening = new Promise<number>((resolve, reject) => {
      const onData = (d: Buffer): void => {
        output += d.toString()
        const m = /listening on [\d.]+:(\d+)/.exec(output)
        if (m !== null) resolve(Number(m[1]))
      }
      child.stdout?.on('data', onData)
      child.stderr?.on('data', (d: Buffer) => { output += d.toString() })
      child.once('exit', (code, signal) => reject(new Error(`s3rver exited (${code ?? signal}) before listening: ${output.slice(-2000)}`)))
      setTimeout(() => reject(new Error(`s3rver did not start within 15 s: ${output.slice(-2000)}`)), 15_000).unref()
    })
    try {
      this.listenPort = await listening
      await this.waitAnswering()
    } catch (err) {
      await this.kill()
      throw err
    }
  }

  /** Ends the process abruptly (SIGKILL), as a crash or power loss would. */
  async kill(): Promise<void> {
    await this.end('SIGKILL')
  }

  /** Ends the process (SIGTERM, then SIGKILL after 3 s) and waits for it to exit. */
  async stop(): Promise<void> {
    await this.end('SIGTERM')
  }

  async restart(): Promise<void> {
    await this.stop()
    await this.start()
  }

  /** Stops the process and removes its directory. */
  async destroy(): Promise<void> {
    await this.stop()
    await rm(this.dir, { recursive: true, force: true })
  }

  /** Creates a bucket (an unsigned request: s3rver allows anonymous ones). */
  async createBucket(name: string): Promise<void> {
    const status = await this.http('PUT', `/${name}`)
    if (status !== 200) throw new Error(`s3rver: creating bucket ${name} answered ${status}`)
  }

  private async end(signal: NodeJS.Signals): Promise<void> {
    const child = this.child
    if (child === undefined) return
    if (child.exitCode === null && child.signalCode === null) {
      child.kill(signal)
      const force = setTimeout(() => child.kill('SIGKILL'), 3000)
      await this.exited
      clearTimeout(force)
    }
    this.child = undefined
  }

  private async waitAnswering(): Promise<void> {
    for (let i = 0; ; i++) {
      try {
        if ((await this.http('GET', '/')) === 200) return
      } catch (err) {
        if (i > 100) throw err
      }
      await new Promise((r) => setTimeout(r, 50))
    }
  }

  private http(method: string, path: string): Promise<number> {
    return new Promise((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port: this.port, method, path, agent: false }, (res) => {
        res.resume()
        res.on('end', () => resolve(res.statusCode ?? 0))
      })
      req.on('error', reject)
      req.end()
    })
  }
}
