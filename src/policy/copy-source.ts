import type { ChunkId, PackId } from '../ids.js'
import type { Encoded } from '../chunk/codec.js'
import { recordCopy, type VerifiedRecord } from '../chunk/pack-reader.js'
import type { ChunkPlace } from '../meta/types.js'

/**
 * A chunk to copy: its record when the move was planned. Its pack and offset are also the
 * compare-and-set origin of the move's commit.
 */
export type CopyItem = ChunkPlace

/** What a copy needs of the chunk store. */
export interface CopyChunks {
  read(id: ChunkId): Promise<Buffer>
  prefetch(id: ChunkId): void
  readStored(at: ChunkPlace): Promise<VerifiedRecord>
  isRemote(pack: PackId): Promise<boolean>
}

/** One chunk as read for a copy: its raw bytes, and its stored form when it may be copied as is. */
export interface CopyRead {
  raw: Buffer
  stored?: Encoded
}

/**
 * The chunks of a move, read in order, `depth` ahead of the one asked for. A chunk in a pack on a
 * local tier is read as stored at its planned place and verified against its id, so the copy
 * takes the record as it is (no new encoding, no new CRC pass, no trip through the read cache).
 * A chunk on a remote tier goes through the chunk store's cached reads, whose prefetches (asked
 * for together) coalesce neighbours into one ranged get; so does one whose planned place could
 * not be read (it moved, and its old pack is gone), which the cached read finds where it is now.
 *
 * Contract: `get(i)` for i in increasing order, each at most once; a failure is thrown by the
 * `get` of the chunk it belongs to.
 */
export class CopySource {
  private readonly ahead = new Map<number, Promise<CopyRead | undefined>>()
  private readonly remote = new Map<PackId, Promise<boolean>>()
  private started = 0

  constructor(private readonly items: readonly CopyItem[], private readonly chunks: CopyChunks, private readonly depth: number) {}

  async get(i: number): Promise<CopyRead> {
    const from = Math.max(this.started, i)
    const to = Math.min(i + this.depth, this.items.length - 1)
    if (from <= to) {
      const window = this.items.slice(from, to + 1)
      const remote = await Promise.all(window.map((item) => this.isRemote(item.pack)))
      // Started in one turn, so that the cached path's prefetches are looked at together.
      for (const [k, item] of window.entries()) this.ahead.set(from + k, remote[k] === true ? this.prefetch(item) : this.readStored(item))
      this.started = to + 1
    }
    const p = this.ahead.get(i)
    this.ahead.delete(i)
    return (await p) ?? { raw: await this.chunks.read((this.items[i] as CopyItem).id) }
  }

  private isRemote(pack: PackId): Promise<boolean> {
    let p = this.remote.get(pack)
    if (p === undefined) this.remote.set(pack, p = this.chunks.isRemote(pack))
    return p
  }

  private prefetch(item: CopyItem): Promise<undefined> {
    this.chunks.prefetch(item.id)
    return Promise.resolve(undefined)
  }

  /** The record at its planned place; undefined (the cached path) if it cannot be read there. */
  private readStored(item: CopyItem): Promise<CopyRead | undefined> {
    return this.chunks.readStored(item).then((rec) => ({ raw: rec.raw, stored: recordCopy(rec) }), () => undefined)
  }
}
