import { execFile, spawn } from 'node:child_process'
import type { BigIntStats } from 'node:fs'
import { createReadStream, createWriteStream } from 'node:fs'
import * as fs from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { pipeline } from 'node:stream/promises'
import { TierfsError } from '../errors.js'
import type { DiffEntry } from './diff.js'
import { DirTimes } from './dir-times.js'
import { TaskPool } from '../task-pool.js'
import { GetfattrParser, missingXattrTools, spawnGetfattr } from './xattr-dump.js'

export type RestoreDeps = {
  /**
   * Inode numbers the daemon gives namespace paths (views included). The mount's st_ino is the
   * kernel's per-name number, so hard links are told apart only by asking the daemon.
   */
  inodes(paths: string[]): Promise<Array<number | null>>
}

export interface RestoreRequest {
  /** The mount point serving the store. */
  mount: string
  /** Namespace path of the view to copy from: /.snapshots/<wf>/<time> or /.history/<instant>. */
  view: string
  /** Any directory (created when missing); never inside the mount. */
  dest: string
  /** Entries to restore, '/'-separated from the view's root (directories with their subtrees); default: all. */
  paths?: string[]
  /** Restore exactly these entries instead (a diff): added and modified ones; deleted ones are only reported. */
  changes?: AsyncIterable<DiffEntry>
  /** Copies running at once (default 4). */
  concurrency?: number
  /** Copy user.* xattrs with getfattr/setfattr (default true; skipped with a note when missing). */
  xattrs?: boolean
  /** Called after every entry or batch of entries (throttle in the caller). */
  onProgress?: (p: RestoreProgress) => void
  /** A deleted entry of `changes` (DEST is not touched for it). */
  onDeleted?: (e: DiffEntry) => void
  /** Problems with single entries (the restore goes on). */
  onError?: (path: string, err: Error) => void
}

export interface RestoreProgress {
  files: number
  bytes: number
  elapsedMs: number
}

export interface RestoreSummary extends RestoreProgress {
  dirs: number
  symlinks: number
  /** Paths made hard links to a file restored earlier in this run. */
  hardLinks: number
  specials: number
  /** Deleted entries of `changes`, listed and left alone. */
  deletedListed: number
  errors: number
  bytesPerSecond: number
  /** How exactly modification times were restored (see `times`). */
  times: string
  /**
   * Entries whose mtime needed `touch -d` after fs.utimes (which keeps microseconds): special
   * files, and anything when cp or tar failed. cp copies files and symlinks to the nanosecond;
   * tar sets directories' mtimes (one process for all).
   */
  mtimeFallbacks: number
  owners: 'restored' | 'not restored (not root)'
  xattrs: string
}

const BATCH = 128
/** Most files and symlinks one `cp` copies, and most bytes of files (a big file gets a cp of its own). */
const CP_FILES = 64
const CP_BYTES = 64 * 1024 * 1024
/** Most bytes of path arguments one `cp` gets (far below ARG_MAX). */
const CP_ARG_BYTES = 64 * 1024

/**
 * A directory of a whole subtree being restored: its attributes are set once its listing is read
 * and everything in it is restored (writing into it changes its mtime). `pending` counts those:
 * the listing, queued entries, subdirectories.
 */
interface DirWork {
  rel: string
  st: BigIntStats
  pending: number
  parent: DirWork | undefined
}

/** A file or symlink for the next `cp`, or a second name of a file (`first`: where its first name went). */
interface CopyItem {
  rel: string
  st: BigIntStats
  /** The directory it is in, when it is restored as part of a subtree. */
  dir: DirWork | undefined
  first?: Promise<string | undefined>
  /** Settles this file's entry in `linked`: its destination path, or undefined when it failed. */
  done?: (dst: string | undefined) => void
}

/**
 * Copies a tree (or some paths of it) out of a read-only view of a mounted store into any
 * directory, like `cp -a`: contents, modes, owners (when root), atime and mtime to the
 * nanosecond, symlinks, hard links, FIFOs and device nodes, user.* xattrs. Reads go through the
 * mount (the daemon's caches and read-ahead serve them). Files and symlinks are copied by `cp`,
 * a batch of them per process (batches span directories) and a few processes at a time: it sets
 * times to the nanosecond, which node's fs cannot (one `touch` per file cost more than the copy);
 * directories get their exact mtimes from one `tar` (DirTimes) once everything in them is done.
 * Never writes into the mount: DEST inside the mount is refused.
 *
 * An existing non-directory at a destination path is replaced (unlinked first, so a hard link
 * elsewhere in DEST is never written through); an existing directory is merged into; a source
 * non-directory that would replace a destination directory is an error for that entry.
 * Memory: a batch of names per directory level, `concurrency` + 1 batches of at most CP_FILES
 * entries, a record per directory with copies in flight, one path per multiply-linked inode.
 */
export async function restoreTree(deps: RestoreDeps, req: RestoreRequest): Promise<RestoreSummary> {
  return new RestoreRun(deps, req).run()
}

class RestoreRun {
  private readonly started = Date.now()
  private readonly s: RestoreSummary = {
    files: 0, bytes: 0, elapsedMs: 0, dirs: 0, symlinks: 0, hardLinks: 0, specials: 0, deletedListed: 0, errors: 0,
    bytesPerSecond: 0, times: 'atime and mtime to the nanosecond', mtimeFallbacks: 0, owners: 'restored', xattrs: 'not copied',
  }
  private readonly pool: TaskPool
  /** First restored copy of each multiply-linked inode: its destination path once written. */
  private readonly linked = new Map<number, Promise<string | undefined>>()
  private readonly srcRoot: string
  private readonly isRoot = process.getuid?.() === 0
  /** Directories whose attributes are set once their entries are in (innermost last). */
  private readonly open: Array<{ rel: string; st: BigIntStats }> = []
  /** Restored paths for the xattr pass of partial restores (the whole-tree pass needs none). */
  private readonly xattrPaths: string[] = []
  private partial = false
  /** DEST was made by this whole-tree restore: nothing is in the way of what it writes. */
  private fresh = false
  /** Files and symlinks waiting for their `cp` (see `enqueue`). */
  private queue: CopyItem[] = []
  private queueBytes = 0
  private queueArgBytes = 0
  /** Exact directory mtimes (started at the first directory that needs one; none without GNU tar). */
  private dirTimes: Promise<DirTimes | undefined> | undefined

  constructor(private readonly deps: RestoreDeps, private readonly req: RestoreRequest) {
    this.pool = new TaskPool(Math.max(1, req.concurrency ?? 4))
    this.srcRoot = join(req.mount, req.view)
    if (!this.isRoot) this.s.owners = 'not restored (not root)'
  }

  private src(rel: string): string {
    return rel === '' ? this.srcRoot : join(this.srcRoot, rel)
  }

  private dst(rel: string): string {
    return rel === '' ? this.req.dest : join(this.req.dest, rel)
  }

  async run(): Promise<RestoreSummary> {
    await this.checkDest()
    const created = await fs.mkdir(this.req.dest, { recursive: true })
    const rootSt = await fs.lstat(this.srcRoot, { bigint: true }).catch((err: unknown) => { throw TierfsError.from(err, this.srcRoot) })
    if (!rootSt.isDirectory()) throw TierfsError.notDir(this.srcRoot)
    if (this.req.changes !== undefined) {
      this.partial = true
      await this.restoreChanges(this.req.changes)
    } else if (this.req.paths !== undefined && this.req.paths.length > 0) {
      this.partial = true
      for (const p of this.req.paths) await this.restorePath(relOf(p))
      await this.settle()
    } else {
      this.fresh = created !== undefined
      await this.dirEntries('')
      await this.settle()
    }
    await this.closeDirs('')
    await this.copyXattrs()
    // The destination root takes the source root's attributes only when this restore made it.
    if (created !== undefined && !this.partial) await this.attrs(this.req.dest, rootSt, '')
    const dirTimes = await this.dirTimes
    for (const e of (await dirTimes?.close()) ?? []) this.fail(e.rel, new TierfsError('IO', `setting the mtime: ${e.message}`))
    this.s.elapsedMs = Date.now() - this.started
    this.s.bytesPerSecond = Math.round(this.s.bytes / Math.max(0.001, this.s.elapsedMs / 1000))
    return this.s
  }

  /** DEST inside the mount would write into the store: refused. */
  private async checkDest(): Promise<void> {
    const mount = await fs.realpath(this.req.mount)
    let probe = this.req.dest
    for (;;) {
      const real = await fs.realpath(probe).catch(() => undefined)
      if (real !== undefined) {
        if (real === mount || real.startsWith(mount + '/')) throw TierfsError.invalid(`restore destination ${this.req.dest} is inside the mount ${mount}`)
        return
      }
      const up = dirname(probe)
      if (up === probe) return
      probe = up
    }
  }

  /** A path given on the command line: its parents are created, then it is copied whole. */
  private async restorePath(rel: string): Promise<void> {
    let st: BigIntStats
    try {
      st = await fs.lstat(this.src(rel), { bigint: true })
    } catch (err) {
      this.fail(rel, err)
      return
    }
    await this.parents(rel)
    const [ino] = await this.inodesOf([{ rel, st }])
    await this.entry(rel, st, ino ?? null, true, undefined)
  }

  private async restoreChanges(changes: AsyncIterable<DiffEntry>): Promise<void> {
    for await (const e of changes) {
      const rel = relOf(e.path)
      if (e.change === 'deleted') {
        this.s.deletedListed++
        this.req.onDeleted?.(e)
        continue
      }
      await this.closeDirs(rel)
      let st: BigIntStats
      try {
        st = await fs.lstat(this.src(rel), { bigint: true })
      } catch (err) {
        this.fail(rel, err)
        continue
      }
      await this.parents(rel)
      const [ino] = await this.inodesOf([{ rel, st }])
      await this.entry(rel, st, ino ?? null, false, undefined)
    }
    await this.settle()
  }

  /** Creates missing parents of `rel` in DEST with the source directories' modes and owners. */
  private async parents(rel: string): Promise<void> {
    const parts = rel.split('/').slice(0, -1)
    let cur = ''
    for (const name of parts) {
      cur = cur === '' ? name : `${cur}/${name}`
      const there = await fs.lstat(this.dst(cur)).catch(() => undefined)
      if (there?.isDirectory() === true) continue
      if (there !== undefined) await fs.unlink(this.dst(cur))
      const st = await fs.lstat(this.src(cur), { bigint: true })
      await fs.mkdir(this.dst(cur))
      await this.owner(this.dst(cur), st)
      await fs.chmod(this.dst(cur), Number(st.mode) & 0o7777)
    }
  }

  /**
   * Restores one entry. `deep`: a directory brings its whole subtree, its attributes set when all
   * of it is done (the copies of its entries run on meanwhile); otherwise (a diff entry) only the
   * directory itself, its entries come as entries of their own. `dir`: the directory of a subtree
   * that `rel` is in.
   */
  private async entry(rel: string, st: BigIntStats, ino: number | null, deep: boolean, dir: DirWork | undefined): Promise<void> {
    try {
      if (st.isDirectory()) {
        await this.mkdir(rel)
        this.s.dirs++
        if (deep) {
          const sub: DirWork = { rel, st, pending: 1, parent: dir }
          if (dir !== undefined) dir.pending++
          try {
            await this.dirEntries(rel, sub)
          } finally {
            await this.finished(sub)
          }
        } else {
          this.open.push({ rel, st })
        }
      } else if (st.isFile() || st.isSymbolicLink()) {
        if (this.partial && st.isFile()) this.xattrPaths.push(rel)
        await this.enqueue(rel, st, ino, dir)
      } else {
        await this.special(rel, st)
      }
    } catch (err) {
      this.fail(rel, err)
    }
    this.req.onProgress?.({ files: this.s.files, bytes: this.s.bytes, elapsedMs: Date.now() - this.started })
  }

  /** One of the things `d` waits for is done: when it was the last, sets its attributes. */
  private async finished(d: DirWork): Promise<void> {
    if (--d.pending > 0) return
    try {
      await this.attrs(this.dst(d.rel), d.st, d.rel)
    } catch (err) {
      this.fail(d.rel, err)
    }
    if (d.parent !== undefined) await this.finished(d.parent)
  }

  /** Copies the entries of a source directory (`work`: its DirWork; none for DEST's root), a batch of names at a time. */
  private async dirEntries(rel: string, work?: DirWork): Promise<void> {
    const dir = await fs.opendir(this.src(rel), { bufferSize: BATCH })
    let batch: string[] = []
    const flush = async (): Promise<void> => {
      const names = batch
      batch = []
      // All at once: libuv's threads run a few, the daemon answers them in parallel.
      const read = await Promise.all(names.map(async (name) => {
        const r = rel === '' ? name : `${rel}/${name}`
        try {
          return { rel: r, st: await fs.lstat(this.src(r), { bigint: true }) }
        } catch (err) {
          this.fail(r, err)
          return undefined
        }
      }))
      const stats = read.filter((e) => e !== undefined)
      const inos = await this.inodesOf(stats)
      for (let i = 0; i < stats.length; i++) {
        const e = stats[i] as { rel: string; st: BigIntStats }
        await this.entry(e.rel, e.st, inos[i] ?? null, true, work)
      }
    }
    for await (const d of dir) {
      batch.push(d.name)
      if (batch.length >= BATCH) await flush()
    }
    await flush()
  }

  /** Daemon inode numbers of the multiply-linked regular files among `entries` (null for others). */
  private async inodesOf(entries: Array<{ rel: string; st: BigIntStats }>): Promise<Array<number | null>> {
    const want = entries.map((e, i) => ({ i, e })).filter(({ e }) => e.st.isFile() && e.st.nlink > 1n)
    const out: Array<number | null> = entries.map(() => null)
    if (want.length === 0) return out
    const inos = await this.deps.inodes(want.map(({ e }) => `${this.req.view}/${e.rel}`))
    want.forEach(({ i }, k) => { out[i] = inos[k] ?? null })
    return out
  }

  /**
   * Queues a file or symlink for the next `cp`. A second name of a multiply-linked file waits in
   * the queue for its first name's copy and is then linked to it: a batch only ever waits for
   * itself or batches started before it.
   */
  private async enqueue(rel: string, st: BigIntStats, ino: number | null, dir: DirWork | undefined): Promise<void> {
    const first = ino === null ? undefined : this.linked.get(ino)
    const item: CopyItem = first === undefined ? { rel, st, dir } : { rel, st, dir, first }
    if (dir !== undefined) dir.pending++
    if (first === undefined && ino !== null) this.linked.set(ino, new Promise((ok) => { item.done = ok }))
    this.queue.push(item)
    if (first === undefined && st.isFile()) this.queueBytes += Number(st.size)
    this.queueArgBytes += Buffer.byteLength(rel) + 1
    if (this.queue.length >= CP_FILES || this.queueBytes >= CP_BYTES || this.queueArgBytes >= CP_ARG_BYTES) await this.flushQueue()
  }

  /** Starts a copy of the queued entries (waits for a free slot of the pool). */
  private async flushQueue(): Promise<void> {
    const items = this.queue
    if (items.length === 0) return
    this.queue = []
    this.queueBytes = 0
    this.queueArgBytes = 0
    await this.pool.submit(() => this.copyBatch(items))
  }

  /** Waits until everything queued and started is done. */
  private async settle(): Promise<void> {
    await this.flushQueue()
    await this.pool.drain()
  }

  /**
   * Copies a batch with one `cp` (modes, times to the nanosecond, owners when root), then links
   * the second names. When cp fails, each entry of the batch is copied again on its own, so every
   * failure is reported with its path.
   */
  private async copyBatch(items: CopyItem[]): Promise<void> {
    const copies: CopyItem[] = []
    for (const i of items) {
      if (i.first !== undefined) continue
      try {
        await this.replaceable(i.rel)
        copies.push(i)
      } catch (err) {
        this.fail(i.rel, err)
        i.done?.(undefined)
      }
    }
    const copied = copies.length > 0 && await runCp(this.srcRoot, this.req.dest, copies.map((i) => i.rel), this.isRoot).then(() => true, () => false)
    for (const i of copies) {
      try {
        if (!copied && !(await this.copiedByCp(i))) await this.copyOne(i.rel, i.st)
        else if (i.st.isFile()) this.counted(i.st.size)
        else this.s.symlinks++
        i.done?.(this.dst(i.rel))
      } catch (err) {
        i.done?.(undefined)
        this.fail(i.rel, err)
      }
    }
    for (const i of items) {
      if (i.first === undefined) continue
      try {
        const target = await i.first
        if (target === undefined) {
          await this.copyOne(i.rel, i.st)
          continue
        }
        await this.replaceable(i.rel)
        await fs.link(target, this.dst(i.rel))
        this.s.hardLinks++
      } catch (err) {
        this.fail(i.rel, err)
      }
    }
    for (const i of items) if (i.dir !== undefined) await this.finished(i.dir)
    this.req.onProgress?.({ files: this.s.files, bytes: this.s.bytes, elapsedMs: Date.now() - this.started })
  }

  /** After cp failed on a batch: whether it copied this entry (it sets the times after the contents). */
  private async copiedByCp(i: CopyItem): Promise<boolean> {
    const there = await fs.lstat(this.dst(i.rel), { bigint: true }).catch(() => undefined)
    return there !== undefined && there.mtimeNs === i.st.mtimeNs && there.size === i.st.size &&
      there.isSymbolicLink() === i.st.isSymbolicLink()
  }

  /** Copies one file or symlink with node's fs (when cp failed on it). */
  private async copyOne(rel: string, st: BigIntStats): Promise<void> {
    await this.replaceable(rel, true)
    if (st.isSymbolicLink()) {
      await fs.symlink(await fs.readlink(this.src(rel)), this.dst(rel))
      this.s.symlinks++
    } else {
      let n = 0
      const input = createReadStream(this.src(rel), { highWaterMark: 1 << 20 })
      input.on('data', (b) => { n += b.length })
      await pipeline(input, createWriteStream(this.dst(rel), { flags: 'wx', mode: 0o600 }))
      this.counted(n)
    }
    await this.attrs(this.dst(rel), st)
  }

  private counted(bytes: bigint | number): void {
    this.s.bytes += Number(bytes)
    this.s.files++
  }

  private async special(rel: string, st: BigIntStats): Promise<void> {
    const mode = (Number(st.mode) & 0o7777).toString(8)
    const rdev = Number(st.rdev)
    // glibc's encoding of dev_t.
    const major = ((rdev >>> 8) & 0xfff) | Math.floor(rdev / 2 ** 32) & ~0xfff
    const minor = (rdev & 0xff) | ((rdev >>> 12) & ~0xff)
    let args: string[]
    if (st.isFIFO()) args = ['mkfifo', '-m', mode, this.dst(rel)]
    else if (st.isCharacterDevice()) args = ['mknod', '-m', mode, this.dst(rel), 'c', String(major), String(minor)]
    else if (st.isBlockDevice()) args = ['mknod', '-m', mode, this.dst(rel), 'b', String(major), String(minor)]
    else throw new TierfsError('NOT_SUPPORTED', `${rel}: sockets are not restored (their server recreates them)`)
    await this.replaceable(rel)
    await run(args[0] as string, args.slice(1))
    await this.attrs(this.dst(rel), st)
    this.s.specials++
  }

  /**
   * Makes way for a non-directory at `rel`: an old non-directory is unlinked; a directory is an
   * error. `always`: even in a fresh DEST (after a failed cp, which may have left a part).
   */
  private async replaceable(rel: string, always = false): Promise<void> {
    if (this.fresh && !always) return
    const there = await fs.lstat(this.dst(rel)).catch(() => undefined)
    if (there === undefined) return
    if (there.isDirectory()) throw TierfsError.isDir(`${this.dst(rel)} (a directory would be replaced by a file)`)
    await fs.unlink(this.dst(rel))
  }

  private async mkdir(rel: string): Promise<void> {
    if (this.fresh) return fs.mkdir(this.dst(rel)).then(() => undefined)
    const there = await fs.lstat(this.dst(rel)).catch(() => undefined)
    if (there?.isDirectory() === true) return
    if (there !== undefined) await fs.unlink(this.dst(rel))
    await fs.mkdir(this.dst(rel))
  }

  /** Sets the attributes of directories of a diff restore that `next` is not inside. */
  private async closeDirs(next: string): Promise<void> {
    for (;;) {
      const top = this.open.at(-1)
      if (top === undefined || (next !== '' && next.startsWith(top.rel + '/'))) return
      await this.settle()
      this.open.pop()
      await this.attrs(this.dst(top.rel), top.st, top.rel)
    }
  }

  private async owner(path: string, st: BigIntStats): Promise<void> {
    if (!this.isRoot) return
    await fs.lchown(path, Number(st.uid), Number(st.gid))
  }

  /**
   * Owner, mode, then times (last: the others change ctime only). `rel`: of a directory, whose
   * exact mtime tar sets later.
   */
  private async attrs(path: string, st: BigIntStats, rel?: string): Promise<void> {
    await this.owner(path, st)
    const link = st.isSymbolicLink()
    if (!link) await fs.chmod(path, Number(st.mode) & 0o7777)
    const at = seconds(st.atimeNs)
    const mt = seconds(st.mtimeNs)
    if (link) await fs.lutimes(path, at, mt)
    else await fs.utimes(path, at, mt)
    // fs.utimes keeps microseconds: set mtime exactly.
    if ((await fs.lstat(path, { bigint: true })).mtimeNs !== st.mtimeNs) {
      if (rel !== undefined && st.isDirectory()) {
        this.dirTimes ??= DirTimes.supported().then((yes) => (yes ? new DirTimes(this.req.dest, this.isRoot) : undefined))
        const dirTimes = await this.dirTimes
        if (dirTimes !== undefined && await dirTimes.add(rel, st)) return
      }
      const ns = st.mtimeNs
      const text = `@${ns / 1_000_000_000n}.${(ns % 1_000_000_000n).toString().padStart(9, '0')}`
      await run('touch', ['-h', '-m', '-d', text, path])
      this.s.mtimeFallbacks++
    }
  }

  /** user.* xattrs: one getfattr dump piped into one setfattr restore (or batches of paths). */
  private async copyXattrs(): Promise<void> {
    if (this.req.xattrs === false) {
      this.s.xattrs = 'not copied (disabled)'
      return
    }
    const missing = await missingXattrTools(['getfattr', 'setfattr'])
    if (missing !== undefined) {
      this.s.xattrs = `not copied: ${missing}`
      return
    }
    let count = 0
    const dump = async (targets: string[]): Promise<void> => {
      count += await pipeXattrs(this.srcRoot, this.req.dest, targets)
    }
    if (!this.partial) await dump(['.'])
    else {
      for (let i = 0; i < this.xattrPaths.length; i += 256) await dump(this.xattrPaths.slice(i, i + 256))
    }
    this.s.xattrs = `user.* copied (${count} files had some)`
  }

  private fail(rel: string, err: unknown): void {
    this.s.errors++
    const e = err instanceof Error ? err : new Error(String(err))
    this.req.onError?.(rel === '' ? '/' : `/${rel}`, e)
  }
}

/** '/a/b' or 'a/b' -> 'a/b'; '/' -> ''. */
function relOf(path: string): string {
  return path.split('/').filter((c) => c !== '' && c !== '.').join('/')
}

function seconds(ns: bigint): number {
  return Number(ns / 1000n) / 1e6
}

/**
 * `cp` of `rels` (paths relative to `srcRoot`) to the same paths under `dest`, whose parent
 * directories exist: contents, modes, atime and mtime to the nanosecond, owners when `owners`;
 * symlinks as symlinks. No xattrs: only user.* ones are restored, by the xattr pass.
 */
function runCp(srcRoot: string, dest: string, rels: string[], owners: boolean): Promise<void> {
  const preserve = owners ? 'mode,ownership,timestamps' : 'mode,timestamps'
  return run('cp', ['-P', `--preserve=${preserve}`, '--parents', '-t', dest, '--', ...rels], srcRoot)
}

/** Runs `cmd` (in `cwd`, with messages in English); fails with IO and its stderr. */
function run(cmd: string, args: string[], cwd?: string): Promise<void> {
  return new Promise((ok, fail) => {
    execFile(cmd, args, { cwd, env: { ...process.env, LC_ALL: 'C' }, maxBuffer: 1 << 20 },
      (err, _out, stderr) => (err ? fail(new TierfsError('IO', `${cmd}: ${String(stderr).trim() || err.message}`)) : ok()))
  })
}

/** getfattr -d of `targets` (relative to `srcRoot`) restored with setfattr under `dest`; returns files with xattrs. */
function pipeXattrs(srcRoot: string, dest: string, targets: string[]): Promise<number> {
  return new Promise((ok, fail) => {
    const get = spawnGetfattr(srcRoot, targets, true)
    const set = spawn('setfattr', ['-h', '--restore=-'], { cwd: dest, stdio: ['pipe', 'ignore', 'pipe'] })
    // The dump is parsed on its way to setfattr only to count the files it names.
    const parser = new GetfattrParser()
    let files = 0
    let errText = ''
    let unparsed = ''
    const count = (blocks: () => unknown[]): void => {
      if (unparsed !== '') return
      try {
        files += blocks().length
      } catch (err) {
        unparsed = (err as Error).message
      }
    }
    get.stdout.on('data', (b: Buffer) => count(() => parser.push(b)))
    get.stdout.on('end', () => count(() => parser.end()))
    set.stdin.on('error', () => undefined)
    get.stdout.pipe(set.stdin)
    get.stderr.on('data', (b: Buffer) => { errText += b.toString() })
    set.stderr.on('data', (b: Buffer) => { errText += b.toString() })
    let pending = 2
    let failed = false
    const done = (who: string) => (code: number | null): void => {
      // getfattr exits 1 when some file has no xattr to dump: not an error.
      if (code !== 0 && !(who === 'getfattr' && code === 1 && errText === '')) failed = true
      if (--pending > 0) return
      if (failed || unparsed !== '') fail(new TierfsError('IO', `copying xattrs: ${`${errText}\n${unparsed}`.trim() || 'getfattr/setfattr failed'}`))
      else ok(files)
    }
    get.on('close', done('getfattr'))
    set.on('close', done('setfattr'))
    get.on('error', fail)
    set.on('error', fail)
  })
}
