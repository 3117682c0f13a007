import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { BlobServiceClient, StorageSharedKeyCredential } from '@azure/storage-blob'

/** azurite's published development account (https://learn.microsoft.com/azure/storage/common/storage-use-azurite). */
export const DEV_ACCOUNT = 'devstoreaccount1'
export const DEV_KEY = 'Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=='

// The child exits when its stdin (a pipe held by this process) closes, so a test process that
// dies without running its teardown does not leave azurite behind.
const EXIT_WITH_PARENT = 'data:text/javascript,process.stdin.on("close",()=>process.exit(0)).resume()'

export interface Azurite {
  /** Account URL: http://127.0.0.1:<port>/devstoreaccount1 */
  accountUrl: string
  /** The environment a tier resolves the dev account's shared key from. */
  env: NodeJS.ProcessEnv
  createContainer(name: string): Promise<void>
  stop(): Promise<void>
}

/**
 * Starts azurite's blob service as a child process on 127.0.0.1 with an OS-chosen port (read
 * back from its start-up line), data in a fresh temporary directory, no telemetry. Resolves once
 * the service answers a request; `stop` kills it and removes the directory.
 */
export async function startAzurite(): Promise<Azurite> {
  const main = join(dirname(createRequire(import.meta.url).resolve('azurite/package.json')), 'dist/src/blob/main.js')
  const location = await mkdtemp(join(tmpdir(), 'tierfs-azurite-'))
  const child = spawn(process.execPath, ['--import', EXIT_WITH_PARENT, main, '--blobHost', '127.0.0.1', '--blobPort', '0', '--location', location,
    '--disableTelemetry', '--skipApiVersionCheck', '--loose', '--silent'], { stdio: ['pipe', 'pipe', 'pipe'], env: childEnv() })
  const stop = async (): Promise<void> => {
    await kill(child)
    await rm(location, { recursive: true, force: true })
  }
  let port: number
  try {
    port = await listeningPort(child, 30_000)
  } catch (err) {
    await stop()
    throw err
  }
  const accountUrl = `http://127.0.0.1:${port}/${DEV_ACCOUNT}`
  const service = new BlobServiceClient(accountUrl, new StorageSharedKeyCredential(DEV_ACCOUNT, DEV_KEY), { retryOptions: { maxTries: 1 } })
  try {
    await service.getProperties()
  } catch (err) {
    await stop()
    throw err
  }
  return {
    accountUrl,
    env: { AZURE_STORAGE_ACCOUNT: DEV_ACCOUNT, AZURE_STORAGE_KEY: DEV_KEY },
    createContainer: async (name) => {
      await service.getContainerClient(name).create()
    },
    stop,
  }
}

/** This environment minus tap's coverage hooks, which have no business inside azurite. */
function childEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env }
  delete env['NODE_OPTIONS']
  delete env['NODE_V8_COVERAGE']
  return env
}

function listeningPort(child: ChildProcess, timeoutMs: number): Promise<number> {
  return new Promise((resolve, reject) => {
    let out = ''
    const timer = setTimeout(() => done(new Error(`azurite did not start within ${timeoutMs} ms: ${out}`)), timeoutMs)
    const onData = (b: Buffer): void => {
      out += b.toString()
      const m = /successfully listens on https?:\/\/127\.0\.0\.1:(\d+)/.exec(out)
      if (m?.[1] !== undefined) done(undefined, Number(m[1]))
    }
    const onExit = (code: number | null): void => done(new Error(`azurite exited (${code}) before listening: ${out}`))
    const done = (err: Error | undefined, port?: number): void => {
      clearTimeout(timer)
      child.stdout?.off('data', onData)
      child.off('exit', onExit)
      // Keep draining so a chatty child never blocks on a full pipe.
      child.stdout?.resume()
      if (err !== undefined) reject(err)
      else resolve(port as number)
    }
    child.stdout?.on('data', onData)
    child.stderr?.on('data', (b: Buffer) => { out += b.toString() })
    child.on('exit', onExit)
  })
}

// azurite's SIGTERM shutdown waits out its clients' keep-alive connections (about 5 s); its
// data is thrown away with the directory, so a hard kill loses nothing and keeps tests fast.
async function kill(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  child.kill('SIGKILL')
  await exited
}
