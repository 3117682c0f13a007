import type { CheckpointResult } from '../../store/checkpoint.js'
import { need, parseArgs } from '../args.js'
import { callMount } from '../daemon-client.js'

export const usage = 'tierfs checkpoint MOUNTPOINT [--full] [--json]'

/** Hours a checkpoint of a very large store may take before the command stops waiting. */
const WAIT_MS = 6 * 3_600_000

/** Writes a checkpoint of the mounted store's metadata now (to checkpoint.target) and says what. */
export async function run(argv: string[], out: (s: string) => void): Promise<number> {
  const args = parseArgs(argv, { bool: ['--full', '--json'] })
  const [mountpoint] = need(args, 1, usage) as [string]
  const r = await callMount<CheckpointResult>(mountpoint, 'checkpoint', { full: args.flags.has('--full') }, WAIT_MS)
  if (args.flags.has('--json')) {
    out(JSON.stringify(r, null, 2) + '\n')
    return 0
  }
  const kind = r.kind === 'delta' ? `delta on ${r.base}` : `full${r.fullReason === undefined ? '' : `: ${r.fullReason}`}`
  out(`wrote ${r.tier}:${r.key} (${kind}), ${r.entries} records, ${r.bytes} bytes, version ${r.head}, in ${r.elapsedMs} ms\n`)
  for (const d of r.deleted) out(`deleted ${r.tier}:meta/checkpoints/${d}\n`)
  if (r.pruneError !== undefined) out(`could not delete old checkpoints: ${r.pruneError}\n`)
  return 0
}
