import { constants, createReadStream } from 'node:fs'
import { open, stat, utimes, type FileHandle } from 'node:fs/promises'
import { TierfsError } from '../errors.js'

/**
 * The bytes of a file being written, before they are sealed into chunks: either a staging file
 * on the block tier (`DiskStaged`) or, for a small file, a buffer (`MemoryStaged`).
 *
 * Contract:
 * - `read` returns the bytes read (short only at the end of the staged bytes); `write` writes
 *   all of `buf`. Neither keeps `buf`.
 * - `park` gives back operating-system resources (a disk file's descriptor) while nobody has the
 *   file open; any later call takes them again. Idempotent. The owner calls it only when no
 *   other call on this file is in flight.
 * - Durability: a disk file's writes survive a daemon crash once they return (the page cache
 *   holds them); `sync` makes them survive power loss. A memory file survives nothing: its owner
 *   commits its bytes to metadata before acknowledging a close or an fsync.
 */
export interface StagedFile {
  readonly where: 'memory' | 'disk'
  read(buf: Buffer, len: number, pos: number): Promise<number>
  write(buf: Buffer, pos: number): Promise<void>
  truncate(size: number): Promise<void>
  sync(datasync: boolean): Promise<void>
  /** Sets the staged copy's times (a disk file's mtime is what recovery trusts after a crash). */
  setTimes(atimeNs: bigint, mtimeNs: bigint): Promise<void>
  /** 512-byte blocks that hold data (holes excluded), for st_blocks. */
  blocks(size: number): Promise<number>
  park(): Promise<void>
}

const toSeconds = (ns: bigint): number => Number(ns / 1000n) / 1e6

/**
 * A staging file. Its descriptor is opened on first use and closed by `park`, so files that are
 * closed and waiting for their seal hold no descriptor: the backlog is bounded by disk, not by
 * the process's file limit.
 */
export class DiskStaged implements StagedFile {
  readonly where = 'disk'
  private fh: Promise<FileHandle> | undefined

  /** `fh` adopts a descriptor already open on `path` (the file was just created). */
  constructor(readonly path: string, fh?: FileHandle) {
    if (fh !== undefined) this.fh = Promise.resolve(fh)
  }

  private handle(): Promise<FileHandle> {
    if (this.fh === undefined) {
      const opening = open(this.path, constants.O_RDWR).catch((err: unknown) => {
        if (this.fh === opening) this.fh = undefined
        throw TierfsError.from(err, `staging ${this.path}`)
      })
      this.fh = opening
    }
    return this.fh
  }

  async read(buf: Buffer, len: number, pos: number): Promise<number> {
    const fh = await this.handle()
    let done = 0
    while (done < len) {
      const { bytesRead } = await fh.read(buf, done, len - done, pos + done)
      if (bytesRead === 0) break
      done += bytesRead
    }
    return done
  }

  async write(buf: Buffer, pos: number): Promise<void> {
    const fh = await this.handle()
    let done = 0
    while (done < buf.length) {
      const { bytesWritten } = await fh.write(buf, done, buf.length - done, pos + done)
      done += bytesWritten
    }
  }

  async truncate(size: number): Promise<void> {
    await (await this.handle()).truncate(size)
  }

  async sync(datasync: boolean): Promise<void> {
    const fh = await this.handle()
    if (datasync) await fh.datasync()
    else await fh.sync()
  }

  async setTimes(atimeNs: bigint, mtimeNs: bigint): Promise<void> {
    await utimes(this.path, toSeconds(atimeNs), toSeconds(mtimeNs))
  }

  async blocks(size: number): Promise<number> {
    const st = await stat(this.path).catch(() => undefined)
    return st?.blocks ?? Math.ceil(size / 512)
  }

  /** The first `size` bytes as a stream of 1 MiB buffers, on a descriptor of its own. */
  stream(size: number): AsyncIterable<Buffer> {
    return createReadStream(this.path, { start: 0, end: size - 1, highWaterMark: 1 << 20 }) as AsyncIterable<Buffer>
  }

  async park(): Promise<void> {
    const fh = this.fh
    this.fh = undefined
    if (fh !== undefined) await (await fh.catch(() => undefined))?.close().catch(() => undefined)
  }
}
