import { TierfsError } from '../errors.js'

/** Directory name of a restore point: its UTC time to the second, e.g. 2026-11-21T02:00:00Z. */
export function timeName(ms: number): string {
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z')
}

const ISO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:\d{2})$/

/** Parses an ISO-8601 instant with an explicit zone (restore point names, /.history, CLI times). */
export function parseInstant(text: string): number {
  const ms = ISO.test(text) ? Date.parse(text) : NaN
  if (Number.isNaN(ms)) {
    throw TierfsError.invalid(`time ${JSON.stringify(text)} (expected ISO 8601 with a zone, e.g. 2026-11-21T02:00:00Z)`)
  }
  return ms
}
