// Glacier's SHA-256 tree hash, written independently of src/tier/tree-hash.ts (level by level,
// over a list of leaf hashes) so the server cross-checks the tier instead of echoing it.
import { createHash } from 'node:crypto'

export const MiB = 1024 * 1024

export const sha256 = (...parts) => {
  const h = createHash('sha256')
  for (const p of parts) h.update(p)
  return h.digest()
}

/** Root of the tree over `leaves` (SHA-256 of each 1 MiB leaf, in order). */
export function rootOf(leaves) {
  if (leaves.length === 0) return sha256(Buffer.alloc(0))
  let level = leaves
  while (level.length > 1) {
    const next = []
    for (let i = 0; i < level.length; i += 2) next.push(i + 1 < level.length ? sha256(level[i], level[i + 1]) : level[i])
    level = next
  }
  return level[0]
}

/** Collects leaf hashes and a plain SHA-256 over a byte stream fed in arbitrary pieces. */
export class LeafHasher {
  leaves = []
  size = 0
  #plain = createHash('sha256')
  #pending = []
  #pendingBytes = 0

  update(chunk) {
    this.#plain.update(chunk)
    this.size += chunk.length
    this.#pending.push(chunk)
    this.#pendingBytes += chunk.length
    if (this.#pendingBytes >= MiB) {
      let all = Buffer.concat(this.#pending)
      while (all.length >= MiB) {
        this.leaves.push(sha256(all.subarray(0, MiB)))
        all = all.subarray(MiB)
      }
      this.#pending = all.length > 0 ? [Buffer.from(all)] : []
      this.#pendingBytes = all.length
    }
  }

  /** Ends the stream; returns { leaves, size, sha256 (hex), treeHash (hex) }. */
  finish() {
    if (this.#pendingBytes > 0) this.leaves.push(sha256(Buffer.concat(this.#pending)))
    this.#pending = []
    this.#pendingBytes = 0
    return { leaves: this.leaves, size: this.size, sha256: this.#plain.digest('hex'), treeHash: rootOf(this.leaves).toString('hex') }
  }
}
