import type { DiffEntry } from '../../backup/diff.js'
import { TierfsError } from '../../errors.js'
import { parseArgs } from '../args.js'
import { diffEntries } from '../diff-pages.js'

export const usage = 'tierfs diff MOUNTPOINT T1 T2 [PATH] [--json]'

/**
 * What changed between two points of a mounted store: T1 and T2 are restore points
 * (workflow/TIME, workflow/latest) or ISO instants inside the history window. One line per
 * added, modified or deleted entry, in tree order; with --json, one JSON object per line.
 * Paths start at the restore point's root (the namespace root for two instants).
 */
export async function run(argv: string[], out: (s: string) => void): Promise<number> {
  const args = parseArgs(argv, { bool: ['--json'] })
  const [mountpoint, t1, t2, path, extra] = args.positional
  if (mountpoint === undefined || t1 === undefined || t2 === undefined || extra !== undefined) throw new TierfsError('CONFIG', `usage: ${usage}`)
  const json = args.flags.has('--json')
  const counts = { added: 0, modified: 0, deleted: 0 }
  let header = ''
  for await (const e of diffEntries(mountpoint, t1, t2, {
    ...(path === undefined ? {} : { path }),
    onPoints: (p) => { header = `diff ${p.from} -> ${p.to}` },
  })) {
    counts[e.change]++
    out(json ? JSON.stringify(e) + '\n' : line(e))
  }
  if (!json) out(`${header}: ${counts.added} added, ${counts.modified} modified, ${counts.deleted} deleted\n`)
  return 0
}

function line(e: DiffEntry): string {
  const type = e.typeBefore === undefined ? e.type : `${e.typeBefore}->${e.type}`
  const size = e.change === 'added' ? String(e.sizeAfter) : e.change === 'deleted' ? String(e.sizeBefore) : `${e.sizeBefore} -> ${e.sizeAfter}`
  const mark = e.change === 'added' ? '+' : e.change === 'deleted' ? '-' : 'M'
  return `${mark} ${type.padEnd(12)} ${size.padStart(21)}  ${e.path}\n`
}
