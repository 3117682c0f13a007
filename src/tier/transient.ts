import { TierfsError } from '../errors.js'

/** Socket-level error codes after which the same request may well succeed. */
const TRANSPORT_CODES = new Set([
  'ECONNRESET', 'ECONNREFUSED', 'ECONNABORTED', 'ETIMEDOUT', 'EPIPE', 'EAI_AGAIN', 'ENETUNREACH',
  'ENETDOWN', 'EHOSTUNREACH', 'EHOSTDOWN', 'ERR_STREAM_PREMATURE_CLOSE', 'UND_ERR_SOCKET',
])

/**
 * True when a raw (non-HTTP) failure is a transport hiccup: a reset, refused or timed-out
 * connection, a body cut short. Looks through `cause` chains, since SDKs wrap socket errors.
 */
export function isTransportFailure(err: unknown): boolean {
  for (let e = err as { code?: unknown; name?: unknown; message?: unknown; cause?: unknown } | undefined, depth = 0; e !== undefined && e !== null && depth < 5; e = e.cause as typeof e, depth++) {
    if (typeof e.code === 'string' && TRANSPORT_CODES.has(e.code)) return true
    if (e.name === 'TimeoutError') return true
    if (typeof e.message === 'string' && /socket hang up|^aborted$|premature close/i.test(e.message)) return true
  }
  return false
}

/** True when `err` is a TierfsError its tier marked as worth retrying (see the Tier contract). */
export function isTransient(err: unknown): boolean {
  return err instanceof TierfsError && (err.detail?.transient === true || err.detail?.retryable === true)
}
