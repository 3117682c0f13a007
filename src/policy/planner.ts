import type { Ino, TierId } from '../ids.js'
import type { MetaReader } from '../meta/meta.js'
import type { InodeAttrs } from '../meta/types.js'
import type { TierSet } from '../tier/tier-set.js'
import type { FileFacts, PolicySet } from './decide.js'
import { walkFiles } from './namespace-walk.js'

/** One file the policies want changed now. */
export interface PlannedItem {
  path: string
  ino: Ino
  size: number
  action: 'move' | 'delete'
  from: TierId
  /** Destination tier id (moves only). */
  to?: TierId
  policy: string
  reason: string
  /** Names the inode has: one with several is planned once per name (callers dedupe). */
  nlink: number
}

export type PlannerDeps = { meta: MetaReader; tiers: TierSet }

/** What a policy decides on for a current file: its path, attributes and where its data is. */
export function fileFacts(path: string, attrs: InodeAttrs, tiers: Pick<TierSet, 'kindOf'>): FileFacts {
  const kind = tiers.kindOf(attrs.tier)
  return {
    path, size: attrs.size, uid: attrs.uid, gid: attrs.gid, tier: kind,
    mtimeMs: Number(attrs.mtimeNs / 1_000_000n), atimeMs: Number(attrs.atimeNs / 1_000_000n), ctimeMs: Number(attrs.ctimeNs / 1_000_000n),
    ...(String(attrs.tier) !== kind ? { target: String(attrs.tier) } : {}),
  }
}

/**
 * Streams the files whose policy decision is to move or delete them at `nowMs` (a dry run: reads
 * only). A policy naming an unknown target is reported once per file as an error item so other
 * policies keep working. Files in `unsettled` (a move of theirs was interrupted, so their chunks
 * may be on two tiers) are planned to where their policy wants them even when that is the tier
 * they are recorded on.
 */
export async function* planPass(
  deps: PlannerDeps, set: PolicySet, nowMs: number, onError: (path: string, message: string) => void,
  unsettled: ReadonlySet<Ino> = new Set(),
): AsyncIterable<PlannedItem> {
  const { meta, tiers } = deps
  for await (const { path, attrs } of walkFiles(meta)) {
    const d = set.decide(fileFacts(path, attrs, tiers), nowMs)
    if (d.action === 'delete') {
      yield { path, ino: attrs.ino, size: attrs.size, action: 'delete', from: attrs.tier, policy: d.policy ?? '', reason: d.reason, nlink: attrs.nlink }
    } else if ((d.action === 'move' || (d.action === 'stay' && unsettled.has(attrs.ino))) && d.to !== undefined) {
      let to: TierId
      try {
        to = tiers.resolve(d.to.tier, d.to.target)
      } catch (err) {
        onError(path, `policy ${d.policy} (${d.origin}): ${(err as Error).message}`)
        continue
      }
      if (to === attrs.tier && !unsettled.has(attrs.ino)) continue
      yield { path, ino: attrs.ino, size: attrs.size, action: 'move', from: attrs.tier, to, policy: d.policy ?? '', reason: d.reason, nlink: attrs.nlink }
    }
  }
}

export interface PlanSummaryRow {
  policy: string
  transition: string
  files: number
  bytes: number
  /** Rows of restore-point data (policy "<name> (restore points)"): chunks, not files, move. */
  chunks?: number
}

/** What `tierfs policy plan` prints: the next pass per policy and transition. */
export interface PlanSummary {
  rows: PlanSummaryRow[]
  /** The first problems (see `errorCount` for all of them). */
  errors: Array<{ path?: string; message: string }>
  errorCount: number
  files: number
  bytes: number
}

/** Adds planned items up per policy and transition; memory is one row per pair, whatever the item count. */
export class PlanTally {
  private readonly rows = new Map<string, PlanSummaryRow>()
  files = 0
  bytes = 0

  add(it: PlannedItem): void {
    const row = this.row(it.policy, it.action === 'delete' ? `${it.from} -> delete` : `${it.from} -> ${it.to}`)
    row.files++
    row.bytes += it.size
    this.files++
    this.bytes += it.size
  }

  /** One chunk that only restore points of `policy`'s workflow reference, moving `from` -> `to`. */
  addPointChunk(policy: string, from: TierId, to: TierId, rawLength: number): void {
    const row = this.row(`${policy} (restore points)`, `${from} -> ${to}`)
    row.chunks = (row.chunks ?? 0) + 1
    row.bytes += rawLength
    this.bytes += rawLength
  }

  private row(policy: string, transition: string): PlanSummaryRow {
    const key = `${policy}\0${transition}`
    let row = this.rows.get(key)
    if (row === undefined) {
      row = { policy, transition, files: 0, bytes: 0 }
      this.rows.set(key, row)
    }
    return row
  }

  result(): PlanSummaryRow[] {
    return [...this.rows.values()].sort((a, b) => a.policy.localeCompare(b.policy) || a.transition.localeCompare(b.transition))
  }
}

/** Groups planned items per policy and transition. */
export function summarize(items: Iterable<PlannedItem>): PlanSummaryRow[] {
  const tally = new PlanTally()
  for (const it of items) tally.add(it)
  return tally.result()
}

/**
 * The steps of `set` that name a target `tiers` cannot use for the step's kind (not defined, or
 * of another kind), each as the policy's origin and a message naming file, policy and target.
 * The planner meets the same error per file; this reports it once, when the policies load.
 */
export function unusableTargets(set: PolicySet, tiers: Pick<TierSet, 'resolve'>): Array<{ file: string; message: string }> {
  const out: Array<{ file: string; message: string }> = []
  for (const p of set.policies) {
    for (const step of p.tiers) {
      if (step.target === undefined) continue
      try {
        tiers.resolve(step.tier, step.target)
      } catch (err) {
        out.push({ file: p.origin, message: `${p.origin}: policy ${p.name}: ${(err as Error).message}` })
      }
    }
  }
  return out
}
