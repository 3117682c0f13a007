import { execFile } from 'node:child_process'
import { createRequire } from 'node:module'
import { readFile, readdir, stat } from 'node:fs/promises'
import { resolve } from 'node:path'
import { TierfsError } from '../errors.js'
import type { Vfs } from '../vfs/vfs.js'
import { fuseOps, type ErrorReporter } from './fuse-ops.js'

const require = createRequire(import.meta.url)

/** Kernel-facing knobs. Defaults are the measured best (see ../shared/FUSE-NATIVE.md). */
export interface MountOptions {
  /** Let other users see the mount; always paired with default_permissions. */
  allowOther: boolean
  /** Seconds the kernel caches attributes and names. 0 is not expressible through the binding. */
  attrTimeout: number
  entryTimeout: number
  negativeTimeout: number
  maxBackground: number
  congestionThreshold: number
  /**
   * Keep page cache across opens while the file is unchanged (libfuse auto_cache, re-checked at
   * every open). Plain kernel_cache would be faster still but serves stale pages through another
   * hard link: libfuse 2 gives each path its own kernel inode.
   */
  kernelCache: boolean
  /** Extra raw options from `-o` (validated against a known list). */
  extra: string[]
  /** libfuse debug output on stderr. */
  debug: boolean
}

export const DEFAULT_MOUNT_OPTIONS: MountOptions = {
  allowOther: true, attrTimeout: 30, entryTimeout: 30, negativeTimeout: 10, maxBackground: 64,
  congestionThreshold: 48, kernelCache: true, extra: [], debug: false,
}

/** `-o` options the user may pass; anything else is refused with a clear error. */
const KNOWN_EXTRA = /^(ro|nonempty|max_read=\d+|noatime|atime|relatime|nodev|nosuid|dev|suid|rw|exec|noexec|_netdev|auto|noauto|user|nouser|defaults|nofail)$/

export interface Mounted {
  readonly mountpoint: string
  /** Unmounts (lazy, like fusermount -uz) and waits for the binding to let go. */
  unmount(): Promise<void>
  /** Binding internals for tests: per-thread contexts allocated and idle. */
  threadLocals(): { allocated: number; free: number }
}

/** Refuses a missing, non-directory, non-empty or already-mounted mount point with MOUNTPOINT. */
export async function checkMountpoint(mountpoint: string, allowNonEmpty: boolean): Promise<string> {
  const mnt = resolve(mountpoint)
  const fail = (why: string): never => { throw new TierfsError('MOUNTPOINT', `mount point ${mnt}: ${why}`) }
  if ((await mountedAt(mnt)) !== undefined) fail('already mounted (tierfs umount it, or fusermount -uz if its daemon died)')
  const st = await stat(mnt).catch((err: NodeJS.ErrnoException) => fail(err.code === 'ENOENT' ? 'does not exist' : err.message))
  if (!st.isDirectory()) fail('is not a directory')
  if (!allowNonEmpty && (await readdir(mnt)).length > 0) fail('is not empty (pass -o nonempty to mount over it)')
  return mnt
}

/** The filesystem type mounted at `mnt` according to /proc/mounts (sees stale ENOTCONN mounts too). */
export async function mountedAt(mnt: string): Promise<string | undefined> {
  const mounts = await readFile('/proc/mounts', 'utf8')
  for (const line of mounts.split('\n')) {
    const f = line.split(' ')
    if (f[1] !== undefined && f[1].replace(/\\040/g, ' ') === mnt) return f[2]
  }
  return undefined
}

/**
 * Mounts `vfs` at `mountpoint` through fuse-native. This module is the only one that knows the
 * binding. Per-operation timeouts are off: a late answer must never meet a freed buffer (slow
 * work such as recalls belongs in `read`, where the caller stays killable).
 */
export async function mountVfs(mountpoint: string, vfs: Vfs, opts: MountOptions, report: ErrorReporter): Promise<Mounted> {
  for (const o of opts.extra) {
    if (!KNOWN_EXTRA.test(o)) throw new TierfsError('CONFIG', `unknown mount option -o ${o}`)
  }
  const mnt = await checkMountpoint(mountpoint, opts.extra.includes('nonempty'))
  const Fuse = require('fuse-native')
  const raw = [
    // use_ino: st_ino is ours, so hard links share one (cp -a, rsync -H, find -samefile rely on it).
    'tierfs', 'big_writes', 'use_ino', `negative_timeout=${opts.negativeTimeout}`, `max_background=${opts.maxBackground}`,
    `congestion_threshold=${opts.congestionThreshold}`, 'subtype=tierfs',
    ...(opts.kernelCache ? ['auto_cache', 'ac_attr_timeout=0'] : []),
    ...opts.extra.filter((o) => /^(ro|nonempty|max_read=\d+)$/.test(o)),
  ].join(',')
  const source = { get callerContext(): { uid: number; gid: number; pid: number } | null { return fuse.callerContext } }
  // eslint-disable-next-line prefer-const
  let fuse: any
  fuse = new Fuse(mnt, fuseOps(vfs, source, report), {
    force: true, mkdir: false, autoUnmount: true,
    allowOther: opts.allowOther, defaultPermissions: true,
    kernelCache: false, attrTimeout: opts.attrTimeout, entryTimeout: opts.entryTimeout,
    timeout: false, debug: opts.debug, fsname: raw,
  })
  await new Promise<void>((ok, fail) => fuse.mount((err: Error | null) => (err ? fail(new TierfsError('MOUNTPOINT',
    `mounting ${mnt} failed: ${err.message} (libfuse printed the reason on stderr; is /dev/fuse there and fusermount installed?)`, { cause: err })) : ok())))
  return {
    mountpoint: mnt,
    unmount: () => unmountWithin(mnt, (cb) => fuse.unmount(cb), UNMOUNT_WAIT_MS),
    threadLocals: () => (typeof fuse.threadLocalsStats === 'function' ? fuse.threadLocalsStats() : { allocated: -1, free: -1 }),
  }
}

const UNMOUNT_WAIT_MS = 20_000

/**
 * fuse-native's unmount runs `fusermount -uz` and waits for its exit; a lost child-exit signal
 * was seen to leave that wait hanging forever. Past `waitMs` we detach the mount ourselves and
 * go on: the lazy unmount is what fusermount would have done.
 */
function unmountWithin(mnt: string, unmount: (cb: (err: Error | null) => void) => void, waitMs: number): Promise<void> {
  return new Promise<void>((ok, fail) => {
    let done = false
    const timer = setTimeout(() => {
      if (done) return
      done = true
      execFile('fusermount', ['-uz', mnt], { timeout: 10_000 }, () => ok())
    }, waitMs)
    timer.unref()
    unmount((err) => {
      if (done) return
      done = true
      clearTimeout(timer)
      if (err) fail(TierfsError.io(`unmount ${mnt}: ${err.message}`, err))
      else ok()
    })
  })
}
