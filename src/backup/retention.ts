import { TierfsError } from '../errors.js'
import type { Retention } from '../policy/policy-file.js'

/** A restore point as retention sees it. */
export interface RetentionPoint {
  workflow: string
  /** Its directory name under /.snapshots/<workflow>/ (ties on time are broken by name). */
  name: string
  timeMs: number
}

export interface RetentionDecision<P extends RetentionPoint = RetentionPoint> {
  point: P
  keep: boolean
  /** Every reason the point is kept (empty when it is removed). */
  reasons: string[]
}

type Bucket = 'hourly' | 'daily' | 'weekly' | 'monthly'
const BUCKETS: readonly Bucket[] = ['hourly', 'daily', 'weekly', 'monthly']

/**
 * Which restore points a retention rule keeps, with every reason (restic's ApplyPolicy
 * semantics). Pure: the decisions depend only on the arguments; one decision per input point,
 * in input order. Points of different workflows are judged separately, each with `rule`.
 *
 * Per workflow, points are walked newest first:
 * - `withinMs`: a point newer than `nowMs - withinMs` (strictly) is kept;
 * - `last: N`: the N newest points are kept;
 * - `hourly`/`daily`/`weekly`/`monthly: N`: the newest point of each of the N newest periods
 *   that hold a point is kept (periods in UTC; weeks are ISO weeks, Monday to Sunday, named by
 *   their ISO week-year). A period without points does not use up one of the N.
 * A rule that keeps nothing by construction (no field, or only zeros) keeps everything: an
 * empty or mistyped rule must never delete every restore point.
 */
export function applyRetention<P extends RetentionPoint>(points: readonly P[], rule: Retention, nowMs: number): Array<RetentionDecision<P>> {
  checkRule(rule)
  const decisions = points.map((point) => ({ point, keep: false, reasons: [] as string[] }))
  if (isEmptyRule(rule)) {
    for (const d of decisions) {
      d.keep = true
      d.reasons.push('empty rule: every point is kept (a rule must keep something before anything is removed)')
    }
    return decisions
  }
  const byWorkflow = new Map<string, Array<RetentionDecision<P>>>()
  for (const d of decisions) {
    const list = byWorkflow.get(d.point.workflow)
    if (list === undefined) byWorkflow.set(d.point.workflow, [d])
    else list.push(d)
  }
  for (const list of byWorkflow.values()) judgeWorkflow(list, rule, nowMs)
  return decisions
}

/** True when the rule keeps nothing by itself (then everything is kept). */
export function isEmptyRule(rule: Retention): boolean {
  return !((rule.last ?? 0) > 0 || BUCKETS.some((b) => (rule[b] ?? 0) > 0) || (rule.withinMs ?? 0) > 0)
}

function judgeWorkflow<P extends RetentionPoint>(list: Array<RetentionDecision<P>>, rule: Retention, nowMs: number): void {
  const newestFirst = [...list].sort((a, b) => b.point.timeMs - a.point.timeMs || (a.point.name < b.point.name ? 1 : a.point.name > b.point.name ? -1 : 0))
  const lastCount = rule.last ?? 0
  const left: Record<Bucket, number> = { hourly: rule.hourly ?? 0, daily: rule.daily ?? 0, weekly: rule.weekly ?? 0, monthly: rule.monthly ?? 0 }
  const seen: Record<Bucket, string | undefined> = { hourly: undefined, daily: undefined, weekly: undefined, monthly: undefined }
  const within = rule.withinMs ?? 0
  newestFirst.forEach((d, i) => {
    const t = d.point.timeMs
    if (within > 0 && t > nowMs - within) d.reasons.push(`within ${formatDuration(within)}`)
    if (i < lastCount) d.reasons.push(`last: ${i + 1} of ${lastCount}`)
    for (const b of BUCKETS) {
      if (left[b] <= 0) continue
      const key = periodKey(b, t)
      if (key === seen[b]) continue
      seen[b] = key
      left[b]--
      d.reasons.push(`${b}: ${key}`)
    }
    d.keep = d.reasons.length > 0
  })
}

/** The UTC period a time falls in, as a sortable name: 2026-11-21T02, 2026-11-21, 2026-W47, 2026-11. */
export function periodKey(bucket: Bucket, ms: number): string {
  const iso = new Date(ms).toISOString()
  switch (bucket) {
    case 'hourly': return iso.slice(0, 13)
    case 'daily': return iso.slice(0, 10)
    case 'monthly': return iso.slice(0, 7)
    case 'weekly': return isoWeek(ms)
  }
}

/** ISO 8601 week of a UTC instant: the week (Monday to Sunday) is named by the year of its Thursday. */
export function isoWeek(ms: number): string {
  const day = Math.floor(ms / 86_400_000)
  // 1970-01-01 was a Thursday: weekday index with Monday = 0.
  const weekday = (((day + 3) % 7) + 7) % 7
  const thursday = new Date((day - weekday + 3) * 86_400_000)
  const year = thursday.getUTCFullYear()
  const week = 1 + Math.floor((thursday.getTime() - Date.UTC(year, 0, 1)) / (7 * 86_400_000))
  return `${year}-W${String(week).padStart(2, '0')}`
}

/** 172800000 -> "2d", 5400000 -> "1h30m". */
export function formatDuration(ms: number): string {
  const units: Array<[string, number]> = [['d', 86_400_000], ['h', 3_600_000], ['m', 60_000], ['s', 1000], ['ms', 1]]
  let rest = Math.round(ms)
  let out = ''
  for (const [name, size] of units) {
    const n = Math.floor(rest / size)
    if (n > 0) {
      out += `${n}${name}`
      rest -= n * size
    }
  }
  return out === '' ? '0s' : out
}

function checkRule(rule: Retention): void {
  for (const k of ['last', ...BUCKETS] as const) {
    const v = rule[k]
    if (v !== undefined && (!Number.isInteger(v) || v < 0)) throw TierfsError.invalid(`retention ${k} ${String(v)} (need a whole number >= 0)`)
  }
  const w = rule.withinMs
  if (w !== undefined && (!Number.isFinite(w) || w < 0)) throw TierfsError.invalid(`retention within ${String(w)} ms`)
}
