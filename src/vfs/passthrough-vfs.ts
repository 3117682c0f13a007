import { constants, type BigIntStats } from 'node:fs'
import * as fs from 'node:fs/promises'
import { join } from 'node:path'
import { TierfsError } from '../errors.js'
import type { Caller, DirListing, Stat, StatFs, TimeSpec, Vfs } from './vfs.js'

/**
 * A Vfs over a plain directory: every call is the matching syscall. It is the speed ceiling of
 * the FUSE binding + adapter in benchmarks (what no filesystem on this binding can beat), and a
 * reference for the adapter's tests. It does not change ownership to the caller.
 */
export class PassthroughVfs implements Vfs {
  private readonly handles = new Map<number, fs.FileHandle>()
  private next = 1

  constructor(private readonly root: string) {}

  private p(path: string): string {
    return join(this.root, path)
  }

  private async wrap<T>(what: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn()
    } catch (err) {
      throw TierfsError.from(err, what)
    }
  }

  private fh(fd: number): fs.FileHandle {
    const h = this.handles.get(fd)
    if (h === undefined) throw new TierfsError('BAD_HANDLE', `handle ${fd}`)
    return h
  }

  getattr(path: string): Promise<Stat> {
    return this.wrap(path, async () => toStat(await fs.lstat(this.p(path), { bigint: true })))
  }

  fgetattr(fd: number): Promise<Stat> {
    return this.wrap(`fd ${fd}`, async () => toStat(await this.fh(fd).stat({ bigint: true })))
  }

  readdir(path: string): Promise<DirListing[]> {
    return this.wrap(path, async () => {
      const names = await fs.readdir(this.p(path))
      return Promise.all(names.map(async (name) => ({ name, stat: toStat(await fs.lstat(join(this.p(path), name), { bigint: true })) })))
    })
  }

  readlink(path: string): Promise<string> {
    return this.wrap(path, () => fs.readlink(this.p(path)))
  }

  statfs(path: string): Promise<StatFs> {
    return this.wrap(path, async () => {
      const s = await fs.statfs(this.p(path))
      return { bsize: s.bsize, frsize: s.bsize, blocks: s.blocks, bfree: s.bfree, bavail: s.bavail, files: s.files, ffree: s.ffree, favail: s.ffree, namemax: 255 }
    })
  }

  async mknod(path: string): Promise<void> {
    throw new TierfsError('NOT_SUPPORTED', `mknod ${path}`)
  }

  mkdir(path: string, mode: number, _caller: Caller): Promise<void> {
    return this.wrap(path, () => fs.mkdir(this.p(path), { mode }))
  }

  symlink(target: string, path: string): Promise<void> {
    return this.wrap(path, () => fs.symlink(target, this.p(path)))
  }

  link(existing: string, path: string): Promise<void> {
    return this.wrap(path, () => fs.link(this.p(existing), this.p(path)))
  }

  unlink(path: string): Promise<void> {
    return this.wrap(path, () => fs.unlink(this.p(path)))
  }

  rmdir(path: string): Promise<void> {
    return this.wrap(path, () => fs.rmdir(this.p(path)))
  }

  rename(from: string, to: string): Promise<void> {
    return this.wrap(from, () => fs.rename(this.p(from), this.p(to)))
  }

  chmod(path: string, mode: number): Promise<void> {
    return this.wrap(path, () => fs.chmod(this.p(path), mode))
  }

  chown(path: string, uid: number, gid: number): Promise<void> {
    return this.wrap(path, () => fs.lchown(this.p(path), uid, gid))
  }

  truncate(path: string, size: number): Promise<void> {
    return this.wrap(path, () => fs.truncate(this.p(path), size))
  }

  utimens(path: string, atime: TimeSpec, mtime: TimeSpec): Promise<void> {
    return this.wrap(path, async () => {
      const st = await fs.lstat(this.p(path), { bigint: true })
      const sec = (t: TimeSpec, old: bigint): number => Number((t === 'now' ? BigInt(Date.now()) * 1_000_000n : t === 'omit' ? old : t) / 1000n) / 1e6
      await fs.lutimes(this.p(path), sec(atime, st.atimeNs), sec(mtime, st.mtimeNs))
    })
  }

  open(path: string, flags: number): Promise<number> {
    return this.wrap(path, async () => {
      const h = await fs.open(this.p(path), flags & ~constants.O_APPEND)
      const fd = this.next++
      this.handles.set(fd, h)
      return fd
    })
  }

  create(path: string, mode: number, flags: number): Promise<number> {
    return this.wrap(path, async () => {
      const h = await fs.open(this.p(path), (flags | constants.O_CREAT | constants.O_RDWR) & ~constants.O_WRONLY & ~constants.O_APPEND, mode)
      const fd = this.next++
      this.handles.set(fd, h)
      return fd
    })
  }

  read(fd: number, buf: Buffer, offset: number): Promise<number> {
    return this.wrap(`fd ${fd}`, async () => (await this.fh(fd).read(buf, 0, buf.length, offset)).bytesRead)
  }

  write(fd: number, buf: Buffer, offset: number): Promise<number> {
    return this.wrap(`fd ${fd}`, async () => (await this.fh(fd).write(buf, 0, buf.length, offset)).bytesWritten)
  }

  ftruncate(fd: number, size: number): Promise<void> {
    return this.wrap(`fd ${fd}`, () => this.fh(fd).truncate(size))
  }

  async flush(): Promise<void> {}

  fsync(fd: number, datasync: boolean): Promise<void> {
    return this.wrap(`fd ${fd}`, () => (datasync ? this.fh(fd).datasync() : this.fh(fd).sync()))
  }

  release(fd: number): Promise<void> {
    return this.wrap(`fd ${fd}`, async () => {
      const h = this.handles.get(fd)
      this.handles.delete(fd)
      await h?.close()
    })
  }

  async fsyncdir(): Promise<void> {}

  async setxattr(path: string): Promise<void> {
    throw new TierfsError('NOT_SUPPORTED', `xattrs on passthrough ${path}`)
  }

  async getxattr(path: string, name: string): Promise<Buffer> {
    throw new TierfsError('NO_XATTR', `${path}: ${name}`)
  }

  async listxattr(): Promise<string[]> {
    return []
  }

  async removexattr(path: string): Promise<void> {
    throw new TierfsError('NOT_SUPPORTED', `xattrs on passthrough ${path}`)
  }
}

function toStat(s: BigIntStats): Stat {
  return {
    ino: Number(s.ino & 0xffffffffn), mode: Number(s.mode), nlink: Number(s.nlink), uid: Number(s.uid), gid: Number(s.gid),
    size: Number(s.size), blocks: Number(s.blocks), blksize: Number(s.blksize), rdev: Number(s.rdev),
    atimeNs: s.atimeNs, mtimeNs: s.mtimeNs, ctimeNs: s.ctimeNs,
  }
}
