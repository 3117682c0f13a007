import { TierfsError } from '../../errors.js'
import type { RunRecord, WorkflowState } from '../../backup/scheduler.js'
import { parseArgs } from '../args.js'
import { callMount } from '../daemon-client.js'

export const usage = 'tierfs backup run MOUNTPOINT WORKFLOW [--json] | status MOUNTPOINT [--json]'

const MIB = 1024 * 1024
/** A backup run may take hours; the answer comes when it ends. */
const RUN_TIMEOUT_MS = 2 ** 31 - 1

/**
 *   run MOUNTPOINT WORKFLOW   runs a workflow of the policy files now, waits, prints its summary
 *                             (joins the run in flight if one is going); exit 1 if it failed
 *   status MOUNTPOINT         workflows, schedules, next and last runs
 */
export async function run(argv: string[], out: (s: string) => void): Promise<number> {
  const args = parseArgs(argv, { bool: ['--json'] })
  const [sub, mountpoint, workflow, extra] = args.positional
  const json = args.flags.has('--json')
  if (mountpoint === undefined || extra !== undefined) throw new TierfsError('CONFIG', `usage: ${usage}`)
  switch (sub) {
    case 'run': {
      if (workflow === undefined) throw new TierfsError('CONFIG', `usage: ${usage}`)
      const rec = await callMount<RunRecord & { joined: boolean }>(mountpoint, 'backup-run', { workflow }, RUN_TIMEOUT_MS)
      if (json) out(JSON.stringify(rec, null, 2) + '\n')
      else out(describe(workflow, rec))
      return rec.ok ? 0 : 1
    }
    case 'status': {
      const list = await callMount<WorkflowState[]>(mountpoint, 'backup-status')
      if (json) {
        out(JSON.stringify(list, null, 2) + '\n')
        return 0
      }
      for (const w of list) {
        const last = w.lastRun === undefined ? 'never run' : `last ${w.lastRun.ok ? 'ok' : 'FAILED'} at ${w.lastRun.finishedAt}`
        out(`${w.name}\t${w.mode}\t${w.schedule ?? 'manual'}\t${w.running ? 'running' : last}${w.nextRun === undefined ? '' : `\tnext ${w.nextRun}`}\n`)
      }
      return 0
    }
    default:
      throw new TierfsError('CONFIG', `usage: ${usage}`)
  }
}

function describe(workflow: string, rec: RunRecord & { joined: boolean }): string {
  const joined = rec.joined ? ' (joined the run already in progress)' : ''
  if (!rec.ok) return `backup ${workflow} FAILED${joined}: ${rec.error?.message ?? 'unknown error'} [${rec.error?.code ?? 'IO'}]\n`
  const s = rec.summary ?? {}
  const rp = s.restorePoint as { workflow: string; name: string } | undefined
  const point = rp === undefined ? '' : `restore point ${rp.workflow}/${rp.name}`
  if (s.mode !== 'ingest') return `backup ${workflow}${joined}: ${point}\n`
  const n = (k: string): number => Number(s[k] ?? 0)
  return [
    `backup ${workflow} (ingest ${String(s.source)} -> ${String(s.dest)})${joined}: ${point}`,
    `  files    ${n('filesNew')} new, ${n('filesChanged')} changed, ${n('filesUnchanged')} unchanged; ${n('deleted')} entries deleted`,
    `  other    ${n('dirs')} directories, ${n('symlinks')} symlinks, ${n('hardLinks')} hard links, ${n('specials')} special files`,
    `  read     ${(n('bytesRead') / MIB).toFixed(1)} MiB`,
    `  stored   ${(n('bytesStored') / MIB).toFixed(1)} MiB (growth of the store)`,
    ...(typeof s.xattrs === 'string' ? [`  xattrs   ${s.xattrs}`] : []),
    `  time     ${(n('elapsedMs') / 1000).toFixed(1)} s${n('errors') > 0 ? `\n  ERRORS   ${n('errors')} source entries could not be read (see the daemon log)` : ''}`,
    '',
  ].join('\n')
}
