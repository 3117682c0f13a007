import { TierfsError } from '../errors.js'
import { isTransportFailure } from './transient.js'

/** Where a failed S3 call was aimed; names only, never credentials. */
export interface S3ErrorContext {
  target: string
  bucket: string
  op: string
  key?: string
}

/** The shape of an SDK v3 service exception, as far as the mapping reads it. */
interface ServiceError {
  name?: unknown
  Code?: unknown
  message?: unknown
  $metadata?: { httpStatusCode?: number }
  $retryable?: unknown
}

const THROTTLING = new Set([
  'SlowDown', 'Throttling', 'ThrottlingException', 'ThrottledException', 'RequestThrottled', 'RequestThrottledException',
  'TooManyRequestsException', 'RequestLimitExceeded', 'BandwidthLimitExceeded', 'ProvisionedThroughputExceededException',
  'RequestTimeout', 'RequestTimeoutException', 'InternalError', 'ServiceUnavailable', 'PriorRequestNotComplete',
])

const ACCESS_DENIED = new Set([
  'AccessDenied', 'InvalidAccessKeyId', 'SignatureDoesNotMatch', 'ExpiredToken', 'InvalidToken', 'TokenRefreshRequired',
  'AllAccessDisabled', 'AccountProblem', 'InvalidSecurity', 'RequestTimeTooSkewed', 'UnrecognizedClientException',
])

/** The S3 error code of a service exception ('NoSuchKey', 'SlowDown', ...), if it is one. */
export function s3ErrorCode(err: unknown): string | undefined {
  const e = err as ServiceError | undefined
  if (typeof e?.Code === 'string') return e.Code
  return e?.$metadata !== undefined && typeof e.name === 'string' ? e.name : undefined
}

export function s3Status(err: unknown): number | undefined {
  return (err as ServiceError | undefined)?.$metadata?.httpStatusCode
}

/**
 * Maps any failure of an S3 call to a TierfsError:
 * - NoSuchKey / 404 -> NOT_FOUND;
 * - InvalidObjectState (an archived object read before warm-up) -> AGAIN;
 * - NoSuchBucket -> IO naming the target and the bucket;
 * - 403 and credential codes, or no credentials found -> IO "access denied for target X (check
 *   the AWS credential chain)", without the service's text or the raw error (they echo the
 *   access key id and the string that was signed);
 * - 5xx, 429, throttling codes and transport failures (refused, reset, timeouts) -> IO with
 *   `detail.transient = true`, the mark RetryTier looks for;
 * - anything else -> IO, or the errno mapping for local errors such as a missing source file.
 */
export function mapS3Error(err: unknown, ctx: S3ErrorContext): TierfsError {
  if (err instanceof TierfsError) return err
  const where = `${ctx.target}: ${ctx.op}${ctx.key === undefined ? '' : ` ${ctx.key}`}`
  const status = s3Status(err)
  const code = status === undefined ? undefined : s3ErrorCode(err)
  const detail = { target: ctx.target, bucket: ctx.bucket, status, s3Code: code }
  if ((err as ServiceError | undefined)?.name === 'CredentialsProviderError') {
    return new TierfsError('IO', `${where}: no credentials for target ${ctx.target} (check the AWS credential chain)`, { detail })
  }
  if (status === undefined) {
    if (isTransportFailure(err)) {
      return new TierfsError('IO', `${where}: transport error: ${String((err as Error).message)}`, { cause: err, detail: { ...detail, transient: true } })
    }
    return TierfsError.from(err, where)
  }
  if (code === 'NoSuchKey' || (status === 404 && (code === 'NotFound' || code === undefined))) {
    return new TierfsError('NOT_FOUND', `${where}: no such object`, { cause: err, detail })
  }
  if (code === 'NoSuchBucket') {
    return new TierfsError('IO', `${where}: bucket ${ctx.bucket} does not exist`, { cause: err, detail })
  }
  if (code === 'InvalidObjectState') {
    return new TierfsError('AGAIN', `${where}: the object is archived; warm it up and retry`, { cause: err, detail })
  }
  if (status === 401 || status === 403 || (code !== undefined && ACCESS_DENIED.has(code))) {
    return new TierfsError('IO', `${where}: access denied for target ${ctx.target} (check the AWS credential chain)`, { detail })
  }
  const why = `HTTP ${status}${code === undefined ? '' : ` ${code}`}`
  if (status >= 500 || status === 429 || (code !== undefined && THROTTLING.has(code)) || (err as ServiceError).$retryable !== undefined) {
    return new TierfsError('IO', `${where}: ${why}`, { cause: err, detail: { ...detail, transient: true } })
  }
  return new TierfsError('IO', `${where}: ${why}`, { cause: err, detail })
}
