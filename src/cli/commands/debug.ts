import { TierfsError } from '../../errors.js'
import { parseArgs } from '../args.js'
import { callMount } from '../daemon-client.js'

/** Hidden from `tierfs help`: tools for tests and demos. */
export const usage = 'tierfs debug clock-offset MOUNTPOINT [OFFSET] | tierfs debug crash-at MOUNTPOINT POINT [N]'

/**
 *   clock-offset MOUNTPOINT [OFFSET]   shows or sets the daemon's injected clock offset ("31d",
 *                                      "-2h", "0s"): policy ages and schedules see now + OFFSET
 *   crash-at MOUNTPOINT POINT [N]      arms a crash point (src/crash-point.ts; the daemon checks the
 *                                      name): the daemon kills itself with SIGKILL the Nth time it
 *                                      reaches POINT; "none" disarms
 */
export async function run(argv: string[], out: (s: string) => void): Promise<number> {
  const args = parseArgs(argv, { bool: ['--json'] })
  const [sub, mnt, arg, nth] = args.positional
  if (sub === 'clock-offset' && mnt !== undefined && args.positional.length <= 3) {
    const r = await callMount<{ offsetMs: number; now: string }>(mnt, 'clock-offset', arg === undefined ? {} : { offset: arg })
    out(args.flags.has('--json') ? JSON.stringify(r) + '\n' : `clock offset ${r.offsetMs} ms: the daemon's policy clock reads ${r.now}\n`)
    return 0
  }
  if (sub === 'crash-at' && mnt !== undefined && arg !== undefined && args.positional.length <= 4) {
    const n = nth === undefined ? 1 : Number(nth)
    if (!Number.isInteger(n) || n < 1) throw new TierfsError('CONFIG', `crash-at: N must be a positive integer, not ${JSON.stringify(nth)}`)
    const r = await callMount<unknown>(mnt, 'crash-at', { point: arg, nth: n })
    out(JSON.stringify(r) + '\n')
    return 0
  }
  throw new TierfsError('CONFIG', `usage: ${usage}`)
}
