import { TierfsError } from '../errors.js'
import { isTransportFailure } from './transient.js'

/** Where a failed Glacier call was aimed; names only, never credentials. */
export interface GlacierErrorContext {
  target: string
  vault: string
  op: string
  key?: string
}

interface SdkError {
  name?: string
  code?: string
  message?: string
  $fault?: 'client' | 'server'
  $metadata?: { httpStatusCode?: number }
}

const ACCESS_DENIED = new Set(['AccessDeniedException', 'InvalidSignatureException', 'IncompleteSignatureException', 'MissingAuthenticationTokenException', 'UnrecognizedClientException', 'ExpiredTokenException', 'CredentialsProviderError'])
const TRANSIENT = new Set(['ThrottlingException', 'RequestTimeoutException', 'ServiceUnavailableException', 'InsufficientCapacityException', 'TimeoutError', 'RequestTimeout'])

/** The service's error code of a failed SDK call (the exception's name), if it got that far. */
export function glacierErrorCode(err: unknown): string | undefined {
  const e = err as SdkError | undefined
  return e?.$metadata?.httpStatusCode !== undefined && typeof e.name === 'string' ? e.name : undefined
}

/** A ResourceNotFoundException about the vault itself (not an archive, upload or job in it). */
export function isVaultMissing(err: unknown): boolean {
  return glacierErrorCode(err) === 'ResourceNotFoundException' && /vault not found/i.test((err as SdkError).message ?? '')
}

/** A ResourceNotFoundException about an archive, upload or job (the vault exists). */
export function isItemMissing(err: unknown): boolean {
  return glacierErrorCode(err) === 'ResourceNotFoundException' && !isVaultMissing(err)
}

/**
 * Maps any failure of a @aws-sdk/client-glacier call to a TierfsError:
 * - ResourceNotFoundException for the vault -> IO naming the target and the vault; for an
 *   archive, upload or job -> NOT_FOUND (callers decide what that means: a delete succeeds);
 * - 401/403 and authentication codes, or no credentials found -> IO "access denied" pointing at
 *   the AWS_* environment, without the service's text or the raw error (they can echo the access
 *   key id and the string that was signed, which the log would then write out);
 * - throttling, timeouts, 408/429/5xx and transport failures (no HTTP status) -> IO with
 *   `detail.transient = true`, the mark retry wrappers look for;
 * - anything else -> IO, or the errno mapping for local file errors (a missing source file).
 * Elsewhere the service's message is kept only as `cause`.
 */
export function mapGlacierError(err: unknown, ctx: GlacierErrorContext): TierfsError {
  if (err instanceof TierfsError) return err
  const e = err as SdkError | undefined
  const where = `${ctx.target}: ${ctx.op}${ctx.key === undefined ? '' : ` ${ctx.key}`}`
  const status = e?.$metadata?.httpStatusCode
  const code = glacierErrorCode(err)
  const detail = { target: ctx.target, vault: ctx.vault, status, glacierCode: code }
  if (code === undefined) {
    const errno = e?.code
    if (e?.name === 'AbortError') return TierfsError.io(`${where}: aborted`, err)
    if (e?.name === 'CredentialsProviderError') {
      return new TierfsError('IO', `${where}: no AWS credentials for target ${ctx.target} (set AWS_* environment)`, { detail })
    }
    if (isTransportFailure(err) || (e?.name !== undefined && TRANSIENT.has(e.name)) || e?.$metadata !== undefined) {
      return new TierfsError('IO', `${where}: transport error${errno === undefined ? '' : ` ${errno}`}`, { cause: err, detail: { ...detail, transient: true } })
    }
    return TierfsError.from(err, where)
  }
  if (isVaultMissing(err)) {
    return new TierfsError('IO', `${where}: vault ${ctx.vault} of target ${ctx.target} does not exist`, { cause: err, detail })
  }
  if (code === 'ResourceNotFoundException') return new TierfsError('NOT_FOUND', `${where}: not found in vault ${ctx.vault}`, { cause: err, detail })
  if (status === 401 || status === 403 || ACCESS_DENIED.has(code)) {
    return new TierfsError('IO', `${where}: access denied for target ${ctx.target} (${code}; check AWS_* environment)`, { detail })
  }
  if (TRANSIENT.has(code) || status === 408 || status === 429 || (status !== undefined && status >= 500)) {
    return new TierfsError('IO', `${where}: HTTP ${String(status)} ${code}`, { cause: err, detail: { ...detail, transient: true } })
  }
  return new TierfsError('IO', `${where}: HTTP ${String(status)} ${code}`, { cause: err, detail })
}
