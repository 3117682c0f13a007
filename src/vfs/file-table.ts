import { TierfsError } from '../errors.js'
import { isAllZero } from '../chunk/zero.js'
import type { Ino } from '../ids.js'
import type { Meta } from '../meta/meta.js'
import type { FileMap, InodeAttrs } from '../meta/types.js'
import { FileNode } from './file-node.js'
import { AccessPattern, readMapped, type ChunkSource } from './file-reader.js'
import type { Sealer } from './sealer.js'
import type { Staging, StagingFile } from './staging.js'

interface Handle {
  node: FileNode
  writable: boolean
  /** Sequential or random reads on this handle (read-ahead only for sequential ones). */
  reads: AccessPattern
}

/** A read-only handle on a file as it was at some version (restore points, history). */
export interface FrozenHandle {
  attrs: InodeAttrs
  map: FileMap
  /** The view's inode space (high 32 bits of st_ino). */
  space: number
}

export type FileTableDeps = {
  meta: Meta
  chunks: ChunkSource
  staging: Staging
  sealer: Sealer
  now: () => bigint
}

/**
 * Open files: handles, per-inode nodes, and the data path. Writes go to the node's staging
 * file (created on first write, holding a copy of the committed bytes when the file had any);
 * reads come from staging when present, else from the committed chunks.
 */
export class FileTable {
  private readonly nodes = new Map<Ino, FileNode>()
  private readonly handles = new Map<number, Handle>()
  private readonly frozen = new Map<number, FrozenHandle>()
  private nextFh = 1

  constructor(private readonly deps: FileTableDeps) {}

  /** The node of `ino` if it has in-memory state (open, staged or sealing). */
  peek(ino: Ino): FileNode | undefined {
    return this.nodes.get(ino)
  }

  allNodes(): IterableIterator<FileNode> {
    return this.nodes.values()
  }

  /** Bytes and files currently held in staging. */
  stagingBytes(): { bytes: number; files: number } {
    let bytes = 0
    let files = 0
    for (const n of this.nodes.values()) {
      if (n.staging === undefined) continue
      bytes += n.size
      files++
    }
    return { bytes, files }
  }

  get openHandles(): number {
    return this.handles.size + this.frozen.size
  }

  /** Opens a handle on `ino`; waits for a seal in progress so staging is never read half-closed. */
  async open(ino: Ino, writable: boolean): Promise<number> {
    const node = await this.acquire(ino)
    const fh = this.nextFh++
    this.handles.set(fh, { node, writable, reads: new AccessPattern() })
    return fh
  }

  /** Opens a read-only handle on committed contents at a past version. */
  openFrozen(attrs: InodeAttrs, map: FileMap, space: number): number {
    const fh = this.nextFh++
    this.frozen.set(fh, { attrs, map, space })
    return fh
  }

  /** The frozen handle `fh`, or undefined when `fh` is a live handle. */
  frozenHandle(fh: number): FrozenHandle | undefined {
    return this.frozen.get(fh)
  }

  handle(fh: number): Handle {
    const h = this.handles.get(fh)
    if (h === undefined) throw new TierfsError('BAD_HANDLE', `file handle ${fh} is not open`)
    return h
  }

  async release(fh: number, onOrphan: (ino: Ino) => Promise<void>): Promise<void> {
    if (this.frozen.delete(fh)) return
    const h = this.handles.get(fh)
    if (h === undefined) return
    this.handles.delete(fh)
    await this.releaseNode(h.node, onOrphan)
  }

  /** Takes a reference on the node of `ino` (for truncate by path and for open). */
  async acquire(ino: Ino): Promise<FileNode> {
    let node = this.nodes.get(ino)
    if (node === undefined) {
      node = new FileNode(ino)
      this.nodes.set(ino, node)
    }
    node.handles++
    this.deps.sealer.cancel(node)
    while (node.sealing !== undefined) await node.sealing
    return node
  }

  async releaseNode(node: FileNode, onOrphan: (ino: Ino) => Promise<void>): Promise<void> {
    node.handles--
    if (node.handles > 0) return
    if (node.orphan) {
      await this.discard(node)
      await onOrphan(node.ino)
      return
    }
    if (node.dirty) this.deps.sealer.schedule(node)
    else this.forgetIfIdle(node)
  }

  /** Drops the node's staging without sealing (the file is gone). */
  async discard(node: FileNode): Promise<void> {
    this.deps.sealer.cancel(node)
    const staging = node.staging
    node.staging = undefined
    node.stagingReady = undefined
    node.dirty = false
    if (staging !== undefined) {
      await staging.fh.close().catch(() => undefined)
      await this.deps.staging.remove(node.ino)
    }
    this.forgetIfIdle(node)
  }

  forgetIfIdle(node: FileNode): void {
    if (node.idle && !node.orphan && this.nodes.get(node.ino) === node) {
      this.nodes.delete(node.ino)
    }
  }

  /** Overlays the in-memory state of a staged file on its committed attributes. */
  async overlay(attrs: InodeAttrs): Promise<InodeAttrs> {
    const node = this.nodes.get(attrs.ino)
    if (node?.staging === undefined) return attrs
    const st = await node.staging.fh.stat().catch(() => undefined)
    return {
      ...attrs, size: node.size, mtimeNs: node.mtimeNs, ctimeNs: node.ctimeNs,
      blocks: st?.blocks ?? Math.ceil(node.size / 512),
    }
  }

  async read(fh: number, buf: Buffer, offset: number): Promise<number> {
    const frozen = this.frozen.get(fh)
    if (frozen !== undefined) return readMapped(frozen.map, frozen.attrs.size, this.deps.chunks, buf, offset)
    const { node, reads } = this.handle(fh)
    const staging = node.staging
    if (staging !== undefined) {
      const len = Math.max(0, Math.min(buf.length, node.size - offset))
      if (len === 0) return 0
      const { bytesRead } = await staging.fh.read(buf, 0, len, offset)
      return bytesRead
    }
    const attrs = await this.committedAttrs(node.ino)
    const map = node.map ?? (node.map = await this.committedMap(node.ino))
    return readMapped(map, attrs.size, this.deps.chunks, buf, offset, reads.next(offset, buf.length))
  }

  async write(fh: number, buf: Buffer, offset: number): Promise<number> {
    const h = this.handle(fh)
    if (!h.writable) throw new TierfsError('BAD_HANDLE', `file handle ${fh} is not open for writing`)
    const node = h.node
    const staging = await this.ensureStaging(node)
    let done = 0
    while (done < buf.length) {
      const { bytesWritten } = await staging.fh.write(buf, done, buf.length - done, offset + done)
      done += bytesWritten
    }
    const now = this.deps.now()
    node.size = Math.max(node.size, offset + buf.length)
    node.mtimeNs = now
    node.ctimeNs = now
    node.dirty = true
    return done
  }

  /** Sets the size of an acquired node's file through its staging copy. */
  async truncate(node: FileNode, size: number): Promise<void> {
    const staging = await this.ensureStaging(node, size === 0)
    await staging.fh.truncate(size)
    const now = this.deps.now()
    node.size = size
    node.mtimeNs = now
    node.ctimeNs = now
    node.dirty = true
  }

  /** Makes the staging copy durable (fsync); metadata durability is the caller's. */
  async syncData(node: FileNode, datasync: boolean): Promise<void> {
    const staging = node.staging
    if (staging === undefined) return
    if (datasync) await staging.fh.datasync()
    else await staging.fh.sync()
  }

  /** Sets times on a staged node (the committed record is updated by the caller). */
  async setTimes(node: FileNode, atimeNs: bigint, mtimeNs: bigint, ctimeNs: bigint): Promise<void> {
    node.mtimeNs = mtimeNs
    node.ctimeNs = ctimeNs
    const staging = node.staging
    if (staging !== undefined) {
      // The staging file's own mtime is what recovery trusts after a crash.
      await staging.fh.utimes(Number(atimeNs / 1000n) / 1e6, Number(mtimeNs / 1000n) / 1e6)
    }
  }

  /** Adopts a staging file left by a crash: the node is dirty and sealed soon. */
  adoptLeftover(ino: Ino, staging: StagingFile, size: number, mtimeNs: bigint, ctimeNs: bigint): FileNode {
    const node = new FileNode(ino)
    node.staging = staging
    node.stagingReady = Promise.resolve(staging)
    node.size = size
    node.mtimeNs = mtimeNs
    node.ctimeNs = ctimeNs
    node.dirty = true
    this.nodes.set(ino, node)
    this.deps.sealer.schedule(node, true)
    return node
  }

  private ensureStaging(node: FileNode, empty = false): Promise<StagingFile> {
    if (node.stagingReady === undefined) {
      node.stagingReady = this.createStaging(node, empty)
      node.stagingReady.catch(() => { node.stagingReady = undefined })
    }
    return node.stagingReady
  }

  private async createStaging(node: FileNode, empty: boolean): Promise<StagingFile> {
    const attrs = await this.committedAttrs(node.ino)
    const copy = !empty && attrs.size > 0
    let staging = copy ? await this.deps.staging.createPartial(node.ino) : await this.deps.staging.create(node.ino)
    try {
      if (copy) {
        const map = node.map ?? (await this.committedMap(node.ino))
        await this.materialize(map, attrs.size, staging)
        // Only a materialised copy needs its size (holes at the end) set.
        await staging.fh.truncate(attrs.size)
        staging = await this.deps.staging.publish(node.ino, staging)
      }
    } catch (err) {
      await staging.fh.close().catch(() => undefined)
      await this.deps.staging.remove(node.ino)
      throw err
    }
    node.size = empty ? 0 : attrs.size
    node.mtimeNs = attrs.mtimeNs
    node.ctimeNs = attrs.ctimeNs
    node.staging = staging
    node.map = undefined
    return staging
  }

  private async materialize(map: FileMap, size: number, staging: StagingFile): Promise<void> {
    const piece = Buffer.allocUnsafe(1 << 20)
    for (let off = 0; off < size; off += piece.length) {
      const n = await readMapped(map, size, this.deps.chunks, piece, off)
      // Holes stay holes: the final truncate extends the file over skipped zero runs.
      if (!isAllZero(piece.subarray(0, n))) await staging.fh.write(piece, 0, n, off)
    }
  }

  private async committedAttrs(ino: Ino): Promise<InodeAttrs> {
    const attrs = await this.deps.meta.getInode(ino)
    if (attrs === undefined) throw TierfsError.notFound(`inode ${ino}`)
    return attrs
  }

  private async committedMap(ino: Ino): Promise<FileMap> {
    return (await this.deps.meta.getFileMap(ino)) ?? { kind: 'inline', data: Buffer.alloc(0) }
  }
}
