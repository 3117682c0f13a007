import { readFile, rename, writeFile } from 'node:fs/promises'
import { join } from 'node:path'

/**
 * What the checkpoint writer remembers between runs, in `<localDir>/state.json` on the block
 * tier. Losing it costs one full checkpoint, never correctness: a delta is only written against
 * a local base whose digest still matches the copy on the target.
 */
export interface CheckpointState {
  /** The last full checkpoint, kept locally as `base.tfck`: deltas are made against it. */
  base?: { name: string; sha256: string; bytes: number }
  /** Deltas written since the base. */
  deltas: number
  /** Size of the last delta (a delta that grew past half its base triggers a full one). */
  lastDeltaBytes: number
  /** When the last checkpoint was taken (ms), if any. */
  lastMs?: number
  /** When this state was first created: the schedule counts from here before any checkpoint. */
  sinceMs: number
}

export const BASE_FILE = 'base.tfck'
const STATE_FILE = 'state.json'

export async function readState(dir: string, nowMs: number): Promise<CheckpointState> {
  try {
    const s = JSON.parse(await readFile(join(dir, STATE_FILE), 'utf8')) as Partial<CheckpointState>
    if (typeof s.sinceMs === 'number' && typeof s.deltas === 'number') {
      return { deltas: s.deltas, lastDeltaBytes: s.lastDeltaBytes ?? 0, sinceMs: s.sinceMs, ...(s.base ? { base: s.base } : {}), ...(s.lastMs === undefined ? {} : { lastMs: s.lastMs }) }
    }
  } catch {
    // Missing or unreadable: start over (the next checkpoint is full).
  }
  return { deltas: 0, lastDeltaBytes: 0, sinceMs: nowMs }
}

export async function writeState(dir: string, state: CheckpointState): Promise<void> {
  const tmp = join(dir, `${STATE_FILE}.tmp`)
  await writeFile(tmp, JSON.stringify(state) + '\n', { flush: true })
  await rename(tmp, join(dir, STATE_FILE))
}

/**
 * Whether a scheduled checkpoint is due: `everyHours` after the last one, or after the state
 * was created when there was none yet (so a daemon that restarts often still checkpoints).
 * `everyHours` 0 turns the schedule off.
 */
export function checkpointDue(state: CheckpointState, nowMs: number, everyHours: number): boolean {
  if (everyHours <= 0) return false
  return nowMs >= (state.lastMs ?? state.sinceMs) + everyHours * 3_600_000
}

/**
 * Whether the next checkpoint is full: every `fullEvery`-th one, when there is no usable base,
 * or when the last delta grew past half its base (it no longer saves much).
 */
export function nextIsFull(state: CheckpointState, fullEvery: number): boolean {
  if (state.base === undefined || fullEvery <= 1) return true
  if (state.deltas + 1 >= fullEvery) return true
  return state.lastDeltaBytes > state.base.bytes / 2
}
