import { constants } from 'node:os'
import { TierfsError, type ErrorCode } from '../errors.js'

const E = constants.errno

/** The only place where error codes become errno values (negated, as the binding wants). */
const ERRNO: Record<ErrorCode, number> = {
  NOT_FOUND: E.ENOENT,
  EXISTS: E.EEXIST,
  NOT_DIR: E.ENOTDIR,
  IS_DIR: E.EISDIR,
  NOT_EMPTY: E.ENOTEMPTY,
  ACCESS: E.EACCES,
  PERM: E.EPERM,
  INVALID: E.EINVAL,
  NAME_TOO_LONG: E.ENAMETOOLONG,
  READ_ONLY: E.EROFS,
  NO_XATTR: E.ENODATA,
  RANGE: E.ERANGE,
  BAD_HANDLE: E.EBADF,
  NOT_SUPPORTED: E.EOPNOTSUPP,
  AGAIN: E.EAGAIN,
  NO_SPACE: E.ENOSPC,
  CORRUPT: E.EIO,
  IO: E.EIO,
  CONFIG: E.EINVAL,
  STORE: E.EIO,
  LOCKED: E.EBUSY,
  MOUNTPOINT: E.EINVAL,
  NO_DAEMON: E.EIO,
  CLOSED: E.EIO,
  INTERNAL: E.EIO,
}

/** Negative errno for any thrown value (unknown errors are EIO). */
export function toErrno(err: unknown): number {
  if (err instanceof TierfsError) return -ERRNO[err.code]
  return -E.EIO
}

export const ERANGE = -E.ERANGE
export const ENODATA = -E.ENODATA
export const ENOENT = -E.ENOENT
