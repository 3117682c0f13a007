import { TierfsError } from '../../errors.js'
import { parseArgs } from '../args.js'
import { callMount } from '../daemon-client.js'

/** Hidden from `tierfs help`: tools for tests and demos. */
export const usage = 'tierfs debug clock-offset MOUNTPOINT [OFFSET]'

/**
 *   clock-offset MOUNTPOINT [OFFSET]   shows or sets the daemon's injected clock offset ("31d",
 *                                      "-2h", "0s"): policy ages and schedules see now + OFFSET
 */
export async function run(argv: string[], out: (s: string) => void): Promise<number> {
  const args = parseArgs(argv, { bool: ['--json'] })
  const [sub, mnt, offset] = args.positional
  if (sub !== 'clock-offset' || mnt === undefined || args.positional.length > 3) throw new TierfsError('CONFIG', `usage: ${usage}`)
  const r = await callMount<{ offsetMs: number; now: string }>(mnt, 'clock-offset', offset === undefined ? {} : { offset })
  out(args.flags.has('--json') ? JSON.stringify(r) + '\n' : `clock offset ${r.offsetMs} ms: the daemon's policy clock reads ${r.now}\n`)
  return 0
}
