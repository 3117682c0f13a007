/**
 * The POSIX surface the FUSE adapter drives: path-based, like fuse-native's high-level API.
 * Implementations: TierfsVfs (the filesystem) and PassthroughVfs (a plain directory, the
 * binding's speed ceiling in benchmarks).
 *
 * Contract for every method:
 * - Paths are absolute ('/' is the root), already normalised by the kernel.
 * - Failures throw TierfsError; the adapter maps codes to errno. Nothing else may be thrown.
 * - Permission checks are the kernel's (`default_permissions`); ownership of new nodes comes
 *   from `caller`.
 * - Times are nanoseconds since the epoch.
 */
export interface Caller {
  uid: number
  gid: number
  pid: number
}

export interface Stat {
  ino: number
  /** High 32 bits of st_ino: 0 in the live namespace, a per-view number in restore points and history. */
  inoHigh?: number
  /** Type and permission bits, as st_mode. */
  mode: number
  nlink: number
  uid: number
  gid: number
  size: number
  /** 512-byte blocks. */
  blocks: number
  blksize: number
  rdev: number
  atimeNs: bigint
  mtimeNs: bigint
  ctimeNs: bigint
}

export interface StatFs {
  bsize: number
  frsize: number
  blocks: number
  bfree: number
  bavail: number
  files: number
  ffree: number
  favail: number
  namemax: number
}

/** A time to set: nanoseconds, the current time, or leave unchanged. */
export type TimeSpec = bigint | 'now' | 'omit'

export interface DirListing {
  name: string
  stat: Stat
}

export interface Vfs {
  getattr(path: string): Promise<Stat>
  /** Attributes through an open handle (works after the name is gone). */
  fgetattr(fh: number): Promise<Stat>
  /** All entries except '.' and '..', with their attributes. */
  readdir(path: string): Promise<DirListing[]>
  readlink(path: string): Promise<string>
  statfs(path: string): Promise<StatFs>

  mknod(path: string, mode: number, rdev: number, caller: Caller): Promise<void>
  mkdir(path: string, mode: number, caller: Caller): Promise<void>
  symlink(target: string, path: string, caller: Caller): Promise<void>
  link(existing: string, path: string): Promise<void>
  unlink(path: string): Promise<void>
  rmdir(path: string): Promise<void>
  /** flags: RENAME_NOREPLACE (1) and RENAME_EXCHANGE (2) where the binding passes them. */
  rename(from: string, to: string, flags: number): Promise<void>

  chmod(path: string, mode: number): Promise<void>
  chown(path: string, uid: number, gid: number): Promise<void>
  truncate(path: string, size: number): Promise<void>
  utimens(path: string, atime: TimeSpec, mtime: TimeSpec): Promise<void>

  /** Opens an existing file; returns a handle. `flags` are open(2) flags. */
  open(path: string, flags: number, caller: Caller): Promise<number>
  /** Creates (or opens, if it exists and O_EXCL is absent) a regular file; returns a handle. */
  create(path: string, mode: number, flags: number, caller: Caller): Promise<number>
  /** Fills `buf` from `offset`; returns bytes read (0 at end of file). */
  read(fh: number, buf: Buffer, offset: number): Promise<number>
  /** Writes `buf` at `offset`; returns bytes written. */
  write(fh: number, buf: Buffer, offset: number): Promise<number>
  ftruncate(fh: number, size: number): Promise<void>
  flush(fh: number): Promise<void>
  /** After it resolves, everything written through any handle of this file is durable. */
  fsync(fh: number, datasync: boolean): Promise<void>
  release(fh: number): Promise<void>
  /** Makes the directory's entries durable. */
  fsyncdir(path: string): Promise<void>

  setxattr(path: string, name: string, value: Buffer, flags: number): Promise<void>
  getxattr(path: string, name: string): Promise<Buffer>
  listxattr(path: string): Promise<readonly string[]>
  removexattr(path: string, name: string): Promise<void>
}

export const O_ACCMODE = 0o3
export const O_RDONLY = 0
export const O_WRONLY = 0o1
export const O_RDWR = 0o2
export const O_CREAT = 0o100
export const O_EXCL = 0o200
export const O_TRUNC = 0o1000
export const O_APPEND = 0o2000
export const RENAME_NOREPLACE = 1
export const RENAME_EXCHANGE = 2
export const XATTR_CREATE = 1
export const XATTR_REPLACE = 2
