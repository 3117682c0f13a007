import { TierfsError } from '../errors.js'
import type { PackId } from '../ids.js'

/**
 * Per-pack counters for prune's planning pass, in 29 bytes a pack (30M packs, a petabyte
 * of 32 MiB packs, fit in well under 1 GiB) instead of a Map entry per pack: ids are kept sorted
 * as four 32-bit words each and found by binary search; counters live in typed arrays.
 * Packs must be added in ascending id order (the order the pack index streams in).
 */
export class PackTable {
  private ids = new Uint32Array(4 * 1024)
  /** Dead records kept (a seal referenced them again) per pack. */
  private recs = new Uint32Array(1024)
  private live = new Float64Array(1024)
  private sealedAt = new Uint8Array(1024)
  private n = 0
  private readonly q = new Uint32Array(4)

  get size(): number {
    return this.n
  }

  /**
   * Appends a pack; ids must be strictly ascending. Returns its index. `sealed`: the pack was
   * sealed when planning began (only those are candidates: an open pack still gains chunks).
   * `liveBytes`: its recorded live bytes.
   */
  add(id: PackId, sealed: boolean, liveBytes: number): number {
    const w = this.words(id)
    if (this.n > 0 && compareAt(this.ids, this.n - 1, w) >= 0) throw TierfsError.internal(`pack table: ${id} is not in ascending order`)
    if (this.n === this.recs.length) this.grow()
    this.ids.set(w, this.n * 4)
    this.sealedAt[this.n] = sealed ? 1 : 0
    this.live[this.n] = liveBytes
    return this.n++
  }

  /** Index of the pack, or -1 when the table does not hold it. */
  indexOf(id: PackId): number {
    const w = this.words(id)
    let lo = 0
    let hi = this.n - 1
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1
      const c = compareAt(this.ids, mid, w)
      if (c === 0) return mid
      if (c < 0) lo = mid + 1
      else hi = mid - 1
    }
    return -1
  }

  /** A dead record that survives this prune points into pack `i`, with `liveLength` more live bytes. */
  keep(i: number, liveLength: number): void {
    this.recs[i] = this.recs[i]! + 1
    this.live[i] = this.live[i]! + liveLength
  }

  /** The planned collection frees `bytes` of pack `i`'s live chunks (dry run). */
  dropLive(i: number, bytes: number): void {
    this.live[i] = Math.max(0, this.live[i]! - bytes)
  }

  /** No record will point into pack `i` after this prune: no live bytes, no dead record kept. */
  empty(i: number): boolean {
    return this.recs[i] === 0 && this.live[i] === 0
  }

  /** Stored bytes of pack `i`'s referenced chunks (as recorded, plus kept, minus planned drops). */
  liveBytes(i: number): number {
    return this.live[i]!
  }

  /** The pack was sealed when planning began. */
  sealed(i: number): boolean {
    return this.sealedAt[i] === 1
  }

  /** Bytes held by the table (for the memory report). */
  get bytes(): number {
    return this.ids.byteLength + this.recs.byteLength + this.live.byteLength + this.sealedAt.byteLength
  }

  private words(id: PackId): Uint32Array {
    const q = this.q
    for (let k = 0; k < 4; k++) q[k] = Number.parseInt(id.slice(k * 8, k * 8 + 8), 16)
    return q
  }

  private grow(): void {
    const cap = this.recs.length * 2
    const ids = new Uint32Array(cap * 4)
    ids.set(this.ids)
    const recs = new Uint32Array(cap)
    recs.set(this.recs)
    const live = new Float64Array(cap)
    live.set(this.live)
    const sealedAt = new Uint8Array(cap)
    sealedAt.set(this.sealedAt)
    this.ids = ids
    this.recs = recs
    this.live = live
    this.sealedAt = sealedAt
  }
}

/** Compares entry `i` of `ids` with the words `w`: negative, 0 or positive. */
function compareAt(ids: Uint32Array, i: number, w: Uint32Array): number {
  const at = i * 4
  for (let k = 0; k < 4; k++) {
    const d = ids[at + k]! - w[k]!
    if (d !== 0) return d
  }
  return 0
}
