import type { BigIntStats } from 'node:fs'
import * as fs from 'node:fs/promises'
import { join } from 'node:path'
import { TierfsError } from '../errors.js'
import type { Ino } from '../ids.js'
import type { Logger } from '../log.js'
import type { Meta } from '../meta/meta.js'
import { S_IFMT, S_IFDIR, S_IFLNK, S_IFREG, S_ISGID } from '../vfs/mode.js'
import { components } from '../vfs/path.js'
import type { TierfsVfs } from '../vfs/tierfs-vfs.js'
import { O_CREAT, O_EXCL, O_WRONLY, type Caller, type Stat } from '../vfs/vfs.js'
import { compareNames } from './diff.js'
import { IngestManifest, sameStamp, type SourceStamp } from './ingest-manifest.js'
import { IngestXattrs } from './ingest-xattrs.js'
import { TaskPool } from '../task-pool.js'
import type { RestorePointInfo, RestorePoints } from './restore-points.js'

export type IngestVfs = Pick<
  TierfsVfs,
  'mkdir' | 'create' | 'write' | 'release' | 'unlink' | 'rmdir' | 'symlink' | 'link' | 'mknod' | 'chmod' | 'chown' | 'utimens' |
  'readlink' | 'rename' | 'resolve' | 'statOf' | 'sealAll' | 'setxattr' | 'getxattr' | 'listxattr' | 'removexattr'
>

export type IngestDeps = {
  vfs: IngestVfs
  meta: Pick<Meta, 'readdir' | 'getSys' | 'begin' | 'packs'>
  restorePoints: Pick<RestorePoints, 'create'>
  log: Logger
  /** Wall clock, ms (progress lines). */
  nowMs?: () => number
}

export interface IngestSpec {
  workflow: string
  /** External directory to copy from (any local path). */
  dir: string
  /** Directory of the namespace it is copied to (created when missing). */
  dest: string
  /**
   * Absolute paths never copied (with their subtrees), e.g. the mount point and the store: a
   * source that contains them must not ingest the store into itself.
   */
  exclude?: string[]
}

export interface IngestOptions {
  /** Seal and record the manifest after this many copied files or bytes (crash checkpoint). */
  checkpointFiles?: number
  checkpointBytes?: number
  /** Log a progress line at most this often. */
  progressEveryMs?: number
  /** Files copied at once (default 4). */
  concurrency?: number
  /** Stops the run between two entries (no restore point is created). */
  signal?: AbortSignal
  /** Called after each entry (tests use it to crash mid-run). */
  onEntry?: (counts: IngestCounts) => void | Promise<void>
}

export interface IngestCounts {
  /** Regular files copied because they were not in the previous run. */
  filesNew: number
  /** Regular files copied again because their size, mtime, ctime or inode number changed. */
  filesChanged: number
  /** Regular files skipped without reading. */
  filesUnchanged: number
  /** Entries of the destination removed because their source is gone (subtrees count each entry). */
  deleted: number
  dirs: number
  symlinks: number
  /** Paths made hard links to a file copied earlier in the run. */
  hardLinks: number
  /** FIFOs, sockets and device nodes. */
  specials: number
  /** Source entries that could not be read (logged; the rest of the tree is still copied). */
  errors: number
  bytesRead: number
}

export interface IngestSummary extends IngestCounts {
  workflow: string
  source: string
  dest: string
  /** Growth of the store's pack bytes over the run, measured after sealing (what the night cost). */
  bytesStored: number
  elapsedMs: number
  /** How user.* xattrs were copied ("user.* copied (N set, M removed)"), or why they were not. */
  xattrs: string
  restorePoint: RestorePointInfo
}

const CHUNK = 1 << 20

/**
 * Ingest mode of a backup workflow: makes the namespace directory `dest` an exact copy of the
 * external directory `dir` (modes, owners, atime and mtime to the nanosecond, symlinks, hard links,
 * FIFOs and device nodes, user.* xattrs of files and directories; ctime is the copy's own), then
 * creates the workflow's restore point of `dest`. Up to `concurrency` files are copied at once.
 *
 * Only new or changed files are read: a file whose (size, mtime, ctime, inode number) match the
 * manifest record of the previous run and whose copy in `dest` still has that size and mtime is
 * skipped. Changed files are written through the vfs as new files (dedup happens at seal), so an
 * unchanged stretch of a rewritten file costs no space.
 *
 * xattrs are read with getfattr (Debian package attr), one process per batch of entries copied or
 * visited: a new copy takes the source's user.* xattrs, and every directory is brought to exactly
 * the source's (names the source lost are removed). An xattr change bumps the source's ctime, so
 * it makes its file "changed". Without getfattr the tree is copied all the same, without xattrs,
 * and the summary's `xattrs` says why.
 *
 * Crash safety: manifest records are committed only after a seal made the copied bytes durable,
 * and the restore point is created last; a run killed at any point leaves the previous restore
 * points as they were, and the next run redoes exactly what was not recorded.
 *
 * Memory: one directory's names at a time per level of depth (sorted, to merge-join with the
 * destination's listing), the destination path of each multiply-linked source inode, and a batch
 * of paths waiting for their xattrs.
 */
export async function runIngest(deps: IngestDeps, spec: IngestSpec, opts: IngestOptions = {}): Promise<IngestSummary> {
  const run = new IngestRun(deps, spec, opts)
  return run.run()
}

class IngestRun {
  private readonly counts: IngestCounts = {
    filesNew: 0, filesChanged: 0, filesUnchanged: 0, deleted: 0, dirs: 0, symlinks: 0, hardLinks: 0, specials: 0, errors: 0, bytesRead: 0,
  }
  private readonly manifest: IngestManifest
  /** Destination of the first copy of each source inode with several links ("dev:ino"), once written. */
  private readonly linked = new Map<string, Promise<{ path: string; ino: number } | undefined>>()
  private readonly pool: TaskPool
  private readonly buffers: Buffer[] = []
  private readonly now: () => number
  private readonly xattrs: IngestXattrs
  private sinceCheckpoint = { files: 0, bytes: 0 }
  private lastProgress = 0
  private tmpSeq = 0
  /** "dev:ino" of the excluded directories (identity, not spelling, of the paths). */
  private excluded = new Set<string>()

  constructor(private readonly deps: IngestDeps, private readonly spec: IngestSpec, private readonly opts: IngestOptions) {
    this.manifest = new IngestManifest(deps.meta, spec.workflow)
    this.now = deps.nowMs ?? Date.now
    this.pool = new TaskPool(Math.max(1, opts.concurrency ?? 4))
    this.xattrs = new IngestXattrs(
      { vfs: deps.vfs, log: deps.log, onError: (src, err) => this.fail(src, err), onUnread: (rel) => this.manifest.delete(rel) },
      spec.dir, '/' + components(spec.dest).join('/'),
    )
  }

  async run(): Promise<IngestSummary> {
    const started = this.now()
    const { vfs, log } = this.deps
    const dest = '/' + components(this.spec.dest).join('/')
    const root = await lstatOrNull(this.spec.dir).catch((err: unknown) => { throw TierfsError.from(err, this.spec.dir) })
    if (root === null || (Number(root.mode) & S_IFMT) !== S_IFDIR) {
      throw new TierfsError('NOT_FOUND', `ingest ${this.spec.workflow}: source ${this.spec.dir} is not a directory`)
    }
    for (const p of this.spec.exclude ?? []) {
      const st = await lstatOrNull(p).catch(() => null)
      if (st !== null) this.excluded.add(`${st.dev}:${st.ino}`)
    }
    await vfs.sealAll()
    const storedBefore = await this.storedBytes()
    await this.xattrs.ready(this.spec.workflow)
    log.info('ingest started', { workflow: this.spec.workflow, source: this.spec.dir, dest })
    const destIno = await this.ensureDir(dest, root)
    this.xattrs.add('', true)
    try {
      await this.syncDir(this.spec.dir, dest, destIno, '', root)
    } catch (err) {
      await this.pool.drain().catch(() => undefined)
      throw err
    }
    await this.checkpoint()
    await vfs.sealAll()
    const bytesStored = (await this.storedBytes()) - storedBefore
    const restorePoint = await this.deps.restorePoints.create(this.spec.workflow, dest)
    const summary: IngestSummary = {
      workflow: this.spec.workflow, source: this.spec.dir, dest, ...this.counts, bytesStored, elapsedMs: this.now() - started,
      xattrs: this.xattrs.summary(), restorePoint,
    }
    log.info('ingest finished', { ...summary })
    return summary
  }

  private caller(st: BigIntStats): Caller {
    return { uid: Number(st.uid), gid: Number(st.gid), pid: process.pid }
  }

  /** The destination root: created (with parents) when missing. */
  private async ensureDir(dest: string, src: BigIntStats): Promise<Ino> {
    const { vfs } = this.deps
    let path = ''
    for (const name of components(dest)) {
      path += '/' + name
      try {
        const st = await vfs.statOf(await vfs.resolve(path))
        if ((st.mode & S_IFMT) !== S_IFDIR) throw TierfsError.notDir(path)
      } catch (err) {
        if (!(err instanceof TierfsError) || err.code !== 'NOT_FOUND') throw err
        await vfs.mkdir(path, path === dest ? Number(src.mode) & 0o7777 : 0o755, path === dest ? this.caller(src) : { uid: 0, gid: 0, pid: process.pid })
      }
    }
    return vfs.resolve(dest)
  }

  /** Makes `dest` (inode `destIno`) hold exactly what the source directory `src` holds. */
  private async syncDir(src: string, dest: string, destIno: Ino, rel: string, srcStat: BigIntStats): Promise<void> {
    const { vfs, meta } = this.deps
    let names: string[]
    try {
      names = (await fs.readdir(src)).sort(compareNames)
    } catch (err) {
      this.fail(src, err)
      return
    }
    const dirMode = (await vfs.statOf(destIno)).mode
    const existing = meta.readdir(destIno)[Symbol.asyncIterator]()
    try {
      let d = await existing.next()
      let i = 0
      while (i < names.length || !d.done) {
        const name = names[i]
        const order = name === undefined ? 1 : d.done ? -1 : compareNames(name, d.value.name)
        const there = order === 0 && !d.done ? d.value.ino : undefined
        if (order > 0 && !d.done) {
          await this.remove(join2(dest, d.value.name), d.value.ino, join2rel(rel, d.value.name))
          d = await existing.next()
          continue
        }
        await this.entry(join(src, name as string), join2(dest, name as string), join2rel(rel, name as string), there, dirMode)
        i++
        if (order === 0) d = await existing.next()
        if (this.xattrs.full) await this.xattrs.flush()
        await this.opts.onEntry?.(this.counts)
        if (this.opts.signal?.aborted === true) {
          await this.checkpoint()
          throw new TierfsError('CLOSED', `ingest ${this.spec.workflow} interrupted (the daemon is stopping); the next run completes it`)
        }
        this.progress()
      }
    } finally {
      await existing.return?.(undefined)
    }
    // Copies in flight still add entries (and change the directory's times): wait for them.
    await this.pool.drain()
    await this.settle(dest, destIno, srcStat)
  }

  private async entry(src: string, dest: string, rel: string, there: Ino | undefined, parentMode: number): Promise<void> {
    let st: BigIntStats | null
    try {
      st = await lstatOrNull(src)
    } catch (err) {
      this.fail(src, err)
      return
    }
    if (st === null) {
      if (there !== undefined) await this.remove(dest, there, rel)
      return
    }
    const type = Number(st.mode) & S_IFMT
    if (type === S_IFDIR && this.excluded.has(`${st.dev}:${st.ino}`)) {
      this.deps.log.warn('ingest: skipping an excluded directory inside the source', { workflow: this.spec.workflow, path: src })
      return
    }
    const cur = there === undefined ? undefined : await this.deps.vfs.statOf(there)
    try {
      if (type === S_IFDIR) await this.dir(src, dest, rel, st, cur)
      else if (type === S_IFREG) await this.file(src, dest, rel, st, cur, parentMode)
      else if (type === S_IFLNK) await this.symlink(src, dest, rel, st, cur)
      else await this.special(dest, rel, st, cur)
    } catch (err) {
      // Failures of the source (unreadable, vanished) skip the entry; failures of the store stop the run.
      if (err instanceof TierfsError) throw err
      this.fail(src, err)
    }
  }

  private async dir(src: string, dest: string, rel: string, st: BigIntStats, cur: Stat | undefined): Promise<void> {
    const { vfs } = this.deps
    if (cur !== undefined && (cur.mode & S_IFMT) !== S_IFDIR) {
      await this.remove(dest, cur.ino as Ino, rel, false)
      cur = undefined
    }
    if (cur === undefined) await vfs.mkdir(dest, Number(st.mode) & 0o7777, this.caller(st))
    this.counts.dirs++
    this.xattrs.add(rel, cur !== undefined)
    await this.syncDir(src, dest, cur === undefined ? await vfs.resolve(dest) : (cur.ino as Ino), rel, st)
  }

  private async file(src: string, dest: string, rel: string, st: BigIntStats, cur: Stat | undefined, parentMode: number): Promise<void> {
    const { vfs } = this.deps
    const stamp: SourceStamp = { size: st.size, mtimeNs: st.mtimeNs, ctimeNs: st.ctimeNs, ino: st.ino }
    const isFile = cur !== undefined && (cur.mode & S_IFMT) === S_IFREG
    const key = `${st.dev}:${st.ino}`
    if (st.nlink > 1n) {
      const first = await this.linked.get(key)
      if (first !== undefined) {
        if (isFile && cur.ino === first.ino) return
        if (cur !== undefined) await this.remove(dest, cur.ino as Ino, rel, false)
        await vfs.link(first.path, dest)
        this.counts.hardLinks++
        return
      }
    }
    const record = await this.manifest.get(rel)
    if (isFile && sameStamp(record, stamp) && cur.size === Number(st.size) && cur.mtimeNs === st.mtimeNs) {
      this.counts.filesUnchanged++
      if (st.nlink > 1n) this.linked.set(key, Promise.resolve({ path: dest, ino: cur.ino }))
      return
    }
    let written: (v: { path: string; ino: number } | undefined) => void = () => undefined
    if (st.nlink > 1n) this.linked.set(key, new Promise((ok) => { written = ok }))
    await this.pool.submit(async () => {
      try {
        const read = await this.copy(src, dest, rel, st, cur, parentMode)
        this.counts.bytesRead += read
        if (record === undefined) this.counts.filesNew++
        else this.counts.filesChanged++
        written(st.nlink > 1n ? { path: dest, ino: await vfs.resolve(dest) } : undefined)
        this.xattrs.add(rel, false)
        this.manifest.put(rel, stamp)
        this.sinceCheckpoint.files++
        this.sinceCheckpoint.bytes += read
      } catch (err) {
        written(undefined)
        // Failures of the source skip the file; failures of the store stop the run (at the next drain).
        if (err instanceof TierfsError) throw err
        this.fail(src, err)
      }
    })
    if (this.sinceCheckpoint.files >= (this.opts.checkpointFiles ?? 2000) || this.sinceCheckpoint.bytes >= (this.opts.checkpointBytes ?? 512 * 1024 * 1024)) {
      await this.checkpoint()
    }
  }

  /**
   * Writes one file's copy. A new path is written in place; a replacement is made under a
   * temporary name and renamed over the old entry: a source that fails to read leaves the previous
   * copy in place, and the old inode (perhaps linked from other paths of dest) is never rewritten.
   */
  private async copy(src: string, dest: string, rel: string, st: BigIntStats, cur: Stat | undefined, parentMode: number): Promise<number> {
    const { vfs } = this.deps
    const target = cur === undefined ? dest : await this.tempName(dest)
    const fh = await vfs.create(target, Number(st.mode) & 0o7777, O_WRONLY | O_CREAT | O_EXCL, this.caller(st))
    const buf = this.buffers.pop() ?? Buffer.allocUnsafe(CHUNK)
    let read = 0
    let released = false
    try {
      const source = await fs.open(src, 'r')
      try {
        for (;;) {
          const { bytesRead } = await source.read(buf, 0, CHUNK, read)
          if (bytesRead === 0) break
          await vfs.write(fh, buf.subarray(0, bytesRead), read)
          read += bytesRead
        }
      } finally {
        await source.close()
      }
      // New nodes of a setgid directory take its group; the copy keeps the source's.
      if ((parentMode & S_ISGID) !== 0) await vfs.chown(target, Number(st.uid), Number(st.gid))
      // Times are set while the file is open, so the seal commits them (not the write time).
      await vfs.utimens(target, st.atimeNs, st.mtimeNs)
      released = true
      await vfs.release(fh)
      if (target !== dest) {
        if ((cur!.mode & S_IFMT) === S_IFDIR) await this.remove(dest, cur!.ino as Ino, rel, false)
        await vfs.rename(target, dest, 0)
      }
    } catch (err) {
      if (!released) await vfs.release(fh)
      await vfs.unlink(target).catch(() => undefined)
      throw err
    } finally {
      this.buffers.push(buf)
    }
    return read
  }

  private async symlink(src: string, dest: string, rel: string, st: BigIntStats, cur: Stat | undefined): Promise<void> {
    const { vfs } = this.deps
    const target = await fs.readlink(src)
    this.counts.symlinks++
    if (cur !== undefined && (cur.mode & S_IFMT) === S_IFLNK && (await vfs.readlink(dest)) === target) {
      if (cur.uid !== Number(st.uid) || cur.gid !== Number(st.gid)) await vfs.chown(dest, Number(st.uid), Number(st.gid))
      if (cur.mtimeNs !== st.mtimeNs) await vfs.utimens(dest, st.atimeNs, st.mtimeNs)
      return
    }
    if (cur !== undefined) await this.remove(dest, cur.ino as Ino, rel, false)
    await vfs.symlink(target, dest, this.caller(st))
    await vfs.utimens(dest, st.atimeNs, st.mtimeNs)
  }

  /** A free temporary name next to `dest` (copies in flight; a crash leaves them to the next run). */
  private async tempName(dest: string): Promise<string> {
    const dir = dest.slice(0, dest.lastIndexOf('/'))
    for (;;) {
      const tmp = `${dir}/.tierfs-ingest-${this.tmpSeq++}`
      try {
        await this.deps.vfs.resolve(tmp)
      } catch (err) {
        if (err instanceof TierfsError && err.code === 'NOT_FOUND') return tmp
        throw err
      }
    }
  }

  private async special(dest: string, rel: string, st: BigIntStats, cur: Stat | undefined): Promise<void> {
    const { vfs } = this.deps
    this.counts.specials++
    const mode = Number(st.mode)
    if (cur !== undefined && (cur.mode & S_IFMT) === (mode & S_IFMT) && cur.rdev === Number(st.rdev)) {
      await this.settleAttrs(dest, cur, st)
      return
    }
    if (cur !== undefined) await this.remove(dest, cur.ino as Ino, rel, false)
    await vfs.mknod(dest, mode, Number(st.rdev), this.caller(st))
    await vfs.utimens(dest, st.atimeNs, st.mtimeNs)
  }

  /** Gives a directory the source's mode, owner and times (after its entries changed them). */
  private async settle(dest: string, destIno: Ino, st: BigIntStats): Promise<void> {
    await this.settleAttrs(dest, await this.deps.vfs.statOf(destIno), st)
  }

  private async settleAttrs(dest: string, cur: Stat, st: BigIntStats): Promise<void> {
    const { vfs } = this.deps
    if (cur.uid !== Number(st.uid) || cur.gid !== Number(st.gid)) await vfs.chown(dest, Number(st.uid), Number(st.gid))
    if ((cur.mode & 0o7777) !== (Number(st.mode) & 0o7777)) await vfs.chmod(dest, Number(st.mode) & 0o7777)
    if (cur.mtimeNs !== st.mtimeNs) await vfs.utimens(dest, st.atimeNs, st.mtimeNs)
  }

  /**
   * Removes a destination entry (a whole subtree for a directory): its source is gone, or is now
   * of another type (`gone` false: the entry itself is replaced, not counted as deleted).
   */
  private async remove(dest: string, ino: Ino, rel: string, gone = true): Promise<void> {
    const { vfs, meta } = this.deps
    const st = await vfs.statOf(ino)
    if ((st.mode & S_IFMT) === S_IFDIR) {
      // The listing iterator reads a snapshot, so removing entries under it is safe.
      for await (const e of meta.readdir(ino)) await this.remove(join2(dest, e.name), e.ino, join2rel(rel, e.name))
      await vfs.rmdir(dest)
    } else {
      await vfs.unlink(dest)
      if ((st.mode & S_IFMT) === S_IFREG) this.manifest.delete(rel)
    }
    if (gone) this.counts.deleted++
  }

  /** Seals what was copied (xattrs included), then records it in the manifest (never the other way round). */
  private async checkpoint(): Promise<void> {
    await this.pool.drain()
    await this.xattrs.flush()
    await this.deps.vfs.sealAll()
    await this.manifest.flush()
    this.sinceCheckpoint = { files: 0, bytes: 0 }
  }

  private fail(src: string, err: unknown): void {
    const e = TierfsError.from(err, src)
    if (e.code === 'NOT_FOUND') return
    this.counts.errors++
    this.deps.log.warn('ingest: cannot copy a source entry; skipped', { workflow: this.spec.workflow, path: src, err: e })
  }

  private progress(): void {
    const now = this.now()
    if (now - this.lastProgress < (this.opts.progressEveryMs ?? 10_000)) return
    if (this.lastProgress !== 0) this.deps.log.info('ingest progress', { workflow: this.spec.workflow, ...this.counts })
    this.lastProgress = now
  }

  private async storedBytes(): Promise<number> {
    let n = 0
    for await (const p of this.deps.meta.packs()) n += p.size
    return n
  }
}

async function lstatOrNull(path: string): Promise<BigIntStats | null> {
  try {
    return await fs.lstat(path, { bigint: true })
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null
    throw err
  }
}

function join2(dir: string, name: string): string {
  return dir === '/' ? `/${name}` : `${dir}/${name}`
}

function join2rel(rel: string, name: string): string {
  return rel === '' ? name : `${rel}/${name}`
}
