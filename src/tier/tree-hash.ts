import { createHash } from 'node:crypto'
import { createReadStream } from 'node:fs'

/** Glacier's tree-hash leaf size. */
export const MiB = 1024 * 1024

const sha256 = (...parts: Buffer[]): Buffer => {
  const h = createHash('sha256')
  for (const p of parts) h.update(p)
  return h.digest()
}

/**
 * Streaming SHA-256 tree hash as Glacier defines it: SHA-256 of each 1 MiB leaf (the last may be
 * shorter), then adjacent hashes concatenated and hashed pairwise, level by level, an odd last
 * hash carried up unchanged, until one remains. Memory stays at one leaf plus one hash per level.
 *
 * The pending hashes form a binary counter: `levels[i]` holds the root of 2^i complete leaves.
 * Complete power-of-two blocks on the left are exactly the subtrees of Glacier's level-by-level
 * construction, and the remainder forms its right spine, so folding the counter from the lowest
 * level upward at the end gives the same root.
 */
export class TreeHash {
  private readonly levels: Array<Buffer | undefined> = []
  private leaf = createHash('sha256')
  private leafBytes = 0
  private total = 0

  update(data: Buffer | Uint8Array): this {
    let buf = Buffer.isBuffer(data) ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength)
    while (buf.length > 0) {
      const take = Math.min(MiB - this.leafBytes, buf.length)
      this.leaf.update(buf.subarray(0, take))
      this.leafBytes += take
      this.total += take
      buf = buf.subarray(take)
      if (this.leafBytes === MiB) this.closeLeaf()
    }
    return this
  }

  /** Bytes hashed so far. */
  get size(): number {
    return this.total
  }

  /** The root hash (32 bytes). The hash of no data is SHA-256 of the empty string. */
  digest(): Buffer {
    if (this.leafBytes > 0 || this.total === 0) this.closeLeaf()
    let acc: Buffer | undefined
    for (const node of this.levels) {
      if (node === undefined) continue
      acc = acc === undefined ? node : sha256(node, acc)
    }
    return acc as Buffer
  }

  private closeLeaf(): void {
    let node: Buffer = this.leaf.digest()
    this.leaf = createHash('sha256')
    this.leafBytes = 0
    for (let i = 0; ; i++) {
      const pending = this.levels[i]
      if (pending === undefined) {
        this.levels[i] = node
        return
      }
      node = sha256(pending, node)
      this.levels[i] = undefined
    }
  }
}

/** Tree hash of a buffer. */
export function treeHash(data: Buffer): Buffer {
  return new TreeHash().update(data).digest()
}

/**
 * Combines the tree hashes of consecutive pieces into the tree hash of their concatenation, by
 * Glacier's pairwise rule. Valid when every piece but the last is the same power-of-two number
 * of MiB (multipart parts): each piece's hash is then a node of the whole archive's tree.
 */
export function combineTreeHashes(hashes: Buffer[]): Buffer {
  if (hashes.length === 0) return sha256()
  let level = hashes
  while (level.length > 1) {
    const next: Buffer[] = []
    for (let i = 0; i < level.length; i += 2) {
      const a = level[i] as Buffer
      const b = level[i + 1]
      next.push(b === undefined ? a : sha256(a, b))
    }
    level = next
  }
  return level[0] as Buffer
}

/** Tree hash of bytes [start, end] (inclusive) of a file, streamed; `size` is the bytes read. */
export async function treeHashFileRange(path: string, start: number, end: number): Promise<{ treeHash: Buffer; size: number }> {
  const tree = new TreeHash()
  if (end >= start) {
    for await (const chunk of createReadStream(path, { start, end, highWaterMark: MiB })) tree.update(chunk as Buffer)
  }
  return { treeHash: tree.digest(), size: tree.size }
}
