import type { Caller, Stat, TimeSpec, Vfs } from '../vfs/vfs.js'
import { toErrno } from './errno.js'

/** What the ops need from the mounted binding: the identity of the current caller. */
export interface CallerSource {
  /** Valid only synchronously at handler entry. */
  callerContext: { uid: number; gid: number; pid: number } | null
}

type Cb = (...args: any[]) => void

/** The stat object fuse-native packs (ms times for the stock fields, ns when patched). */
export function statObject(s: Stat): Record<string, unknown> {
  return {
    mode: s.mode, uid: s.uid, gid: s.gid, size: s.size, nlink: s.nlink, ino: s.ino, inoHigh: s.inoHigh ?? 0, rdev: s.rdev,
    blksize: s.blksize, blocks: s.blocks, dev: 0,
    atime: Number(s.atimeNs / 1_000_000n), mtime: Number(s.mtimeNs / 1_000_000n), ctime: Number(s.ctimeNs / 1_000_000n),
    atimeNs: s.atimeNs, mtimeNs: s.mtimeNs, ctimeNs: s.ctimeNs,
  }
}

/** '.' and '..' need only their type for readdir; the kernel asks getattr for the rest. */
const DIR_STAT = { mode: 0o040755 }

const UTIME_NOW = -1n
const UTIME_OMIT = -2n

function timeSpec(t: unknown): TimeSpec {
  if (typeof t === 'bigint') return t === UTIME_NOW ? 'now' : t === UTIME_OMIT ? 'omit' : t
  return BigInt(Math.round(Number(t) * 1e6))
}

/** Errors worth a log line: everything that is not an ordinary POSIX answer. */
export type ErrorReporter = (op: string, path: string, err: unknown) => void

/**
 * The fuse-native `ops` object for a Vfs: resolve arguments, call, map the error, reply.
 * Mechanical on purpose: no caching, retry or policy here.
 */
export function fuseOps(vfs: Vfs, binding: CallerSource, report: ErrorReporter): Record<string, Cb> {
  const caller = (): Caller => {
    const c = binding.callerContext
    return c === null ? { uid: 0, gid: 0, pid: 0 } : { uid: c.uid, gid: c.gid, pid: c.pid }
  }
  const fail = (op: string, path: string, err: unknown): number => {
    report(op, path, err)
    return toErrno(err)
  }
  /** Replies (err) or (0, value) from a promise. */
  const reply = <T>(op: string, path: string, p: Promise<T>, cb: Cb, map: (v: T) => unknown[] = () => []): void => {
    p.then((v) => cb(0, ...map(v)), (err) => cb(fail(op, path, err)))
  }

  return {
    getattr: (path: string, cb: Cb) => reply('getattr', path, vfs.getattr(path), cb, (s) => [statObject(s)]),
    fgetattr: (path: string, fd: number, cb: Cb) => reply('fgetattr', path, fd ? vfs.fgetattr(fd) : vfs.getattr(path), cb, (s) => [statObject(s)]),
    readdir: (path: string, cb: Cb) => reply('readdir', path, vfs.readdir(path), cb, (list) => [
      ['.', '..', ...list.map((e) => e.name)],
      [DIR_STAT, DIR_STAT, ...list.map((e) => statObject(e.stat))],
    ]),
    readlink: (path: string, cb: Cb) => reply('readlink', path, vfs.readlink(path), cb, (t) => [t]),
    statfs: (path: string, cb: Cb) => reply('statfs', path, vfs.statfs(path), cb, (s) => [s]),
    mknod: (path: string, mode: number, dev: number, cb: Cb) => reply('mknod', path, vfs.mknod(path, mode, dev, caller()), cb),
    mkdir: (path: string, mode: number, cb: Cb) => reply('mkdir', path, vfs.mkdir(path, mode, caller()), cb),
    symlink: (target: string, path: string, cb: Cb) => reply('symlink', path, vfs.symlink(target, path, caller()), cb),
    link: (existing: string, path: string, cb: Cb) => reply('link', path, vfs.link(existing, path), cb),
    unlink: (path: string, cb: Cb) => reply('unlink', path, vfs.unlink(path), cb),
    rmdir: (path: string, cb: Cb) => reply('rmdir', path, vfs.rmdir(path), cb),
    rename: (from: string, to: string, cb: Cb) => reply('rename', from, vfs.rename(from, to, 0), cb),
    chmod: (path: string, mode: number, cb: Cb) => reply('chmod', path, vfs.chmod(path, mode), cb),
    chown: (path: string, uid: number, gid: number, cb: Cb) => reply('chown', path, vfs.chown(path, uid, gid), cb),
    truncate: (path: string, size: number, cb: Cb) => reply('truncate', path, vfs.truncate(path, size), cb),
    ftruncate: (path: string, fd: number, size: number, cb: Cb) => reply('ftruncate', path, vfs.ftruncate(fd, size), cb),
    utimens: (path: string, atime: unknown, mtime: unknown, cb: Cb) =>
      reply('utimens', path, vfs.utimens(path, timeSpec(atime), timeSpec(mtime)), cb),
    open: (path: string, flags: number, cb: Cb) => reply('open', path, vfs.open(path, flags, caller()), cb, (fh) => [fh]),
    create: (path: string, mode: number, cb: Cb) =>
      reply('create', path, vfs.create(path, mode, 0o101 /* O_WRONLY|O_CREAT */, caller()), cb, (fh) => [fh]),
    read: (path: string, fd: number, buf: Buffer, len: number, pos: number, cb: Cb) => {
      vfs.read(fd, len === buf.length ? buf : buf.subarray(0, len), pos).then((n) => cb(n), (err) => cb(fail('read', path, err)))
    },
    write: (path: string, fd: number, buf: Buffer, len: number, pos: number, cb: Cb) => {
      vfs.write(fd, len === buf.length ? buf : buf.subarray(0, len), pos).then((n) => cb(n), (err) => cb(fail('write', path, err)))
    },
    flush: (path: string, fd: number, cb: Cb) => reply('flush', path, vfs.flush(fd), cb),
    fsync: (path: string, datasync: number, fd: number, cb: Cb) => reply('fsync', path, vfs.fsync(fd, Boolean(datasync)), cb),
    fsyncdir: (path: string, _datasync: number, _fd: number, cb: Cb) => reply('fsyncdir', path, vfs.fsyncdir(path), cb),
    release: (path: string, fd: number, cb: Cb) => reply('release', path, vfs.release(fd), cb),
    setxattr: (path: string, name: string, value: Buffer, _position: number, flags: number, cb: Cb) =>
      reply('setxattr', path, vfs.setxattr(path, name, value, flags), cb),
    getxattr: (path: string, name: string, _position: number, cb: Cb) => {
      vfs.getxattr(path, name).then((v) => cb(0, v), (err) => cb(fail('getxattr', path, err)))
    },
    listxattr: (path: string, cb: Cb) => reply('listxattr', path, vfs.listxattr(path), cb, (names) => [names]),
    removexattr: (path: string, name: string, cb: Cb) => reply('removexattr', path, vfs.removexattr(path, name), cb),
  }
}
