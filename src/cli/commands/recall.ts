import { TierfsError } from '../../errors.js'
import { parseArgs } from '../args.js'
import { callMount } from '../daemon-client.js'
import { Progress } from '../progress.js'
import { inMount } from './migrate.js'

export const usage = 'tierfs recall PATH... [-r] [--wait]'

/** Longest pause between two checks of a --wait (archive recalls take minutes to hours). */
const MAX_POLL_MS = 30_000

/**
 * Starts recalls of the cold data of files or trees (batched per pack); --wait until all is warm,
 * with a progress bar of packs warm on stderr.
 * The wait is a loop of short requests, not one request held open for the hours an archive
 * recall may take; each asks again for any recall that failed or expired meanwhile.
 */
export async function run(argv: string[], out: (s: string) => void): Promise<number> {
  const args = parseArgs(argv, { bool: ['-r', '--recursive', '--wait', '--json'] })
  if (args.positional.length === 0) throw new TierfsError('CONFIG', `usage: ${usage}`)
  const { mountpoint, paths } = await inMount(args.positional)
  const ask = (): Promise<{ files: number; packs: number; warm: number }> => callMount(mountpoint, 'recall', {
    paths, recursive: args.flags.has('-r') || args.flags.has('--recursive'),
  })
  let r = await ask()
  if (args.flags.has('--wait') && r.warm < r.packs) {
    const bar = new Progress(`recalling ${r.files} files:`)
    const started = Date.now()
    for (let pause = 1000; ; pause = Math.min(MAX_POLL_MS, Math.ceil(pause * 1.5))) {
      bar.update(r.warm, r.packs, `packs warm, ${Math.round((Date.now() - started) / 1000)} s`)
      if (r.warm >= r.packs) break
      await new Promise((ok) => setTimeout(ok, pause))
      r = await ask()
    }
    bar.end()
  }
  out(args.flags.has('--json') ? JSON.stringify(r) + '\n' : `${r.files} files, ${r.packs} cold packs, ${r.warm} warm${r.warm < r.packs ? ' (recalling)' : ''}\n`)
  return 0
}
