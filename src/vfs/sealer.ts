import { TierfsError } from '../errors.js'
import type { ChunkStore } from '../chunk/chunk-store.js'
import { dataBlocks } from '../chunk/zero.js'
import type { Meta, Txn } from '../meta/meta.js'
import type { FileMap } from '../meta/types.js'
import type { Logger } from '../log.js'
import { TaskPool } from '../task-pool.js'
import type { FileNode } from './file-node.js'
import { MemoryStaged } from './memory-staged.js'
import type { Mutex } from './mutex.js'
import { DiskStaged, type StagedFile } from './staged-file.js'
import type { Staging } from './staging.js'

/** Staging files closed and removed at once after a commit. */
const CLEANUP_PARALLEL = 8
/** Longest a new staging file waits for the seal backlog to shrink before going ahead anyway. */
const ADMIT_MAX_WAIT_MS = 30_000

interface Sealed { node: FileNode; map: FileMap; size: number; blocks: number }

export interface SealerConfig {
  /** Files up to this size are stored inline in metadata. */
  inlineMax: number
  /** Quiet time after the last close before a file is sealed. */
  debounceMs: number
  /** Most files sealed under one metadata commit (group commit). */
  batchFiles: number
  /** Most staged bytes sealed under one metadata commit. */
  batchBytes: number
}

export type SealerDeps = {
  meta: Meta
  chunks: ChunkStore
  staging: Staging
  /** The namespace lock: attribute read-modify-write happens under it. */
  lock: Mutex
  log: Logger
  /** Called after a node was sealed (or found gone), so its owner can drop idle state. */
  onSealed: (node: FileNode) => void
}

/**
 * Turns staged files into committed chunked files: chunk + dedup + append to packs, sync the
 * packs, commit filemap + attributes + refcounts in one batch, sync the metadata log, and only
 * then remove the staging file. A crash at any point leaves either the staging file (resealed at
 * start-up) or the committed version; never neither.
 *
 * Files are sealed one batch at a time (group commit); `schedule` is called on last close and
 * the seal starts after `debounceMs` unless the file is reopened. Small files staged in memory
 * are committed inline at every flush (`commitMemory`) and need no seal unless written again
 * after their last flush.
 *
 * Backpressure: the backlog (files closed and not sealed yet) is bounded; `admit` holds a new
 * staging file back while it is full, so a writer faster than the sealer slows down instead of
 * piling up staging files without limit.
 */
export class Sealer {
  private readonly queue = new Set<FileNode>()
  /** Files scheduled, queued or being sealed. */
  private readonly backlog = new Set<FileNode>()
  private progress: Array<() => void> = []
  private running: Promise<void> | undefined
  private closed = false
  sealedFiles = 0
  sealedBytes = 0
  failures = 0
  /** Why the last failed seal failed (drain reports it). */
  private lastError: unknown

  constructor(private readonly deps: SealerDeps, private readonly config: SealerConfig) {}

  /** Most files in the backlog before `admit` holds new staging files back. */
  get maxBacklog(): number {
    return 4 * this.config.batchFiles
  }

  /** Waits (bounded) until the seal backlog has room for one more staged file. */
  async admit(): Promise<void> {
    const deadline = Date.now() + ADMIT_MAX_WAIT_MS
    while (this.backlog.size >= this.maxBacklog && !this.closed && Date.now() < deadline) {
      await new Promise<void>((resolve) => {
        this.progress.push(resolve)
        setTimeout(resolve, 1000)
      })
    }
  }

  /**
   * Commits a memory-staged file's bytes inline, unsynced like every namespace commit (a daemon
   * crash keeps it; fsync makes it durable). The node stays dirty if it changed meanwhile.
   */
  async commitMemory(node: FileNode): Promise<void> {
    const staged = node.staging
    if (!(staged instanceof MemoryStaged) || !node.dirty) return
    const generation = node.generation
    const data = staged.bytes(node.size)
    const sealed: Sealed = { node, map: { kind: 'inline', data }, size: data.length, blocks: dataBlocks(data) }
    await this.deps.lock.run(async () => {
      const txn = this.deps.meta.begin()
      const gone = await this.stage(txn, [sealed])
      await txn.commit()
      if (gone.size > 0) await gone.commit()
    })
    if (node.generation === generation && node.staging === staged) node.dirty = false
  }

  /** Seals `node` after the debounce (or `delayMs`), unless it is reopened first. */
  schedule(node: FileNode, immediate = false, delayMs = this.config.debounceMs): void {
    clearTimeout(node.sealTimer)
    node.sealTimer = undefined
    this.backlog.add(node)
    if (immediate || delayMs <= 0) {
      this.enqueue(node)
      return
    }
    node.sealTimer = setTimeout(() => {
      node.sealTimer = undefined
      this.enqueue(node)
    }, delayMs)
    node.sealTimer.unref()
  }

  /** Cancels a pending (not yet started) seal because the file was reopened. */
  cancel(node: FileNode): void {
    clearTimeout(node.sealTimer)
    node.sealTimer = undefined
    this.queue.delete(node)
    if (node.sealing === undefined) this.settle(node)
  }

  /**
   * Seals everything pending now and waits for it (unmount, shutdown, before a restore point or
   * a checkpoint), retrying failed seals a few rounds at once; throws, with the last failure's
   * code, if a closed file is still unsealed then.
   */
  async drain(nodes: Iterable<FileNode>): Promise<void> {
    const list = [...nodes]
    // A seal can fail for a passing reason (prune removed a chunk it deduplicated against):
    // retry at once, a few rounds, rather than leaving the file to the backoff timer.
    for (let round = 0; round < 3; round++) {
      let pending = 0
      for (const n of list) {
        if (n.dirty && n.handles === 0 && n.sealing === undefined) {
          this.schedule(n, true)
          pending++
        }
      }
      if (pending === 0 && this.queue.size === 0 && this.running === undefined) return
      while (this.running !== undefined || this.queue.size > 0) {
        if (this.running === undefined) this.kick()
        await this.running
      }
    }
    // Callers go on to pin or checkpoint what is committed: files left staged must stop them.
    const left = list.filter((n) => n.dirty && n.handles === 0).length
    if (left > 0) {
      const why = this.lastError
      throw new TierfsError(why instanceof TierfsError ? why.code : 'IO',
        `${left} closed file(s) could not be sealed (they stay staged and are retried): ${why instanceof Error ? why.message : String(why)}`,
        { cause: why })
    }
  }

  close(): void {
    this.closed = true
    for (const wake of this.progress.splice(0)) wake()
  }

  /** `node` left the backlog (sealed, reopened or gone). */
  private settle(node: FileNode): void {
    if (!this.backlog.delete(node)) return
    if (this.backlog.size < this.maxBacklog) for (const wake of this.progress.splice(0)) wake()
  }

  private enqueue(node: FileNode): void {
    if (this.closed || node.handles > 0 || !node.dirty) {
      this.settle(node)
      return
    }
    this.queue.add(node)
    this.kick()
  }

  private kick(): void {
    if (this.running !== undefined || this.queue.size === 0) return
    this.running = this.loop().finally(() => { this.running = undefined; if (this.queue.size > 0 && !this.closed) this.kick() })
  }

  private async loop(): Promise<void> {
    while (this.queue.size > 0) {
      const batch: FileNode[] = []
      let bytes = 0
      for (const n of this.queue) {
        if (batch.length >= this.config.batchFiles || (batch.length > 0 && bytes + n.size > this.config.batchBytes)) break
        this.queue.delete(n)
        if (n.handles > 0 || !n.dirty) {
          this.settle(n)
          continue
        }
        batch.push(n)
        bytes += n.size
      }
      if (batch.length === 0) continue
      let release!: () => void
      const done = new Promise<void>((r) => { release = r })
      for (const n of batch) n.sealing = done
      try {
        await this.sealBatch(batch)
        for (const n of batch) this.settle(n)
      } catch (err) {
        this.failures++
        this.lastError = err
        this.deps.log.error('seal failed; staging kept and retried later', { inos: batch.map((n) => n.ino), err })
        // Back off per file (a full disk or an unreachable tier should not spin), up to a minute.
        for (const n of batch) {
          n.sealFailures++
          this.schedule(n, false, Math.min(60_000, Math.max(500, this.config.debounceMs) * 2 ** (n.sealFailures - 1)))
        }
      } finally {
        for (const n of batch) n.sealing = undefined
        release()
        for (const n of batch) this.deps.onSealed(n)
      }
    }
  }

  private async sealBatch(nodes: FileNode[]): Promise<void> {
    const { meta, chunks, lock } = this.deps
    const txn = meta.begin()
    const ingest = chunks.batch(txn)
    const results: Sealed[] = []
    try {
      for (const node of nodes) {
        const staged = node.staging
        if (staged === undefined) continue
        const size = node.size
        if (size <= this.config.inlineMax) {
          const data = await this.inlineBytes(staged, size)
          results.push({ node, map: { kind: 'inline', data }, size, blocks: dataBlocks(data) })
        } else {
          if (!(staged instanceof DiskStaged)) throw TierfsError.internal(`inode ${node.ino}: ${size} bytes staged in memory`)
          const res = await ingest.ingest(staged.stream(size))
          if (res.size !== size) throw TierfsError.io(`staging ${staged.path}: read ${res.size} of ${size} bytes`)
          results.push({ node, map: { kind: 'extents', extents: res.extents }, size, blocks: res.blocks })
        }
      }
      await ingest.sync()
    } finally {
      ingest.end()
    }
    await lock.run(async () => {
      const gone = await this.stage(txn, results)
      await txn.commit({ sync: true })
      ingest.committed()
      if (gone.size > 0) await gone.commit({ sync: true })
    })
    const cleanup = new TaskPool(CLEANUP_PARALLEL)
    for (const r of results) {
      const node = r.node
      const staged = node.staging
      node.staging = undefined
      node.stagingReady = undefined
      node.map = r.map
      node.dirty = false
      node.sealFailures = 0
      this.sealedFiles++
      this.sealedBytes += r.size
      if (staged instanceof DiskStaged) {
        await cleanup.submit(async () => {
          await staged.park()
          await this.deps.staging.remove(node.ino)
        })
      }
    }
    await cleanup.drain()
  }

  /**
   * Adds the sealed files' attributes and filemaps to `txn` (under the namespace lock). A file
   * deleted while it was being sealed keeps its filemap (its chunk references were counted in
   * `txn` already) and the returned Txn tombstones it, so collection releases them like those
   * of any deleted file.
   */
  private async stage(txn: Txn, results: Sealed[]): Promise<Txn> {
    const { meta } = this.deps
    const gone = meta.begin()
    for (const r of results) {
      const attrs = await meta.getInode(r.node.ino)
      txn.putFileMap(r.node.ino, r.map)
      if (attrs === undefined || attrs.nlink === 0) {
        if (attrs === undefined) gone.deleteInode(r.node.ino)
        continue
      }
      // Its data is now on the write tier (chunks held colder were stored again there).
      txn.putInode({ ...attrs, size: r.size, blocks: r.blocks, mtimeNs: r.node.mtimeNs, ctimeNs: r.node.ctimeNs, tier: this.deps.chunks.writeTier })
    }
    return gone
  }

  private async inlineBytes(staged: StagedFile, size: number): Promise<Buffer> {
    if (staged instanceof MemoryStaged) return staged.bytes(size)
    const data = Buffer.alloc(size)
    const n = await staged.read(data, size, 0)
    if (n !== size) throw TierfsError.io(`staging of ${size} bytes: short read (${n})`)
    return data
  }
}
