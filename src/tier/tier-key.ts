import { TierfsError } from '../errors.js'

const KEY_RE = /^[A-Za-z0-9._-]+(\/[A-Za-z0-9._-]+)*$/

/** Validates a tier object key (see the Tier contract); returns it unchanged. */
export function checkKey(key: string): string {
  if (!KEY_RE.test(key) || key.split('/').some((s) => s === '.' || s === '..')) {
    throw TierfsError.invalid(`tier key ${JSON.stringify(key)}`)
  }
  return key
}
