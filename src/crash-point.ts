import { TierfsError } from './errors.js'

/**
 * Named points in write paths where a test can kill the process (SIGKILL, as `kill -9` would)
 * to prove the path survives a crash exactly there. Nothing is armed unless a test asks, through
 * the daemon's `crash-at` control command (`tierfs debug crash-at MOUNTPOINT POINT [N]`). Armed,
 * the Nth time POINT is reached (default the first) the process dies before the next statement;
 * unarmed, a point costs one comparison.
 *
 * The points (each placed after the named step is durable and before the next begins):
 * - migrate:marked     files marked as being moved, nothing copied yet
 * - migrate:noted      an upload noted as a possible stray, not yet sent
 * - migrate:uploaded   a pack's put returned, not yet verified
 * - migrate:verified   verified, not yet committed
 * - migrate:committed  chunks repointed to the new pack, sources not yet freed
 * - migrate:unrecorded a freed pack's record deleted (its object noted), object not yet deleted
 * - migrate:freed      a freed pack's object deleted, its note not yet dropped
 * - glacier:archived   an archive upload completed, its id not yet recorded
 */
export const CRASH_POINTS = [
  'migrate:marked', 'migrate:noted', 'migrate:uploaded', 'migrate:verified', 'migrate:committed', 'migrate:unrecorded', 'migrate:freed',
  'glacier:archived',
] as const

export type CrashPointName = (typeof CRASH_POINTS)[number]

let armed: { point: CrashPointName; left: number } | undefined

/** Arms `point` to kill the process the `nth` time it is reached (undefined disarms). */
export function armCrash(point: CrashPointName | undefined, nth = 1): void {
  armed = point === undefined ? undefined : { point, left: Math.max(1, nth) }
}

/** What is armed, for the control command's answer. */
export function armedCrash(): { point: CrashPointName; left: number } | undefined {
  return armed === undefined ? undefined : { ...armed }
}

/** The point `name` names ('none': undefined, disarming); CONFIG listing the points otherwise. */
export function crashPointNamed(name: string): CrashPointName | undefined {
  if (name === 'none') return undefined
  if (!(CRASH_POINTS as readonly string[]).includes(name)) {
    throw new TierfsError('CONFIG', `unknown crash point ${JSON.stringify(name)} (known: ${CRASH_POINTS.join(', ')}, none)`)
  }
  return name as CrashPointName
}

/** Kills the process here if this point is armed and its count is reached. */
export function crashPoint(point: CrashPointName): void {
  if (armed?.point !== point || --armed.left > 0) return
  process.kill(process.pid, 'SIGKILL')
}
