import { createReadStream } from 'node:fs'
import { TierfsError } from '../errors.js'
import type { ChunkStore } from '../chunk/chunk-store.js'
import { isAllZero } from '../chunk/zero.js'
import type { Meta } from '../meta/meta.js'
import type { FileMap } from '../meta/types.js'
import type { Logger } from '../log.js'
import type { FileNode } from './file-node.js'
import type { Mutex } from './mutex.js'
import type { Staging } from './staging.js'

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
 * Turns staging files into committed chunked files: chunk + dedup + append to packs, sync the
 * packs, commit filemap + attributes + refcounts in one batch, sync the metadata log, and only
 * then remove the staging file. A crash at any point leaves either the staging file (resealed at
 * start-up) or the committed version; never neither.
 *
 * Files are sealed one batch at a time (group commit); `schedule` is called on last close and
 * the seal starts after `debounceMs` unless the file is reopened.
 */
export class Sealer {
  private readonly queue = new Set<FileNode>()
  private running: Promise<void> | undefined
  private closed = false
  sealedFiles = 0
  sealedBytes = 0
  failures = 0

  constructor(private readonly deps: SealerDeps, private readonly config: SealerConfig) {}

  /** Seals `node` after the debounce (or `delayMs`), unless it is reopened first. */
  schedule(node: FileNode, immediate = false, delayMs = this.config.debounceMs): void {
    clearTimeout(node.sealTimer)
    node.sealTimer = undefined
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
  }

  /** Seals everything pending now and waits for it (unmount, shutdown). */
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
  }

  close(): void {
    this.closed = true
  }

  private enqueue(node: FileNode): void {
    if (this.closed || node.handles > 0 || !node.dirty) return
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
        if (n.handles > 0 || !n.dirty) continue
        batch.push(n)
        bytes += n.size
      }
      if (batch.length === 0) continue
      let release!: () => void
      const done = new Promise<void>((r) => { release = r })
      for (const n of batch) n.sealing = done
      try {
        await this.sealBatch(batch)
      } catch (err) {
        this.failures++
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
    const results: Array<{ node: FileNode; map: FileMap; size: number; blocks: number }> = []
    try {
      for (const node of nodes) {
        const staging = node.staging
        if (staging === undefined) continue
        const size = node.size
        if (size <= this.config.inlineMax) {
          const data = Buffer.alloc(size)
          const { bytesRead } = await staging.fh.read(data, 0, size, 0)
          if (bytesRead !== size) throw TierfsError.io(`staging ${staging.path}: short read`)
          results.push({ node, map: { kind: 'inline', data }, size, blocks: isAllZero(data) ? 0 : Math.ceil(size / 512) })
        } else {
          const stream = createReadStream('', { fd: staging.fh.fd, start: 0, end: size - 1, highWaterMark: 1 << 20, autoClose: false })
          const res = await ingest.ingest(stream as AsyncIterable<Buffer>)
          if (res.size !== size) throw TierfsError.io(`staging ${staging.path}: read ${res.size} of ${size} bytes`)
          results.push({ node, map: { kind: 'extents', extents: res.extents }, size, blocks: res.blocks })
        }
      }
      await ingest.sync()
    } finally {
      ingest.end()
    }
    await lock.run(async () => {
      const gone = meta.begin()
      for (const r of results) {
        const attrs = await meta.getInode(r.node.ino)
        if (attrs === undefined || attrs.nlink === 0) {
          // Deleted while it was being sealed: the ingest already counted references to its
          // chunks in `txn`. They stay matched by a filemap version, which `gone` tombstones
          // at once; collection then releases them like those of any deleted file.
          txn.putFileMap(r.node.ino, r.map)
          if (attrs === undefined) gone.deleteInode(r.node.ino)
          continue
        }
        txn.putInode({ ...attrs, size: r.size, blocks: r.blocks, mtimeNs: r.node.mtimeNs, ctimeNs: r.node.ctimeNs })
        txn.putFileMap(r.node.ino, r.map)
      }
      await txn.commit({ sync: true })
      if (gone.size > 0) await gone.commit({ sync: true })
    })
    for (const r of results) {
      const node = r.node
      const staging = node.staging
      node.staging = undefined
      node.stagingReady = undefined
      node.map = r.map
      node.dirty = false
      node.sealFailures = 0
      this.sealedFiles++
      this.sealedBytes += r.size
      if (staging !== undefined) {
        await staging.fh.close()
        await this.deps.staging.remove(node.ino)
      }
    }
  }
}
