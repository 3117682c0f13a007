import { TierfsError } from '../errors.js'
import { ROOT_INO, type Ino, type TierId } from '../ids.js'
import type { ChunkStore } from '../chunk/chunk-store.js'
import type { Logger } from '../log.js'
import type { AsOf, Meta, Txn } from '../meta/meta.js'
import type { DirEntry, FileMap, InodeAttrs, NodeType } from '../meta/types.js'
import type { Tier } from '../tier/tier.js'
import { SnapshotViews, type Route } from '../snapshot/snapshot-views.js'
import { FileTable } from './file-table.js'
import { HIDDEN_PREFIX, noteRemove, noteRename, parseHiddenKey } from './hidden-names.js'
import { S_ISGID, typeBits, typeOf } from './mode.js'
import { Mutex } from './mutex.js'
import { components, splitParent } from './path.js'
import { Sealer, type SealerConfig } from './sealer.js'
import type { Staging } from './staging.js'
import { statfsOf } from './statfs.js'
import { XattrOps } from './xattr-ops.js'
import {
  O_ACCMODE, O_EXCL, O_RDONLY, O_TRUNC, RENAME_EXCHANGE, RENAME_NOREPLACE,
  type Caller, type DirListing, type Stat, type StatFs, type TimeSpec, type Vfs,
} from './vfs.js'

export type TierfsVfsDeps = {
  meta: Meta
  chunks: ChunkStore
  staging: Staging
  /** The block tier (write tier): statfs reports its space. */
  blockTier: Tier
  log: Logger
  /** Wall clock in nanoseconds (injectable for tests). */
  now?: () => bigint
  /** How far back /.history reaches (default 7 days). */
  historyWindowMs?: number
  /** Answers user.tierfs.tier / user.tierfs.state (default: the inode's tier, resident). */
  tierState?: (a: InodeAttrs, asOf?: AsOf) => Promise<{ tier: string; state: string }>
}

const BLKSIZE = 1 << 20
/** Inode reads in flight per readdir. */
const READDIR_PARALLEL = 32
const ORPHAN_PREFIX = 'orphan/'
/** The contents of directories opened in a view, and of files without a filemap: none. */
const EMPTY_MAP: FileMap = Object.freeze({ kind: 'inline', data: Buffer.alloc(0) })

/**
 * The tierfs filesystem over versioned metadata and the chunk store. Namespace mutations are
 * read-modify-write transactions under one lock (each commits atomically); file data goes
 * through the FileTable (staging) and the Sealer.
 */
export class TierfsVfs implements Vfs {
  readonly lock = new Mutex()
  readonly files: FileTable
  readonly sealer: Sealer
  private readonly xattrs: XattrOps
  readonly views: SnapshotViews
  private readonly now: () => bigint
  private readonly tier: TierId

  constructor(private readonly deps: TierfsVfsDeps, sealerConfig: SealerConfig) {
    this.now = deps.now ?? (() => BigInt(Date.now()) * 1_000_000n)
    this.tier = deps.chunks.writeTier
    this.sealer = new Sealer(
      { meta: deps.meta, chunks: deps.chunks, staging: deps.staging, lock: this.lock, log: deps.log, onSealed: (n) => this.files.forgetIfIdle(n) },
      sealerConfig,
    )
    this.files = new FileTable({
      meta: deps.meta, chunks: deps.chunks, staging: deps.staging, sealer: this.sealer, now: this.now, inlineMax: sealerConfig.inlineMax,
    })
    this.views = new SnapshotViews({
      meta: deps.meta, now: () => Number(this.now() / 1_000_000n), historyWindowMs: deps.historyWindowMs ?? 7 * 24 * 3_600_000,
    })
    this.xattrs = new XattrOps(deps.meta, this.views.reader, this.lock, (ino, asOf) => this.mustInode(ino, asOf), this.now, deps.tierState)
  }

  /** Recovers after a crash: removes orphans, adopts staging files left behind (resealed soon). */
  async ready(): Promise<void> {
    const { meta, staging, log } = this.deps
    await staging.ready()
    for (const key of await meta.sysNames(HIDDEN_PREFIX)) await this.removeHidden(key)
    for (const ino of await this.orphans()) await this.dropInode(ino)
    for (const ino of await staging.leftovers()) {
      const attrs = await meta.getInode(ino)
      if (attrs === undefined || attrs.nlink === 0 || attrs.type !== 'file') {
        await staging.remove(ino)
        continue
      }
      const left = await staging.adopt(ino)
      this.files.adoptLeftover(ino, left.file, left.size, left.mtimeNs, left.ctimeNs > attrs.ctimeNs ? left.ctimeNs : attrs.ctimeNs)
      log.info('resealing staging left by an unclean stop', { ino, bytes: left.size })
    }
  }

  /** Seals everything that is staged and waits; the filesystem stays usable. */
  async sealAll(): Promise<void> {
    await this.sealer.drain(this.files.allNodes())
  }

  async close(): Promise<void> {
    await this.sealAll()
    this.sealer.close()
  }

  // ---- resolution ----

  /** Resolves a path of the live namespace; paths inside the read-only views are READ_ONLY. */
  async resolve(path: string): Promise<Ino> {
    let ino = ROOT_INO
    const parts = components(path)
    if (SnapshotViews.isView(parts)) throw TierfsError.readOnly(path)
    for (const name of parts) {
      const next = await this.deps.meta.lookup(ino, name)
      if (next === undefined) {
        const attrs = await this.deps.meta.getInode(ino)
        if (attrs !== undefined && attrs.type !== 'dir') throw TierfsError.notDir(path)
        throw TierfsError.notFound(path)
      }
      ino = next
    }
    return ino
  }

  /** Attributes of `ino`, now or (through the views' cache) as of a view's version. */
  private async mustInode(ino: Ino, asOf?: AsOf): Promise<InodeAttrs> {
    const attrs = asOf === undefined ? await this.deps.meta.getInode(ino) : await this.views.reader.getInode(ino, asOf)
    if (attrs === undefined) throw TierfsError.notFound(`inode ${ino}`)
    return attrs
  }

  private async resolveAttrs(path: string): Promise<InodeAttrs> {
    return this.mustInode(await this.resolve(path))
  }

  private async parentDir(path: string): Promise<{ dir: InodeAttrs; name: string }> {
    const { parent, name } = splitParent(path)
    if (parent === '/' && SnapshotViews.isView([name])) throw TierfsError.exists(path)
    const dir = await this.resolveAttrs(parent)
    if (dir.type !== 'dir') throw TierfsError.notDir(parent)
    return { dir, name }
  }

  // ---- attributes ----

  /** `inoHigh`: the inode space of a view (0, the live namespace, when absent). */
  toStat(a: InodeAttrs, inoHigh = 0): Stat {
    return {
      ino: a.ino, inoHigh, mode: typeBits(a.type) | a.mode, nlink: a.nlink, uid: a.uid, gid: a.gid, size: a.size,
      blocks: a.blocks, blksize: BLKSIZE, rdev: a.rdev, atimeNs: a.atimeNs, mtimeNs: a.mtimeNs, ctimeNs: a.ctimeNs,
    }
  }

  async statOf(ino: Ino): Promise<Stat> {
    return this.toStat(await this.files.overlay(await this.mustInode(ino)))
  }

  /** The view route of `path`, or undefined for the live namespace. */
  private async view(path: string): Promise<Route | undefined> {
    return SnapshotViews.isViewPath(path) ? this.views.route(components(path)) : undefined
  }

  async getattr(path: string): Promise<Stat> {
    const r = await this.view(path)
    if (r === undefined) return this.statOf(await this.resolve(path))
    return r.kind === 'virtual' ? r.stat : this.toStat(r.attrs, r.space)
  }

  async fgetattr(fh: number): Promise<Stat> {
    const frozen = this.files.frozenHandle(fh)
    if (frozen !== undefined) return this.toStat(frozen.attrs, frozen.space)
    return this.statOf(this.files.handle(fh).node.ino)
  }

  async readdir(path: string): Promise<DirListing[]> {
    const r = await this.view(path)
    if (r?.kind === 'virtual') {
      if (r.list === undefined) throw TierfsError.notDir(path)
      return r.list()
    }
    const dir = r === undefined ? await this.resolveAttrs(path) : r.attrs
    if (dir.type !== 'dir') throw TierfsError.notDir(path)
    const out: DirListing[] = []
    const entry = r === undefined
      ? async (e: DirEntry): Promise<DirListing | undefined> => {
        const attrs = await this.deps.meta.getInode(e.ino)
        return attrs === undefined ? undefined : { name: e.name, stat: this.toStat(await this.files.overlay(attrs)) }
      }
      : async (e: DirEntry): Promise<DirListing | undefined> => {
        // Read through the views' cache: the lookup and getattr of each name that follow hit it.
        const attrs = await this.views.reader.getInode(e.ino, r.asOf)
        return attrs === undefined ? undefined : { name: e.name, stat: this.toStat(attrs, r.space) }
      }
    // Inodes are read READDIR_PARALLEL at a time: one by one, a cold 1,000-entry directory
    // waited ~100 ms on sequential metadata reads.
    let batch: DirEntry[] = []
    const flush = async (): Promise<void> => {
      for (const l of await Promise.all(batch.map(entry))) if (l !== undefined) out.push(l)
      batch = []
    }
    for await (const e of r === undefined ? this.deps.meta.readdir(dir.ino) : this.views.reader.readdir(dir.ino, r.asOf)) {
      batch.push(e)
      if (batch.length >= READDIR_PARALLEL) await flush()
    }
    await flush()
    return out
  }

  async readlink(path: string): Promise<string> {
    const r = await this.view(path)
    if (r?.kind === 'virtual') {
      if (r.target === undefined) throw TierfsError.invalid(`${path} is not a symlink`)
      return r.target
    }
    const a = r === undefined ? await this.resolveAttrs(path) : r.attrs
    if (a.type !== 'symlink' || a.target === undefined) throw TierfsError.invalid(`${path} is not a symlink`)
    return a.target
  }

  async statfs(_path: string): Promise<StatFs> {
    return statfsOf(await this.deps.blockTier.space(), this.deps.meta)
  }

  private async update(path: string, change: (a: InodeAttrs, now: bigint) => InodeAttrs): Promise<InodeAttrs> {
    const ino = await this.resolve(path)
    return this.lock.run(async () => {
      const a = await this.mustInode(ino)
      const next = change(a, this.now())
      await this.deps.meta.begin().putInode(next).commit()
      return next
    })
  }

  async chmod(path: string, mode: number): Promise<void> {
    await this.update(path, (a, now) => ({ ...a, mode: mode & 0o7777, ctimeNs: now }))
    await this.touchNodeCtime(path)
  }

  async chown(path: string, uid: number, gid: number): Promise<void> {
    await this.update(path, (a, now) => {
      const next = { ...a, ctimeNs: now }
      if (uid !== -1 && uid !== 0xffffffff) next.uid = uid
      if (gid !== -1 && gid !== 0xffffffff) next.gid = gid
      return next
    })
    await this.touchNodeCtime(path)
  }

  private async touchNodeCtime(path: string): Promise<void> {
    const node = this.files.peek(await this.resolve(path))
    if (node?.staging !== undefined) node.ctimeNs = this.now()
  }

  async utimens(path: string, atime: TimeSpec, mtime: TimeSpec): Promise<void> {
    const ino = await this.resolve(path)
    const node = this.files.peek(ino)
    const a = await this.update(path, (a, now) => {
      const pick = (t: TimeSpec, old: bigint): bigint => (t === 'now' ? now : t === 'omit' ? old : t)
      const mOld = node?.staging !== undefined ? node.mtimeNs : a.mtimeNs
      return { ...a, atimeNs: pick(atime, a.atimeNs), mtimeNs: pick(mtime, mOld), ctimeNs: now }
    })
    if (node?.staging !== undefined) await this.files.setTimes(node, a.atimeNs, a.mtimeNs, a.ctimeNs)
  }

  async truncate(path: string, size: number): Promise<void> {
    if (size < 0) throw TierfsError.invalid(`truncate ${path} to ${size}`)
    const ino = await this.resolve(path)
    const a = await this.mustInode(ino)
    if (a.type === 'dir') throw TierfsError.isDir(path)
    if (a.type !== 'file') throw TierfsError.invalid(`truncate ${path}`)
    const node = await this.files.acquire(ino)
    try {
      await this.files.truncate(node, size)
    } finally {
      await this.files.releaseNode(node, (i) => this.dropInode(i))
    }
  }

  // ---- namespace ----

  private newInode(type: NodeType, mode: number, caller: Caller, dir: InodeAttrs, now: bigint): InodeAttrs {
    const inheritGid = (dir.mode & S_ISGID) !== 0
    let perm = mode & 0o7777
    if (type === 'dir' && inheritGid) perm |= S_ISGID
    return {
      ino: this.deps.meta.allocIno(), type, mode: perm, uid: caller.uid, gid: inheritGid ? dir.gid : caller.gid,
      size: 0, blocks: 0, nlink: type === 'dir' ? 2 : 1, rdev: 0,
      atimeNs: now, mtimeNs: now, ctimeNs: now, btimeNs: now, tier: this.tier,
    }
  }

  /** Creates a node under the lock; `fill` adjusts the new inode and adds to the Txn. */
  private async createNode(
    path: string, type: NodeType, mode: number, caller: Caller,
    fill?: (a: InodeAttrs, txn: Txn) => void,
  ): Promise<InodeAttrs> {
    const { dir, name } = await this.parentDir(path)
    return this.lock.run(async () => {
      const { meta } = this.deps
      if ((await meta.lookup(dir.ino, name)) !== undefined) throw TierfsError.exists(path)
      const parent = await this.mustInode(dir.ino)
      const now = this.now()
      const node = this.newInode(type, mode, caller, parent, now)
      const txn = meta.begin()
      fill?.(node, txn)
      txn.putInode(node).putDentry(parent.ino, name, node.ino)
      txn.putInode({ ...parent, nlink: parent.nlink + (type === 'dir' ? 1 : 0), mtimeNs: now, ctimeNs: now })
      await txn.commit()
      return node
    })
  }

  async mknod(path: string, mode: number, rdev: number, caller: Caller): Promise<void> {
    const type = typeOf(mode)
    if (type === 'dir' || type === 'symlink') throw TierfsError.invalid(`mknod ${path}`)
    await this.createNode(path, type, mode, caller, (a) => { a.rdev = rdev })
  }

  async mkdir(path: string, mode: number, caller: Caller): Promise<void> {
    await this.createNode(path, 'dir', mode, caller)
  }

  async symlink(target: string, path: string, caller: Caller): Promise<void> {
    await this.createNode(path, 'symlink', 0o777, caller, (a) => {
      a.target = target
      a.size = Buffer.byteLength(target)
    })
  }

  async link(existing: string, path: string): Promise<void> {
    const ino = await this.resolve(existing)
    const { dir, name } = await this.parentDir(path)
    await this.lock.run(async () => {
      const { meta } = this.deps
      const a = await this.mustInode(ino)
      if (a.type === 'dir') throw TierfsError.perm(`link ${existing}: is a directory`)
      if ((await meta.lookup(dir.ino, name)) !== undefined) throw TierfsError.exists(path)
      const parent = await this.mustInode(dir.ino)
      const now = this.now()
      await meta.begin()
        .putInode({ ...a, nlink: a.nlink + 1, ctimeNs: now })
        .putDentry(parent.ino, name, ino)
        .putInode({ ...parent, mtimeNs: now, ctimeNs: now })
        .commit()
    })
  }

  async unlink(path: string): Promise<void> {
    await this.remove(path, false)
  }

  async rmdir(path: string): Promise<void> {
    await this.remove(path, true)
  }

  private async remove(path: string, isDir: boolean): Promise<void> {
    const { dir, name } = await this.parentDir(path)
    const orphaned = await this.lock.run(async () => {
      const { meta } = this.deps
      const ino = await meta.lookup(dir.ino, name)
      if (ino === undefined) throw TierfsError.notFound(path)
      const a = await this.mustInode(ino)
      if (isDir && a.type !== 'dir') throw TierfsError.notDir(path)
      if (!isDir && a.type === 'dir') throw TierfsError.isDir(path)
      if (isDir && (await meta.hasChildren(ino))) throw TierfsError.notEmpty(path)
      const parent = await this.mustInode(dir.ino)
      const now = this.now()
      const txn = meta.begin().deleteDentry(parent.ino, name)
      noteRemove(txn, parent.ino, name)
      txn.putInode({ ...parent, nlink: parent.nlink - (isDir ? 1 : 0), mtimeNs: now, ctimeNs: now })
      const orphan = this.unlinkInode(txn, a, now)
      await txn.commit()
      return orphan
    })
    if (orphaned !== undefined) await this.afterUnlink(orphaned)
  }

  /**
   * Drops one link of `a` in `txn`. When it was the last: deletes the inode, or, if the file is
   * still open, keeps it as an orphan until the last release. Returns the ino whose in-memory
   * state must be settled after commit.
   */
  private unlinkInode(txn: Txn, a: InodeAttrs, now: bigint): Ino | undefined {
    const nlink = a.type === 'dir' ? 0 : a.nlink - 1
    if (nlink > 0) {
      txn.putInode({ ...a, nlink, ctimeNs: now })
      return undefined
    }
    const node = this.files.peek(a.ino)
    if (node !== undefined && node.handles > 0) {
      node.orphan = true
      txn.putInode({ ...a, nlink: 0, ctimeNs: now }).putSys(ORPHAN_PREFIX + a.ino, Buffer.alloc(0))
      return undefined
    }
    txn.deleteInode(a.ino)
    return a.ino
  }

  private async afterUnlink(ino: Ino): Promise<void> {
    const node = this.files.peek(ino)
    if (node !== undefined) await this.files.discard(node)
  }

  /** Deletes an orphan (last handle closed, or found at start-up). */
  private async dropInode(ino: Ino): Promise<void> {
    await this.lock.run(() => this.deps.meta.begin().deleteInode(ino).deleteSys(ORPHAN_PREFIX + ino).commit())
    await this.deps.staging.remove(ino)
  }

  /** Removes a name libfuse hid an open file under before a crash (see hidden-names.ts). */
  private async removeHidden(key: string): Promise<void> {
    const { dir, name } = parseHiddenKey(key)
    await this.lock.run(async () => {
      const { meta } = this.deps
      const txn = meta.begin().deleteSys(key)
      const ino = await meta.lookup(dir, name)
      const a = ino === undefined ? undefined : await meta.getInode(ino)
      if (a !== undefined && a.type !== 'dir') {
        txn.deleteDentry(dir, name)
        this.unlinkInode(txn, a, this.now())
      }
      await txn.commit()
    })
    this.deps.log.info('removed a name libfuse hid an open file under before an unclean stop', { dir, name })
  }

  private async orphans(): Promise<Ino[]> {
    const names = await this.deps.meta.sysNames(ORPHAN_PREFIX)
    return names.map((k) => Number(k.slice(ORPHAN_PREFIX.length)) as Ino)
  }

  async rename(from: string, to: string, flags: number): Promise<void> {
    if (from === to) return
    if (to.startsWith(from + '/')) throw TierfsError.invalid(`rename ${from} into its own subtree`)
    const src = await this.parentDir(from)
    const dst = await this.parentDir(to)
    const orphaned = await this.lock.run(async () => {
      const { meta } = this.deps
      const ino = await meta.lookup(src.dir.ino, src.name)
      if (ino === undefined) throw TierfsError.notFound(from)
      const a = await this.mustInode(ino)
      const targetIno = await meta.lookup(dst.dir.ino, dst.name)
      if (targetIno === ino) return undefined
      if ((flags & RENAME_NOREPLACE) !== 0 && targetIno !== undefined) throw TierfsError.exists(to)
      const now = this.now()
      const txn = meta.begin()
      const target = targetIno === undefined ? undefined : await this.mustInode(targetIno)
      if ((flags & RENAME_EXCHANGE) !== 0) {
        if (target === undefined) throw TierfsError.notFound(to)
        txn.putDentry(src.dir.ino, src.name, target.ino).putDentry(dst.dir.ino, dst.name, ino)
        txn.putInode({ ...a, ctimeNs: now }).putInode({ ...target, ctimeNs: now })
        await this.touchParents(txn, src.dir.ino, dst.dir.ino, now, a.type === 'dir' ? 1 : 0, target.type === 'dir' ? 1 : 0)
        await txn.commit()
        return undefined
      }
      let orphan: Ino | undefined
      let dstDirDelta = a.type === 'dir' ? 1 : 0
      if (target !== undefined) {
        if (a.type === 'dir' && target.type !== 'dir') throw TierfsError.notDir(to)
        if (a.type !== 'dir' && target.type === 'dir') throw TierfsError.isDir(to)
        if (target.type === 'dir') {
          if (await meta.hasChildren(target.ino)) throw TierfsError.notEmpty(to)
          dstDirDelta -= 1
        }
        orphan = this.unlinkInode(txn, target, now)
      }
      txn.deleteDentry(src.dir.ino, src.name).putDentry(dst.dir.ino, dst.name, ino)
      noteRename(txn, src.dir.ino, src.name, dst.dir.ino, dst.name)
      txn.putInode({ ...a, ctimeNs: now })
      await this.touchParents(txn, src.dir.ino, dst.dir.ino, now, a.type === 'dir' ? 1 : 0, dstDirDelta, true)
      await txn.commit()
      return orphan
    })
    if (orphaned !== undefined) await this.afterUnlink(orphaned)
  }

  /**
   * Updates both parents' times and link counts: the source parent loses `srcDirs` subdirectory
   * links and the destination gains `dstDirs` (for an exchange, each gains what the other lost).
   */
  private async touchParents(txn: Txn, srcIno: Ino, dstIno: Ino, now: bigint, srcDirs: number, dstDirs: number, move = false): Promise<void> {
    if (srcIno === dstIno) {
      const p = await this.mustInode(srcIno)
      const delta = move ? dstDirs - srcDirs : 0
      txn.putInode({ ...p, nlink: p.nlink + delta, mtimeNs: now, ctimeNs: now })
      return
    }
    const s = await this.mustInode(srcIno)
    const d = await this.mustInode(dstIno)
    const sDelta = move ? -srcDirs : dstDirs - srcDirs
    const dDelta = move ? dstDirs : srcDirs - dstDirs
    txn.putInode({ ...s, nlink: s.nlink + sDelta, mtimeNs: now, ctimeNs: now })
    txn.putInode({ ...d, nlink: d.nlink + dDelta, mtimeNs: now, ctimeNs: now })
  }

  // ---- files ----

  async open(path: string, flags: number, _caller: Caller): Promise<number> {
    const r = await this.view(path)
    if (r !== undefined) return this.openView(path, r, flags)
    const a = await this.resolveAttrs(path)
    if (a.type === 'dir') {
      if ((flags & O_ACCMODE) !== O_RDONLY) throw TierfsError.isDir(path)
    } else if (a.type !== 'file') {
      throw TierfsError.invalid(`open ${path}: not a regular file`)
    }
    const writable = (flags & O_ACCMODE) !== O_RDONLY
    const fh = await this.files.open(a.ino, writable)
    if ((flags & O_TRUNC) !== 0 && writable) await this.ftruncate(fh, 0)
    return fh
  }

  async create(path: string, mode: number, flags: number, caller: Caller): Promise<number> {
    try {
      const a = await this.createNode(path, 'file', mode, caller, (node, txn) => { txn.putFileMap(node.ino, { kind: 'inline', data: Buffer.alloc(0) }) })
      return await this.files.open(a.ino, true)
    } catch (err) {
      if (err instanceof TierfsError && err.code === 'EXISTS' && (flags & O_EXCL) === 0) return this.open(path, flags | 0o1, caller)
      throw err
    }
  }

  private async openView(path: string, r: Route, flags: number): Promise<number> {
    if ((flags & O_ACCMODE) !== O_RDONLY || (flags & O_TRUNC) !== 0) throw TierfsError.readOnly(path)
    if (r.kind === 'virtual') throw TierfsError.isDir(path)
    const a = r.attrs
    if (a.type === 'dir') return this.files.openFrozen(a, EMPTY_MAP, r.space)
    if (a.type !== 'file') throw TierfsError.invalid(`open ${path}: not a regular file`)
    const map = (await this.deps.meta.getFileMap(a.ino, r.asOf)) ?? EMPTY_MAP
    return this.files.openFrozen(a, map, r.space)
  }

  read(fh: number, buf: Buffer, offset: number): Promise<number> {
    return this.files.read(fh, buf, offset)
  }

  write(fh: number, buf: Buffer, offset: number): Promise<number> {
    return this.files.write(fh, buf, offset)
  }

  async ftruncate(fh: number, size: number): Promise<void> {
    if (size < 0) throw TierfsError.invalid(`ftruncate to ${size}`)
    await this.files.truncate(this.files.handle(fh).node, size)
  }

  async flush(fh: number): Promise<void> {
    // Closing a small file commits it; a larger one is safe in its staging file already.
    await this.files.flush(fh)
  }

  async fsync(fh: number, datasync: boolean): Promise<void> {
    await this.files.syncData(this.files.handle(fh).node, datasync)
    // Every earlier metadata commit (the create, renames) becomes durable with this sync.
    await this.deps.meta.begin().commit({ sync: true })
  }

  async fsyncdir(path: string): Promise<void> {
    await this.resolve(path)
    await this.deps.meta.begin().commit({ sync: true })
  }

  async release(fh: number): Promise<void> {
    await this.files.release(fh, (ino) => this.dropInode(ino))
  }

  // ---- xattrs ----

  async setxattr(path: string, name: string, value: Buffer, flags: number): Promise<void> {
    await this.xattrs.set(await this.resolve(path), name, value, flags)
  }

  async getxattr(path: string, name: string): Promise<Buffer> {
    const r = await this.view(path)
    if (r === undefined) return this.xattrs.get(await this.resolve(path), name)
    if (r.kind === 'virtual') throw new TierfsError('NO_XATTR', `xattr ${name}: no such attribute`)
    return this.xattrs.get(r.ino, name, r.asOf)
  }

  async listxattr(path: string): Promise<readonly string[]> {
    const r = await this.view(path)
    if (r === undefined) return this.xattrs.list(await this.resolve(path))
    return r.kind === 'virtual' ? [] : this.xattrs.list(r.ino, r.asOf)
  }

  async removexattr(path: string, name: string): Promise<void> {
    await this.xattrs.remove(await this.resolve(path), name)
  }
}
