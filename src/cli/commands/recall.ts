import { TierfsError } from '../../errors.js'
import { parseArgs } from '../args.js'
import { callMount } from '../daemon-client.js'
import { inMount } from './migrate.js'

export const usage = 'tierfs recall PATH... [-r] [--wait]'

/** Starts recalls of the cold data of files or trees (batched per pack); --wait until all is warm. */
export async function run(argv: string[], out: (s: string) => void): Promise<number> {
  const args = parseArgs(argv, { bool: ['-r', '--recursive', '--wait', '--json'] })
  if (args.positional.length === 0) throw new TierfsError('CONFIG', `usage: ${usage}`)
  const { mountpoint, paths } = await inMount(args.positional)
  const r = await callMount<{ files: number; packs: number; warm: number }>(mountpoint, 'recall', {
    paths, recursive: args.flags.has('-r') || args.flags.has('--recursive'), wait: args.flags.has('--wait'),
  })
  out(args.flags.has('--json') ? JSON.stringify(r) + '\n' : `${r.files} files, ${r.packs} cold packs, ${r.warm} warm${r.warm < r.packs ? ' (recalling)' : ''}\n`)
  return 0
}
