// Typed view of fuse-native 2.2.6 as patched by scripts/patch-fuse-native.mjs (tierfs-patch-4).
import { createRequire } from 'node:module'
import { dirname } from 'node:path'

/** Identity of the process whose request is being handled (libfuse's fuse_get_context). */
export interface CallerContext {
  uid: number
  gid: number
  pid: number
  /** Caller's umask; the kernel sends it for create, mknod and mkdir only, else 0. */
  umask: number
}

/**
 * A stat for getattr/readdir. The bigint `*Ns` fields (ns since the epoch, >= 0) win over the Date
 * fields and keep full nanosecond precision; Dates carry milliseconds.
 */
export interface FuseStat {
  mode: number
  uid: number
  gid: number
  size: number
  nlink: number
  ino?: number
  blksize?: number
  blocks?: number
  atime: Date
  mtime: Date
  ctime: Date
  atimeNs?: bigint
  mtimeNs?: bigint
  ctimeNs?: bigint
}

/** Errors are negative errno values (Fuse.ENOENT ...); 0 is success. */
export type Done = (err: number) => void

/** The subset of fuse-native's operations the binding tests use. */
export interface FuseOps {
  getattr(path: string, cb: (err: number, stat?: FuseStat) => void): void
  readdir(path: string, cb: (err: number, names?: string[], stats?: FuseStat[]) => void): void
  create(path: string, mode: number, cb: (err: number, fd?: number) => void): void
  open(path: string, flags: number, cb: (err: number, fd?: number) => void): void
  release(path: string, fd: number, cb: Done): void
  unlink(path: string, cb: Done): void
  mkdir(path: string, mode: number, cb: Done): void
  rmdir(path: string, cb: Done): void
  chmod(path: string, mode: number, cb: Done): void
  /**
   * Times are ns since the epoch; Fuse.UTIME_NOW (-1n) means "now", Fuse.UTIME_OMIT (-2n) means
   * "leave unchanged". Called when either time is set (libfuse's flag_utime_omit_ok).
   */
  utimens(path: string, atime: bigint, mtime: bigint, cb: Done): void
}

export interface FuseOptions {
  force?: boolean
  mkdir?: boolean
  autoUnmount?: boolean
  allowOther?: boolean
  defaultPermissions?: boolean
  /** false: no per-operation timer at all. */
  timeout?: number | false
}

export interface FuseInstance {
  readonly mnt: string
  /** Caller of the request being handled; only valid at an ops handler's synchronous entry, else null. */
  readonly callerContext: CallerContext | null
  /** Per-thread locals of this mount: allocated in total, and currently parked on the free list. */
  threadLocalsStats(): { allocated: number, free: number }
  mount(cb: (err: Error | null) => void): void
  unmount(cb: (err: Error | null) => void): void
}

export interface FuseConstructor {
  new (mnt: string, ops: FuseOps, opts?: FuseOptions): FuseInstance
  readonly UTIME_NOW: bigint
  readonly UTIME_OMIT: bigint
  readonly ENOENT: number
  readonly EEXIST: number
  readonly ENOTEMPTY: number
}

const require = createRequire(import.meta.url)

/** The patched module; loading throws if the addon is not the patched build. */
export const Fuse = require('fuse-native') as FuseConstructor

/** The installed fuse-native package directory. */
export const fuseNativeDir = dirname(require.resolve('fuse-native/package.json'))

/** Absolute path of the .node file node-gyp-build resolves (and index.js loads) for fuse-native. */
export const loadedAddonPath: string = (require('node-gyp-build') as { resolve(dir: string): string })
  .resolve(fuseNativeDir)
