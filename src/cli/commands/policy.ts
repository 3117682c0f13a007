import { readFile } from 'node:fs/promises'
import { TierfsError } from '../../errors.js'
import { parsePolicyFile } from '../../policy/policy-file.js'
import { parseArgs } from '../args.js'
import { callMount } from '../daemon-client.js'

export const usage = 'tierfs policy check FILE... | plan MOUNTPOINT [--json] | apply MOUNTPOINT | explain MOUNTPOINT PATH | reload MOUNTPOINT'

interface PlanResult {
  rows: Array<{ policy: string; transition: string; files: number; bytes: number; chunks?: number }>
  errors: Array<{ path?: string; message: string }>
  /** All problems; `errors` lists the first ones. */
  errorCount?: number
  files: number
  bytes: number
}

/**
 *   check FILE...            validates policy files offline; file:line:col: message per problem, exit 1
 *   plan MOUNTPOINT          dry run: per policy and transition, files and bytes that would move now
 *   apply MOUNTPOINT         runs a pass now and prints its report
 *   explain MOUNTPOINT PATH  which policy decides for PATH, and why
 *   reload MOUNTPOINT        re-reads the policies directory now (the daemon also does every 10 s)
 */
export async function run(argv: string[], out: (s: string) => void): Promise<number> {
  const args = parseArgs(argv, { bool: ['--json'] })
  const [sub, ...rest] = args.positional
  const json = args.flags.has('--json')
  switch (sub) {
    case 'check': {
      if (rest.length === 0) throw new TierfsError('CONFIG', 'policy check needs at least one FILE')
      let bad = 0
      for (const file of rest) {
        try {
          const policies = parsePolicyFile(await readFile(file, 'utf8'), file)
          out(`${file}: ok (${policies.map((p) => p.name).join(', ') || 'no policies'})\n`)
        } catch (err) {
          bad++
          out(`${err instanceof Error ? err.message : String(err)}\n`)
        }
      }
      return bad === 0 ? 0 : 1
    }
    case 'plan': {
      const [mnt] = rest
      if (mnt === undefined) throw new TierfsError('CONFIG', `usage: ${usage}`)
      const plan = await callMount<PlanResult>(mnt, 'policy-plan')
      if (json) { out(JSON.stringify(plan, null, 2) + '\n'); return 0 }
      out('policy\ttransition\tfiles\tbytes\n')
      for (const r of plan.rows) out(`${r.policy}\t${r.transition}\t${r.chunks === undefined ? r.files : `${r.chunks} chunks`}\t${r.bytes}\n`)
      for (const e of plan.errors) out(`error: ${e.path ?? ''} ${e.message}\n`)
      const more = (plan.errorCount ?? plan.errors.length) - plan.errors.length
      if (more > 0) out(`error: ... and ${more} more\n`)
      out(`total\t\t${plan.files}\t${plan.bytes}\n`)
      return 0
    }
    case 'apply': {
      const [mnt] = rest
      if (mnt === undefined) throw new TierfsError('CONFIG', `usage: ${usage}`)
      const r = await callMount<Record<string, unknown>>(mnt, 'policy-apply')
      out(JSON.stringify(r, null, json ? 2 : 0) + '\n')
      return Array.isArray(r.errors) && r.errors.length > 0 ? 1 : 0
    }
    case 'explain': {
      const [mnt, path] = rest
      if (mnt === undefined || path === undefined) throw new TierfsError('CONFIG', `usage: ${usage}`)
      const r = await callMount<Record<string, unknown>>(mnt, 'policy-explain', { path })
      if (json) { out(JSON.stringify(r, null, 2) + '\n'); return 0 }
      out(`${path}: on ${String(r.tier)} (${String(r.kind)})\n`)
      out(r.policy === undefined ? 'no policy matches\n' : `policy ${String(r.policy)} (${String(r.origin)}): ${String(r.action)}: ${String(r.reason)}\n`)
      return 0
    }
    case 'reload': {
      const [mnt] = rest
      if (mnt === undefined) throw new TierfsError('CONFIG', `usage: ${usage}`)
      const r = await callMount<{ errors: Array<{ message: string }>; policies: string[] }>(mnt, 'policy-reload')
      for (const e of r.errors) out(`${e.message}\n`)
      out(`policies in force: ${r.policies.join(', ') || 'none'}\n`)
      return r.errors.length === 0 ? 0 : 1
    }
    default:
      throw new TierfsError('CONFIG', `usage: ${usage}`)
  }
}
