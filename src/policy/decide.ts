import { compileGlob } from './glob.js'
import type { Policy, TierKind, TierStep } from './policy-file.js'

/** What the policy engine needs to know about one file. */
export interface FileFacts {
  path: string
  size: number
  uid: number
  gid: number
  mtimeMs: number
  atimeMs: number
  ctimeMs: number
  /** Where its data is now. */
  tier: TierKind
  target?: string
}

export type Action = 'none' | 'stay' | 'move' | 'delete'

export interface Decision {
  action: Action
  /** The policy that decided, or undefined when none matched. */
  policy?: string
  origin?: string
  /** Destination for 'move' (and the current step for 'stay'). */
  to?: { tier: TierKind; target?: string }
  ageDays: number
  /** One sentence an operator can read. */
  reason: string
}

/** Policies compiled for matching, in decision order (priority, then file order). */
export class PolicySet {
  private readonly compiled: Array<{ p: Policy; inc: RegExp[]; exc: RegExp[] }>

  constructor(readonly policies: readonly Policy[]) {
    this.compiled = [...policies]
      .sort((a, b) => b.priority - a.priority || a.order - b.order)
      .map((p) => ({ p, inc: p.match.paths.map(compileGlob), exc: p.match.exclude.map(compileGlob) }))
  }

  /** The first policy (by priority, then file order) whose match rules accept the file. */
  select(f: Pick<FileFacts, 'path' | 'size' | 'uid' | 'gid'>): Policy | undefined {
    for (const { p, inc, exc } of this.compiled) {
      const m = p.match
      if (!inc.some((r) => r.test(f.path)) || exc.some((r) => r.test(f.path))) continue
      if (f.size < m.minSize || f.size > m.maxSize) continue
      if (m.uid !== undefined && f.uid !== m.uid) continue
      if (m.gid !== undefined && f.gid !== m.gid) continue
      return p
    }
    return undefined
  }

  /**
   * The policy whose `backup:` section declares `workflow` (the first in decision order): its
   * tier chain is the one the workflow's restore points follow.
   */
  forWorkflow(workflow: string): Policy | undefined {
    return this.compiled.find((c) => c.p.backup?.name === workflow)?.p
  }

  /**
   * Pure decision for one file at `nowMs`: which step of its policy's tier chain its age falls in,
   * and whether that means staying, moving, or (past the chain with then: delete) deleting.
   */
  decide(f: FileFacts, nowMs: number): Decision {
    const p = this.select(f)
    if (p === undefined) return { action: 'none', ageDays: 0, reason: 'no policy matches' }
    const basis = p.age === 'atime' ? f.atimeMs : p.age === 'ctime' ? f.ctimeMs : f.mtimeMs
    const ageDays = Math.max(0, (nowMs - basis) / 86_400_000)
    const base = { policy: p.name, origin: p.origin, ageDays }
    const step = stepAt(p.tiers, ageDays)
    if (step === undefined) {
      if (p.then === 'delete') return { ...base, action: 'delete', reason: `${p.age} age ${fmt(ageDays)} days is past the ${fmt(total(p.tiers))}-day chain of ${p.name}, which ends in delete` }
      const last = p.tiers.at(-1) as TierStep
      return { ...base, ...placed(f, last, ageDays, 'past the chain, kept on its last tier') }
    }
    return { ...base, ...placed(f, step.step, ageDays, `within days ${fmt(step.from)}-${fmt(step.from + step.step.days)} of ${p.name}`) }
  }
}

function placed(f: FileFacts, s: TierStep, ageDays: number, why: string): Pick<Decision, 'action' | 'to' | 'reason'> {
  const to = { tier: s.tier, ...(s.target === undefined ? {} : { target: s.target }) }
  const same = f.tier === s.tier && (s.target === undefined || f.target === s.target)
  const where = s.target === undefined ? s.tier : `${s.tier} (${s.target})`
  return {
    action: same ? 'stay' : 'move', to,
    reason: `age ${fmt(ageDays)} days is ${why}: ${same ? 'stays on' : 'belongs on'} ${where}`,
  }
}

/** Warmth order of tier kinds: block (0) is warmer than object (1), than cold (2). */
export function kindRank(kind: TierKind): number {
  return TIER_ORDER.indexOf(kind)
}

const TIER_ORDER: readonly TierKind[] = ['block', 'object', 'cold']

/** The step of a tier chain that `ageDays` falls in (and the day it starts), or undefined past the chain. */
export function stepAt(tiers: readonly TierStep[], ageDays: number): { step: TierStep; from: number } | undefined {
  let from = 0
  for (const step of tiers) {
    if (ageDays < from + step.days) return { step, from }
    from += step.days
  }
  return undefined
}

export function total(tiers: readonly TierStep[]): number {
  return tiers.reduce((n, s) => n + s.days, 0)
}

/** Days for messages: one decimal, `inf` for a step with no end. */
export function fmt(n: number): string {
  return Number.isFinite(n) ? String(Math.round(n * 10) / 10) : 'inf'
}
