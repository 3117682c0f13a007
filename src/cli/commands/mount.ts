import { spawn } from 'node:child_process'
import { mkdir, open } from 'node:fs/promises'
import { fileURLToPath } from 'node:url'
import { TierfsError } from '../../errors.js'
import { StoreLayout } from '../../store/layout.js'
import { need, parseArgs } from '../args.js'

export const usage = 'tierfs mount STORE MOUNTPOINT [--foreground] [-o OPTION[,OPTION...]]'

const DAEMON = fileURLToPath(new URL('../../../daemon/main.js', import.meta.url))

/**
 * V8 flags of the daemon process (systemd/tierfs@.service passes the same). The daemon allocates
 * a buffer for every chunk it reads (1 MiB on average) while its heap stays small (about 20 MB);
 * from V8's default initial old-generation limit that churn starts incremental marking every
 * ~16 MiB read: ~60 full collections per GiB, with their helper threads taking a core. With a
 * 128 MB initial limit it is ~15, and a cold sequential read of 1 GiB went from 382-451 to
 * 527-606 MB/s, for ~50 MiB more peak RSS (writes and seals unchanged). A foreground daemon runs
 * in the `tierfs` process, whose shebang passes it too.
 */
export const DAEMON_NODE_FLAGS: readonly string[] = ['--initial-old-space-size=128']
const DAEMON_RUN = new URL('../../../daemon/run.js', import.meta.url).href

/**
 * Mounts STORE at MOUNTPOINT. In the foreground the daemon runs in this process until unmounted
 * or signalled; otherwise a detached daemon is started and this returns once the mount is live
 * (or with the daemon's own error if it is not).
 */
export async function run(argv: string[], out: (s: string) => void): Promise<number> {
  const args = parseArgs(argv, { bool: ['--foreground', '-f'], valued: ['-o'] })
  const [store, mountpoint] = need(args, 2, usage) as [string, string]
  const options = (args.values.get('-o') ?? []).flatMap((o) => o.split(',')).filter((o) => o !== '')
  const daemonArgs = [store, mountpoint, ...(options.length > 0 ? ['-o', options.join(',')] : [])]
  if (args.flags.has('--foreground') || args.flags.has('-f')) {
    const { runDaemon } = (await import(DAEMON_RUN)) as { runDaemon: (a: string[]) => Promise<void> }
    await runDaemon([...daemonArgs, '--foreground'])
    return new Promise<number>(() => { /* the daemon exits the process when it stops */ })
  }
  const layout = new StoreLayout(store)
  await mkdir(layout.logDir, { recursive: true })
  const stderr = await open(`${layout.logDir}/daemon.stderr`, 'a')
  const child = spawn(process.execPath, [...DAEMON_NODE_FLAGS, DAEMON, ...daemonArgs, '--ready-fd', '3'], {
    detached: true, stdio: ['ignore', stderr.fd, stderr.fd, 'pipe'],
  })
  await stderr.close()
  const answer = await new Promise<string>((ok) => {
    let buf = ''
    const pipe = child.stdio[3] as NodeJS.ReadableStream
    pipe.setEncoding('utf8')
    pipe.on('data', (d: string) => { buf += d })
    pipe.on('end', () => ok(buf))
    pipe.on('error', () => ok(buf))
  })
  let msg: { ok?: boolean; pid?: number; error?: { code?: string; message?: string } } = {}
  try {
    msg = JSON.parse(answer) as typeof msg
  } catch {
    msg = { ok: false, error: { code: 'IO', message: `the daemon exited before the mount was live (see ${layout.logDir}/daemon.stderr)` } }
  }
  if (msg.ok !== true) {
    throw new TierfsError((msg.error?.code as 'IO') ?? 'IO', msg.error?.message ?? 'mount failed')
  }
  child.unref()
  out(`mounted ${store} at ${mountpoint} (daemon pid ${msg.pid}, log ${layout.log})\n`)
  return 0
}
