import { TierfsError } from '../src/errors.js'
import { parseDuration } from '../src/policy/units.js'

/**
 * The injected clock offset for tests and demos (TIERFS_CLOCK_OFFSET="25d", "-2h", "90s"): policy
 * ages and schedules see now + offset, so "25 days later" takes seconds. Empty: no offset.
 */
export function clockOffsetMs(text: string | undefined): number {
  if (text === undefined || text.trim() === '') return 0
  const neg = text.trim().startsWith('-')
  const ms = parseDuration(text.trim().replace(/^[-+]/, ''))
  if (ms === undefined) throw new TierfsError('CONFIG', `TIERFS_CLOCK_OFFSET ${JSON.stringify(text)} is not a duration like "25d", "-2h" or "90s"`)
  return neg ? -ms : ms
}
