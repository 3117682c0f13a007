import { TierfsError } from '../../errors.js'
import type { RestorePointInfo } from '../../backup/restore-points.js'
import { parseArgs } from '../args.js'
import { callMount } from '../daemon-client.js'

export const usage = 'tierfs snapshot create|list|delete MOUNTPOINT [--workflow NAME] [--path DIR] [--json] [TIME]'

/**
 * Restore points of a mounted store:
 *   create MOUNTPOINT --workflow NAME [--path DIR]   pin the tree under DIR (default /) now
 *   list MOUNTPOINT [--workflow NAME] [--json]
 *   delete MOUNTPOINT --workflow NAME TIME           TIME as listed (e.g. 2026-11-21T02:00:00Z)
 */
export async function run(argv: string[], out: (s: string) => void): Promise<number> {
  const args = parseArgs(argv, { bool: ['--json'], valued: ['--workflow', '--path'] })
  const [sub, mountpoint, time] = args.positional
  const workflow = args.values.get('--workflow')?.[0]
  if (mountpoint === undefined) throw new TierfsError('CONFIG', `usage: ${usage}`)
  const json = args.flags.has('--json')
  switch (sub) {
    case 'create': {
      if (workflow === undefined) throw new TierfsError('CONFIG', 'snapshot create needs --workflow NAME')
      const started = Date.now()
      const rp = await callMount<RestorePointInfo>(mountpoint, 'snapshot-create', { workflow, path: args.values.get('--path')?.[0] ?? '/' })
      out(json ? JSON.stringify({ ...rp, elapsedMs: Date.now() - started }) + '\n' : `created ${mountpoint}/.snapshots/${rp.workflow}/${rp.name}\n`)
      return 0
    }
    case 'list': {
      const list = await callMount<RestorePointInfo[]>(mountpoint, 'snapshot-list', workflow === undefined ? {} : { workflow })
      out(json ? JSON.stringify(list, null, 2) + '\n' : list.map((p) => `${p.workflow}\t${p.name}`).join('\n') + (list.length > 0 ? '\n' : ''))
      return 0
    }
    case 'delete': {
      if (workflow === undefined || time === undefined) throw new TierfsError('CONFIG', 'snapshot delete needs --workflow NAME and TIME')
      const rp = await callMount<RestorePointInfo>(mountpoint, 'snapshot-delete', { workflow, name: time })
      out(json ? JSON.stringify(rp) + '\n' : `deleted ${rp.workflow}/${rp.name}\n`)
      return 0
    }
    default:
      throw new TierfsError('CONFIG', `usage: ${usage}`)
  }
}
