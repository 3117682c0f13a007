import { TierfsError } from '../errors.js'
import { dataBlocks } from '../chunk/zero.js'
import type { StagedFile } from './staged-file.js'

/**
 * The bytes of a small file being written, in memory: no staging file, no descriptor, no seal
 * (its owner commits the bytes inline in metadata when the file is flushed). It holds at most
 * `capacity` bytes: before a write or truncate past that, the owner calls `spill` to move the
 * bytes to disk (going past it here is a bug: INTERNAL).
 *
 * After `spill` starts, every call is forwarded to the new file, so a write that raced with the
 * spill lands in the new home rather than in a snapshot already taken.
 */
export class MemoryStaged implements StagedFile {
  readonly where = 'memory'
  private buf: Buffer
  private length: number
  private moved: Promise<StagedFile> | undefined

  constructor(readonly capacity: number, initial: Buffer = Buffer.alloc(0)) {
    this.buf = Buffer.alloc(Math.min(capacity, Math.max(initial.length, 512)))
    initial.copy(this.buf)
    this.length = initial.length
  }

  /** A copy of the first `size` bytes (zero-filled past the staged length). */
  bytes(size: number): Buffer {
    const out = Buffer.alloc(size)
    this.buf.copy(out, 0, 0, Math.min(size, this.length))
    return out
  }

  async read(buf: Buffer, len: number, pos: number): Promise<number> {
    if (this.moved !== undefined) return (await this.moved).read(buf, len, pos)
    if (pos >= this.length) return 0
    return this.buf.copy(buf, 0, pos, Math.min(this.length, pos + len))
  }

  async write(buf: Buffer, pos: number): Promise<void> {
    if (this.moved !== undefined) return (await this.moved).write(buf, pos)
    const end = pos + buf.length
    if (end > this.capacity) throw new TierfsError('INTERNAL', `a ${end}-byte file does not fit in memory staging`)
    this.reserve(end)
    buf.copy(this.buf, pos)
    this.length = Math.max(this.length, end)
  }

  async truncate(size: number): Promise<void> {
    if (this.moved !== undefined) return (await this.moved).truncate(size)
    if (size > this.capacity) throw new TierfsError('INTERNAL', `a ${size}-byte file does not fit in memory staging`)
    this.reserve(size)
    if (size < this.length) this.buf.fill(0, size, this.length)
    this.length = size
  }

  async sync(datasync: boolean): Promise<void> {
    if (this.moved !== undefined) return (await this.moved).sync(datasync)
  }

  async setTimes(atimeNs: bigint, mtimeNs: bigint): Promise<void> {
    if (this.moved !== undefined) return (await this.moved).setTimes(atimeNs, mtimeNs)
  }

  async blocks(size: number): Promise<number> {
    if (this.moved !== undefined) return (await this.moved).blocks(size)
    // Past the staged length the file reads as zeros: no blocks there.
    return dataBlocks(this.buf.subarray(0, Math.min(size, this.length)))
  }

  async park(): Promise<void> {}

  /** Moves the bytes to the file `create` makes and returns it; calls made meanwhile wait and go there. */
  spill(create: (bytes: Buffer) => Promise<StagedFile>): Promise<StagedFile> {
    if (this.moved === undefined) {
      this.moved = create(this.bytes(this.length))
      // A failed spill leaves this file in charge (the caller sees the error).
      this.moved.catch(() => { this.moved = undefined })
    }
    return this.moved
  }

  private reserve(end: number): void {
    if (end <= this.buf.length) return
    const next = Buffer.alloc(Math.min(this.capacity, Math.max(end, this.buf.length * 2)))
    this.buf.copy(next, 0, 0, this.length)
    this.buf = next
  }
}
