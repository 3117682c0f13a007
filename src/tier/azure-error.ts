import type { RestError } from '@azure/storage-blob'
import { TierfsError } from '../errors.js'
import { isTransportFailure } from './transient.js'

/** Where a failed Azure call was aimed; names only, never credentials. */
export interface AzureErrorContext {
  target: string
  container: string
  op: string
  key?: string
}

// The package's typings export isRestError but its ESM build does not; its own guard is this.
function isRestError(err: unknown): err is RestError {
  return err instanceof Error && err.name === 'RestError'
}

/** The storage service's error code (x-ms-error-code), from the body or, for HEAD, the header. */
export function azureErrorCode(err: unknown): string | undefined {
  if (!isRestError(err)) return undefined
  const details = err.details as { errorCode?: unknown } | undefined
  if (typeof details?.errorCode === 'string') return details.errorCode
  return typeof err.code === 'string' ? err.code : undefined
}

// InvalidBlockList: a concurrent put of the same key committed first and discarded our staged
// blocks; putting again succeeds.
const RETRYABLE_CODES = new Set(['ServerBusy', 'OperationTimedOut', 'InternalError', 'InvalidBlockList'])

// @azure/identity's failures when it finds no usable identity (it is optional; see azure-credential.ts).
const NO_IDENTITY = new Set(['CredentialUnavailableError', 'AuthenticationRequiredError', 'AggregateAuthenticationError', 'AuthenticationError'])

const ACCESS_DENIED = new Set(['AuthenticationFailed', 'AuthorizationFailure', 'AuthorizationPermissionMismatch', 'InvalidAuthenticationInfo', 'AuthorizationSourceIPMismatch', 'AuthorizationProtocolMismatch'])

/**
 * Maps any failure of an @azure/storage-blob call to a TierfsError:
 * - BlobNotFound -> NOT_FOUND;
 * - BlobArchived / BlobBeingRehydrated -> AGAIN (the object must be warmed up first);
 * - ContainerNotFound -> IO naming the target and the container;
 * - 401/403 and authentication codes -> IO "access denied" pointing at the environment, without
 *   the raw error (the service echoes the string it signed);
 * - @azure/identity finding no identity -> IO "no usable Azure identity";
 * - 408, 429, 5xx, InvalidBlockList (a racing put of the same key) and transport failures (no HTTP status: resets, refused, timeouts) -> IO with
 *   `detail.transient = true`, the mark retry wrappers look for;
 * - anything else -> IO (or the errno mapping for local file errors, e.g. a missing source file).
 * The service's message is kept only as `cause`: it can echo request details.
 */
export function mapAzureError(err: unknown, ctx: AzureErrorContext): TierfsError {
  if (err instanceof TierfsError) return err
  const where = `${ctx.target}: ${ctx.op}${ctx.key === undefined ? '' : ` ${ctx.key}`}`
  if (!isRestError(err)) {
    if (NO_IDENTITY.has(String((err as Error | undefined)?.name))) {
      return new TierfsError('IO', `${where}: no usable Azure identity for target ${ctx.target} (check AZURE_STORAGE_* environment)`, { cause: err, detail: { target: ctx.target, container: ctx.container } })
    }
    if (isTransportFailure(err)) {
      return new TierfsError('IO', `${where}: transport error: ${String((err as Error).message)}`, { cause: err, detail: { target: ctx.target, container: ctx.container, transient: true } })
    }
    return TierfsError.from(err, where)
  }
  const code = azureErrorCode(err)
  const status = err.statusCode
  const detail = { target: ctx.target, container: ctx.container, status, azureCode: code }
  if (code === 'BlobNotFound') return new TierfsError('NOT_FOUND', `${where}: no such object`, { cause: err, detail })
  if (code === 'BlobArchived' || code === 'BlobBeingRehydrated') {
    return new TierfsError('AGAIN', `${where}: the object is archived; warm it up and retry`, { cause: err, detail })
  }
  if (code === 'ContainerNotFound') {
    return new TierfsError('IO', `${where}: container ${ctx.container} of target ${ctx.target} does not exist`, { cause: err, detail })
  }
  if (status === 401 || status === 403 || (code !== undefined && ACCESS_DENIED.has(code))) {
    return new TierfsError('IO', `${where}: access denied for target ${ctx.target} (check AZURE_STORAGE_* environment)`, { detail })
  }
  if (status === undefined) {
    // REQUEST_SEND_ERROR and socket codes: the request never got an answer.
    const transient = isTransportFailure(err) || err.code === 'REQUEST_SEND_ERROR'
    return new TierfsError('IO', `${where}: transport error: ${err.message}`, { cause: err, detail: { ...detail, transient } })
  }
  const why = `HTTP ${status}${code === undefined ? '' : ` ${code}`}`
  if (status === 408 || status === 429 || status >= 500 || (code !== undefined && RETRYABLE_CODES.has(code))) {
    return new TierfsError('IO', `${where}: ${why}`, { cause: err, detail: { ...detail, transient: true } })
  }
  return new TierfsError('IO', `${where}: ${why}`, { cause: err, detail })
}
