/**
 * The one error class of tierfs. Every failure that crosses a layer boundary is a
 * `TierfsError` with a stable `code`; the original error (if any) is kept as `cause`.
 * Codes are part of the public contract (logs, the CLI's JSON, the README's table):
 * never rename one, only add. The FUSE edge (src/fuse/errno.ts) is the only place that
 * maps codes to errno values.
 */
export const ErrorCodes = {
  /** Path or inode does not exist. */
  NOT_FOUND: 'NOT_FOUND',
  /** Name already exists where a new one was required. */
  EXISTS: 'EXISTS',
  /** Operation needs a directory but got something else. */
  NOT_DIR: 'NOT_DIR',
  /** Operation needs a non-directory but got a directory. */
  IS_DIR: 'IS_DIR',
  /** Directory is not empty (rmdir, rename over a directory). */
  NOT_EMPTY: 'NOT_EMPTY',
  /** Caller lacks permission (mode bits). */
  ACCESS: 'ACCESS',
  /** Caller is not allowed (ownership: chown, chmod, utimens by non-owner). */
  PERM: 'PERM',
  /** Bad argument (name too long, bad offset, rename into own subtree). */
  INVALID: 'INVALID',
  /** Name longer than 255 bytes. */
  NAME_TOO_LONG: 'NAME_TOO_LONG',
  /** Write to a read-only view (snapshot, history). */
  READ_ONLY: 'READ_ONLY',
  /** Extended attribute not present. */
  NO_XATTR: 'NO_XATTR',
  /** Caller's buffer is too small (xattr get/list). */
  RANGE: 'RANGE',
  /** Stale or unknown file handle. */
  BAD_HANDLE: 'BAD_HANDLE',
  /** Operation not supported by this filesystem. */
  NOT_SUPPORTED: 'NOT_SUPPORTED',
  /** Data is temporarily unavailable (cold recall in progress): retry later. */
  AGAIN: 'AGAIN',
  /** No space left on the block tier. */
  NO_SPACE: 'NO_SPACE',
  /** Stored data failed verification (hash or checksum mismatch). */
  CORRUPT: 'CORRUPT',
  /** Underlying I/O failed (tier unreachable, disk error). */
  IO: 'IO',
  /** Configuration or command-line input is invalid. */
  CONFIG: 'CONFIG',
  /** The store is missing, not initialised, or of an unknown format version. */
  STORE: 'STORE',
  /** The store is already opened by another process. */
  LOCKED: 'LOCKED',
  /** The mount point is missing, not a directory, not empty, or already mounted. */
  MOUNTPOINT: 'MOUNTPOINT',
  /** The daemon's control socket could not be reached. */
  NO_DAEMON: 'NO_DAEMON',
  /** A component was used after close(). */
  CLOSED: 'CLOSED',
  /** Invariant broken: a bug. */
  INTERNAL: 'INTERNAL',
} as const

export type ErrorCode = (typeof ErrorCodes)[keyof typeof ErrorCodes]

export class TierfsError extends Error {
  readonly code: ErrorCode
  /** Free-form facts for logs (path, chunk id, ...). Never credentials. */
  readonly detail: Record<string, unknown> | undefined

  constructor(code: ErrorCode, message: string, opts: { cause?: unknown; detail?: Record<string, unknown> } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause })
    this.name = 'TierfsError'
    this.code = code
    this.detail = opts.detail
  }

  static notFound(what: string): TierfsError { return new TierfsError('NOT_FOUND', `${what}: no such file or directory`) }
  static exists(what: string): TierfsError { return new TierfsError('EXISTS', `${what}: already exists`) }
  static notDir(what: string): TierfsError { return new TierfsError('NOT_DIR', `${what}: not a directory`) }
  static isDir(what: string): TierfsError { return new TierfsError('IS_DIR', `${what}: is a directory`) }
  static notEmpty(what: string): TierfsError { return new TierfsError('NOT_EMPTY', `${what}: directory not empty`) }
  static access(what: string): TierfsError { return new TierfsError('ACCESS', `${what}: permission denied`) }
  static perm(what: string): TierfsError { return new TierfsError('PERM', `${what}: operation not permitted`) }
  static invalid(what: string): TierfsError { return new TierfsError('INVALID', `${what}: invalid argument`) }
  static readOnly(what: string): TierfsError { return new TierfsError('READ_ONLY', `${what}: read-only`) }
  static corrupt(message: string, detail?: Record<string, unknown>): TierfsError {
    return new TierfsError('CORRUPT', message, detail === undefined ? {} : { detail })
  }
  static io(message: string, cause?: unknown): TierfsError { return new TierfsError('IO', message, { cause }) }
  static internal(message: string): TierfsError { return new TierfsError('INTERNAL', message) }

  /** Wraps any thrown value; TierfsErrors pass through, Node errno errors map to codes. */
  static from(err: unknown, context: string): TierfsError {
    if (err instanceof TierfsError) return err
    const e = err as NodeJS.ErrnoException
    switch (e?.code) {
      case 'ENOENT': return new TierfsError('NOT_FOUND', `${context}: ${e.message}`, { cause: err })
      case 'EEXIST': return new TierfsError('EXISTS', `${context}: ${e.message}`, { cause: err })
      case 'ENOSPC': case 'EDQUOT': return new TierfsError('NO_SPACE', `${context}: ${e.message}`, { cause: err })
      case 'EACCES': return new TierfsError('ACCESS', `${context}: ${e.message}`, { cause: err })
      case 'EPERM': return new TierfsError('PERM', `${context}: ${e.message}`, { cause: err })
      case 'ENOTDIR': return new TierfsError('NOT_DIR', `${context}: ${e.message}`, { cause: err })
      case 'EISDIR': return new TierfsError('IS_DIR', `${context}: ${e.message}`, { cause: err })
      case 'ENOTEMPTY': return new TierfsError('NOT_EMPTY', `${context}: ${e.message}`, { cause: err })
      default: return new TierfsError('IO', `${context}: ${e?.message ?? String(err)}`, { cause: err })
    }
  }
}

export function isCode(err: unknown, code: ErrorCode): boolean {
  return err instanceof TierfsError && err.code === code
}
