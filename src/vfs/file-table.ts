import { TierfsError } from '../errors.js'
import { isAllZero } from '../chunk/zero.js'
import type { Ino } from '../ids.js'
import type { Meta } from '../meta/meta.js'
import type { Extent, FileMap, InodeAttrs } from '../meta/types.js'
import { FileNode } from './file-node.js'
import { AccessPattern, readMapped, type ChunkSource } from './file-reader.js'
import { MemoryStaged } from './memory-staged.js'
import type { Sealer } from './sealer.js'
import type { DiskStaged, StagedFile } from './staged-file.js'
import type { Staging } from './staging.js'

/** Most small files staged in memory at once (x inlineMax bytes each: 64 MiB at the default). */
const MAX_MEMORY_STAGED = 8192

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
  /** Files up to this size are staged in memory and committed inline. */
  inlineMax: number
}

/**
 * Open files: handles, per-inode nodes, and the data path. Writes go to the node's staged copy
 * (made on first write, holding the committed bytes when the file had any): in memory while the
 * file fits `inlineMax` (committed inline at every flush), else a staging file on the block tier
 * (sealed after the last close). Reads come from the staged copy when present, else from the
 * committed chunks.
 */
export class FileTable {
  private readonly nodes = new Map<Ino, FileNode>()
  private readonly handles = new Map<number, Handle>()
  private readonly frozen = new Map<number, FrozenHandle>()
  /** Nodes staged in memory when last looked at (pruned lazily by `memoryRoom`). */
  private readonly inMemory = new Set<FileNode>()
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
    this.prefetchHead(map)
    return fh
  }

  /**
   * Starts loading the first chunk of a file just opened in a view (a restore, `cp -a` out of a
   * restore point, reads it next), so the first read (for a small file, the only one) finds it
   * loaded or under way instead of starting with a metadata read and a pack read. One chunk: a
   * reader that seeks elsewhere loses little.
   */
  private prefetchHead(map: FileMap): void {
    if (map.kind === 'extents' && map.extents.length > 0) this.deps.chunks.prefetch((map.extents[0] as Extent).id)
  }

  /**
   * The committed map of a node without staging, loaded once (concurrent callers share the load)
   * and kept on the node unless a write or a seal changed the node meanwhile.
   */
  private mapOf(node: FileNode): Promise<FileMap> {
    if (node.map !== undefined) return Promise.resolve(node.map)
    if (node.mapLoad !== undefined) return node.mapLoad
    const generation = node.generation
    const load = this.committedMap(node.ino).then((map) => {
      if (node.map === undefined && node.staging === undefined && node.generation === generation) node.map = map
      return map
    }).finally(() => { if (node.mapLoad === load) node.mapLoad = undefined })
    node.mapLoad = load
    return load
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
    const staged = node.staging
    if (staged?.where === 'memory') {
      // Changes after the last flush (a truncate by path, writes through a mapping) are
      // committed now; once committed nothing is left to seal.
      // A failure leaves it dirty: the sealer retries it with backoff (and logs why).
      await this.deps.sealer.commitMemory(node).catch(() => undefined)
      if (node.handles > 0) return
      if (!node.dirty && node.staging === staged) {
        node.staging = undefined
        node.stagingReady = undefined
      }
    } else {
      // A file waiting for its seal holds no descriptor.
      await staged?.park()
      if (node.handles > 0) return
    }
    if (node.dirty) this.deps.sealer.schedule(node)
    else this.forgetIfIdle(node)
  }

  /** Commits the bytes of a small file staged in memory (on close); others wait for their seal. */
  async flush(fh: number): Promise<void> {
    const h = this.handles.get(fh)
    if (h !== undefined) await this.deps.sealer.commitMemory(h.node)
  }

  /** Drops the node's staging without sealing (the file is gone). */
  async discard(node: FileNode): Promise<void> {
    this.deps.sealer.cancel(node)
    const staging = node.staging
    node.staging = undefined
    node.stagingReady = undefined
    node.dirty = false
    if (staging !== undefined) await staging.park()
    if (staging?.where === 'disk') await this.deps.staging.remove(node.ino)
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
    const size = node.size
    return { ...attrs, size, mtimeNs: node.mtimeNs, ctimeNs: node.ctimeNs, blocks: await node.staging.blocks(size) }
  }

  async read(fh: number, buf: Buffer, offset: number): Promise<number> {
    const frozen = this.frozen.get(fh)
    if (frozen !== undefined) return readMapped(frozen.map, frozen.attrs.size, this.deps.chunks, buf, offset)
    const { node, reads } = this.handle(fh)
    const staging = node.staging
    if (staging !== undefined) {
      const len = Math.max(0, Math.min(buf.length, node.size - offset))
      return len === 0 ? 0 : staging.read(buf, len, offset)
    }
    const attrs = await this.committedAttrs(node.ino)
    const map = node.map ?? (await this.mapOf(node))
    return readMapped(map, attrs.size, this.deps.chunks, buf, offset, reads.next(offset, buf.length))
  }

  async write(fh: number, buf: Buffer, offset: number): Promise<number> {
    const h = this.handle(fh)
    if (!h.writable) throw new TierfsError('BAD_HANDLE', `file handle ${fh} is not open for writing`)
    const node = h.node
    const end = offset + buf.length
    const staged = await this.stagedFor(node, end, false)
    // Bumped before the bytes land: a flush that snapshots before them sees the change.
    node.generation++
    await staged.write(buf, offset)
    this.changed(node, Math.max(node.size, end))
    return buf.length
  }

  /** Sets the size of an acquired node's file through its staged copy. */
  async truncate(node: FileNode, size: number): Promise<void> {
    const staged = await this.stagedFor(node, size, size === 0)
    node.generation++
    await staged.truncate(size)
    this.changed(node, size)
  }

  /** Makes the staged copy durable (fsync); metadata durability is the caller's. */
  async syncData(node: FileNode, datasync: boolean): Promise<void> {
    const staging = node.staging
    if (staging === undefined) return
    await this.deps.sealer.commitMemory(node)
    await staging.sync(datasync)
  }

  /** Sets times on a staged node (the committed record is updated by the caller). */
  async setTimes(node: FileNode, atimeNs: bigint, mtimeNs: bigint, ctimeNs: bigint): Promise<void> {
    node.mtimeNs = mtimeNs
    node.ctimeNs = ctimeNs
    await node.staging?.setTimes(atimeNs, mtimeNs)
  }

  /** Adopts a staging file left by a crash: the node is dirty and sealed soon. */
  adoptLeftover(ino: Ino, staging: DiskStaged, size: number, mtimeNs: bigint, ctimeNs: bigint): FileNode {
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

  /**
   * Whether one more small file may be staged in memory: at most MAX_MEMORY_STAGED at once (each
   * holds up to inlineMax bytes), so a program holding very many small files open and dirty gets
   * staging files beyond that instead of unbounded memory.
   */
  private memoryRoom(): boolean {
    if (this.inMemory.size < MAX_MEMORY_STAGED) return true
    for (const n of this.inMemory) if (!(n.staging instanceof MemoryStaged) || this.nodes.get(n.ino) !== n) this.inMemory.delete(n)
    return this.inMemory.size < MAX_MEMORY_STAGED
  }

  private changed(node: FileNode, size: number): void {
    const now = this.deps.now()
    node.size = size
    node.mtimeNs = now
    node.ctimeNs = now
    node.dirty = true
  }

  /** The node's staged copy, able to hold `end` bytes (moved from memory to disk if need be). */
  private async stagedFor(node: FileNode, end: number, empty: boolean): Promise<StagedFile> {
    if (node.stagingReady === undefined) {
      node.stagingReady = this.createStaging(node, empty, end)
      node.stagingReady.catch(() => { node.stagingReady = undefined })
    }
    const staged = await node.stagingReady
    if (!(staged instanceof MemoryStaged) || end <= staged.capacity) return staged
    return staged.spill((bytes) => {
      const disk = this.committedAttrs(node.ino).then((committed) =>
        // A committed file with bytes must never be replaced by a part of the copy: publish it whole.
        this.toDisk(node, bytes.length, bytes.length > 0 && committed.size > 0, (file) => (bytes.length > 0 ? file.write(bytes, 0) : Promise.resolve())))
      node.stagingReady = disk
      disk.catch(() => { if (node.stagingReady === disk) node.stagingReady = Promise.resolve(staged) })
      return disk.then((file) => { if (node.staging === staged) node.staging = file; return file })
    })
  }

  private async createStaging(node: FileNode, empty: boolean, end: number): Promise<StagedFile> {
    const attrs = await this.committedAttrs(node.ino)
    const size = empty ? 0 : attrs.size
    const map = size === 0 ? undefined : await this.mapOf(node)
    let staged: StagedFile
    if (Math.max(size, end) <= this.deps.inlineMax && this.memoryRoom()) {
      const data = Buffer.alloc(size)
      if (map !== undefined) await readMapped(map, size, this.deps.chunks, data, 0)
      staged = new MemoryStaged(this.deps.inlineMax, data)
      this.inMemory.add(node)
    } else {
      staged = await this.toDisk(node, size, size > 0, (file) => (map === undefined ? Promise.resolve() : this.materialize(map, size, file)))
    }
    node.size = size
    node.mtimeNs = attrs.mtimeNs
    node.ctimeNs = attrs.ctimeNs
    node.staging = staged
    node.map = undefined
    return staged
  }

  /**
   * A staging file holding `size` bytes that `fill` writes. `atomic` (the copy holds bytes the
   * committed file has): the copy is built under a temporary name and published once complete,
   * so a crash never leaves a partial copy that start-up would reseal as the file's contents.
   */
  private async toDisk(node: FileNode, size: number, atomic: boolean, fill: (file: DiskStaged) => Promise<void>): Promise<DiskStaged> {
    await this.deps.sealer.admit()
    const { staging } = this.deps
    let file = atomic ? await staging.createPartial(node.ino) : await staging.create(node.ino)
    try {
      await fill(file)
      // Holes at the end: the copy skipped zero runs.
      if (size > 0) await file.truncate(size)
      if (atomic) file = await staging.publish(node.ino, file)
    } catch (err) {
      await file.park()
      await staging.remove(node.ino)
      throw err
    }
    return file
  }

  private async materialize(map: FileMap, size: number, staging: DiskStaged): Promise<void> {
    const piece = Buffer.allocUnsafe(1 << 20)
    for (let off = 0; off < size; off += piece.length) {
      const n = await readMapped(map, size, this.deps.chunks, piece, off)
      // Holes stay holes: the final truncate extends the file over skipped zero runs.
      if (!isAllZero(piece.subarray(0, n))) await staging.write(piece.subarray(0, n), off)
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
