import { resolve } from 'node:path'
import { TierfsError } from '../errors.js'
import { callControl } from '../store/control.js'
import { lookupMount } from '../store/registry.js'

/**
 * Sends a control command to the daemon serving MOUNTPOINT. `timeoutMs` bounds the wait for the
 * answer (default 10 minutes; long commands such as a backup run pass more).
 */
export async function callMount<T>(mountpoint: string, cmd: string, args?: Record<string, unknown>, timeoutMs?: number): Promise<T> {
  const rec = await lookupMount(resolve(mountpoint))
  if (rec === undefined) throw new TierfsError('NO_DAEMON', `no tierfs daemon serves ${resolve(mountpoint)}`)
  return callControl<T>(rec.socket, args === undefined ? { cmd } : { cmd, args }, timeoutMs)
}
