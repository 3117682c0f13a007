import type { PruneReport } from '../../backup/prune.js'
import { need, parseArgs } from '../args.js'
import { callMount } from '../daemon-client.js'

export const usage = 'tierfs prune MOUNTPOINT [--dry-run] [--json]'

const MIB = 1024 * 1024

/**
 * Applies every workflow's retention rule (policies' backup.retain), drops the versions no
 * restore point or history instant needs, and frees the chunks and packs nothing references.
 * Runs while the filesystem is in use. --dry-run plans and reports without changing anything.
 */
export async function run(argv: string[], out: (s: string) => void): Promise<number> {
  const args = parseArgs(argv, { bool: ['--dry-run', '--json'] })
  const [mountpoint] = need(args, 1, usage) as [string]
  const dryRun = args.flags.has('--dry-run')
  const r = await callMount<PruneReport>(mountpoint, 'prune', { dryRun })
  if (args.flags.has('--json')) {
    out(JSON.stringify(r, null, 2) + '\n')
    return r.problems.length === 0 ? 0 : 1
  }
  const would = dryRun ? 'would remove' : 'removed'
  const lines: string[] = []
  for (const p of r.pointsRemoved) lines.push(`${would} restore point ${p.workflow}/${p.name}`)
  for (const p of r.pointsKept) lines.push(`kept ${p.workflow}/${p.name}: ${p.reasons.join('; ')}`)
  lines.push(
    `restore points ${r.pointsRemoved.length} ${dryRun ? 'to remove' : 'removed'}, ${r.pointsKept.length} kept`,
    `versions       ${r.versionsDropped} ${dryRun ? 'to drop' : 'dropped'}`,
    `chunks         ${r.chunksFreed} ${dryRun ? 'to free' : 'freed'}`,
    `packs          ${r.packsDeleted} ${dryRun ? 'to delete' : 'deleted'}, ${r.packsRepacked} ${dryRun ? 'to repack' : 'repacked'}`
      + (r.packsDeferred > 0 ? `, ${r.packsDeferred} cold packs too young to delete` : '')
      + (r.packsSparse > 0 ? `, ${r.packsSparse} sparse packs off the block tier left to the migrator` : ''),
    `space          ${(r.bytesFreed / MIB).toFixed(1)} MiB ${dryRun ? 'to reclaim' : 'reclaimed'} (${(r.bytesRepacked / MIB).toFixed(1)} MiB copied by repacking)`,
    `time           ${Math.round(r.totalMs)} ms (planning ${Math.round(r.planningMs)} ms)`,
  )
  for (const p of r.problems) lines.push(`PROBLEM ${p}`)
  out(lines.join('\n') + '\n')
  return r.problems.length === 0 ? 0 : 1
}
