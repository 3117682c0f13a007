import type { Pin } from '../meta/types.js'
import { fmt, stepAt, total, type PolicySet } from './decide.js'
import type { TierKind } from './policy-file.js'

/** Where the data that only a restore point references belongs now. */
export interface PointPlacement {
  workflow: string
  /** The policy whose `backup:` section declares the workflow; absent when none does. */
  policy?: string
  origin?: string
  /** Days since the restore point was taken. */
  ageDays: number
  /** The tier (and target) its data belongs on; absent: the data stays where it is. */
  to?: { tier: TierKind; target?: string }
  /** One sentence an operator can read. */
  reason: string
}

const DAY_MS = 86_400_000

/**
 * Pure decision for one restore point at `nowMs`. Its data follows the tier chain of its
 * workflow's policy (the first, in decision order, whose `backup.name` is the workflow), with age
 * counted from the time the point was taken: under "block 5d, object 25d, cold 180d" a point 10
 * days old wants object, one 40 days old cold. Past the chain the data stays on the last tier
 * whatever `then` says: `then: delete` is about current files, and restore points go by
 * retention. A workflow no policy declares leaves its points' data where it is.
 */
export function placePoint(pin: Pick<Pin, 'workflow' | 'timeMs'>, set: PolicySet, nowMs: number): PointPlacement {
  const { workflow } = pin
  const ageDays = Math.max(0, (nowMs - pin.timeMs) / DAY_MS)
  const p = set.forWorkflow(workflow)
  if (p === undefined) return { workflow, ageDays, reason: `no policy declares workflow ${workflow}: the data of its restore points stays where it is` }
  const at = stepAt(p.tiers, ageDays)
  const step = at?.step ?? p.tiers[p.tiers.length - 1]
  // parsePolicyFile refuses an empty chain; a hand-built policy without one moves nothing.
  if (step === undefined) return { workflow, policy: p.name, origin: p.origin, ageDays, reason: `${p.name} has no tier chain: the data stays where it is` }
  const why = at === undefined
    ? `past the ${fmt(total(p.tiers))}-day chain of ${p.name}, kept on its last tier`
    : `within days ${fmt(at.from)}-${fmt(at.from + at.step.days)} of ${p.name}`
  const where = step.target === undefined ? step.tier : `${step.tier} (${step.target})`
  return {
    workflow, policy: p.name, origin: p.origin, ageDays,
    to: { tier: step.tier, ...(step.target === undefined ? {} : { target: step.target }) },
    reason: `restore point age ${fmt(ageDays)} days is ${why}: data only restore points hold belongs on ${where}`,
  }
}
