import { execFile } from 'node:child_process'
import { createWriteStream } from 'node:fs'
import { TierfsError } from '../src/errors.js'
import { flattenError } from '../src/log.js'
import { Daemon } from './daemon.js'

/**
 * The tierfs daemon process: `node daemon/main.js STORE MOUNTPOINT [-o opts] [--foreground]
 * [--ready-fd N]`. Readiness is reported once the mount is live: a line on --ready-fd (used by
 * `tierfs mount`), and READY=1 to systemd when NOTIFY_SOCKET is set.
 */
export async function runDaemon(argv: string[]): Promise<void> {
  const positional: string[] = []
  const options: string[] = []
  let foreground = false
  let readyFd: number | undefined
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] as string
    if (a === '-o') options.push(...(argv[++i] ?? '').split(','))
    else if (a === '--foreground' || a === '-f') foreground = true
    else if (a === '--ready-fd') readyFd = Number(argv[++i])
    else positional.push(a)
  }
  const [store, mountpoint] = positional
  const ready = (msg: object): void => {
    if (readyFd === undefined) return
    const s = createWriteStream('', { fd: readyFd })
    s.end(JSON.stringify(msg) + '\n')
    readyFd = undefined
  }
  if (store === undefined || mountpoint === undefined) {
    const err = new TierfsError('CONFIG', 'usage: tierfs-daemon STORE MOUNTPOINT [-o options] [--foreground]')
    ready({ ok: false, error: flattenError(err) })
    throw err
  }
  const daemon = new Daemon({ store, mountpoint, options, foreground })
  let signals = 0
  const onSignal = (sig: string): void => {
    if (++signals > 1) return
    void daemon.stop(sig).then(() => process.exit(0), () => process.exit(1))
  }
  process.on('SIGTERM', () => onSignal('SIGTERM'))
  process.on('SIGINT', () => onSignal('SIGINT'))
  // A hangup re-reads the policy files (never dies): broken files are logged, the last good set stays.
  process.on('SIGHUP', () => { void daemon.reloadPolicies() })
  process.on('uncaughtException', (err) => {
    daemon.log.error('uncaught exception; stopping', { err })
    void daemon.stop('crash').finally(() => process.exit(70))
  })
  try {
    await daemon.start()
  } catch (err) {
    ready({ ok: false, error: flattenError(err) })
    await daemon.stop('start failed').catch(() => undefined)
    throw err
  }
  ready({ ok: true, pid: process.pid })
  if (process.env.NOTIFY_SOCKET !== undefined) {
    execFile('systemd-notify', ['--ready', `--pid=${process.pid}`], () => undefined)
  }
}

