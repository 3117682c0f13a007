import { TierfsError } from '../errors.js'
import type { Ino, Version } from '../ids.js'
import type { MetaReader } from '../meta/meta.js'
import type { Pin } from '../meta/types.js'
import { HISTORY, SNAPSHOTS } from '../snapshot/snapshot-views.js'
import { parseInstant, timeName } from '../snapshot/time-name.js'

/**
 * A point in a store's past, as the CLI names it:
 *   workflow/TIME      a restore point (TIME as listed, or any ISO instant equal to its time)
 *   workflow/latest    the workflow's newest restore point (resolved once, then fixed)
 *   ISO instant        the namespace as it was then (inside the history window), e.g.
 *                      2026-11-21T02:30:00Z
 */
export type PointRef =
  | { kind: 'pin'; workflow: string; name: string; timeMs: number; version: Version; root?: Ino }
  | { kind: 'instant'; timeMs: number; version: Version }

export type PointDeps = {
  meta: Pick<MetaReader, 'pins' | 'versionAt'>
  nowMs: () => number
  historyWindowMs: number
}

export async function resolvePoint(deps: PointDeps, text: string): Promise<PointRef> {
  const slash = text.indexOf('/')
  if (slash < 0) {
    const ms = parseInstant(text)
    const now = deps.nowMs()
    if (ms > now) throw TierfsError.invalid(`time ${text} is in the future`)
    if (ms < now - deps.historyWindowMs) {
      throw new TierfsError('NOT_FOUND', `time ${text} is outside the history window (${Math.round(deps.historyWindowMs / 3_600_000)} h); name a restore point (workflow/TIME) instead`)
    }
    return { kind: 'instant', timeMs: ms, version: deps.meta.versionAt(ms) }
  }
  const workflow = text.slice(0, slash)
  const name = text.slice(slash + 1)
  const pins: Pin[] = []
  for await (const p of deps.meta.pins(workflow)) pins.push(p)
  pins.sort((a, b) => a.timeMs - b.timeMs)
  let pin: Pin | undefined
  if (name === 'latest') pin = pins.at(-1)
  else {
    let ms: number | undefined
    try {
      ms = parseInstant(name)
    } catch {
      ms = undefined
    }
    pin = pins.find((p) => timeName(p.timeMs) === name || p.timeMs === ms)
  }
  if (pin === undefined) {
    throw new TierfsError('NOT_FOUND', `restore point ${text} not found (${pins.length === 0 ? `workflow ${workflow} has none` : `${workflow} has ${pins.map((p) => timeName(p.timeMs)).join(', ')}`})`)
  }
  return { kind: 'pin', workflow, name: timeName(pin.timeMs), timeMs: pin.timeMs, version: pin.version, ...(pin.root === undefined ? {} : { root: pin.root }) }
}

/** The canonical text of a resolved point (`latest` becomes the restore point's own name). */
export function pointLabel(p: PointRef): string {
  return p.kind === 'pin' ? `${p.workflow}/${p.name}` : new Date(p.timeMs).toISOString()
}

/** Namespace path of the read-only view that shows the point, e.g. /.snapshots/wf/2026-11-21T02:00:00Z. */
export function pointView(p: PointRef): string {
  return p.kind === 'pin' ? `/${SNAPSHOTS}/${p.workflow}/${p.name}` : `/${HISTORY}/${new Date(p.timeMs).toISOString()}`
}
