import { constants } from 'node:fs'
import { mkdir, open, readdir, rename, rm, type FileHandle } from 'node:fs/promises'
import { join } from 'node:path'
import { TierfsError } from '../errors.js'
import { asIno, type Ino } from '../ids.js'

/** Suffix of a copy being built (never resealed: start-up removes it). */
const PARTIAL = '.partial'

/** One open staging file: the bytes of a file being written, on the block tier. */
export interface StagingFile {
  readonly path: string
  readonly fh: FileHandle
}

/**
 * The staging area: one plain file per inode being written (`<dir>/<ino>`), on the block tier,
 * so FUSE writes go straight to local disk. A staging file that exists at start-up holds
 * acknowledged writes that were not sealed yet; the vfs reseals it.
 *
 * A copy of a file's committed bytes (made before its first change) is built under a temporary
 * name and published by rename, so a crash during the copy never leaves a partial copy that
 * start-up would take for the file's contents.
 *
 * Contract: `create` truncates any leftover; `remove` is idempotent; the staging file is never
 * opened with O_APPEND (pwrite must honour offsets).
 */
export class Staging {
  constructor(readonly dir: string) {}

  /** Creates the directory and removes copies a crash interrupted. */
  async ready(): Promise<void> {
    await mkdir(this.dir, { recursive: true })
    for (const n of await readdir(this.dir)) {
      if (n.endsWith(PARTIAL)) await rm(join(this.dir, n), { force: true })
    }
  }

  pathOf(ino: Ino): string {
    return join(this.dir, String(ino))
  }

  async create(ino: Ino): Promise<StagingFile> {
    const path = this.pathOf(ino)
    try {
      const fh = await open(path, constants.O_RDWR | constants.O_CREAT | constants.O_TRUNC, 0o600)
      return { path, fh }
    } catch (err) {
      throw TierfsError.from(err, `staging ${path}`)
    }
  }

  /** Creates the staging file of `ino` under its temporary name, for a copy `publish` finishes. */
  async createPartial(ino: Ino): Promise<StagingFile> {
    const path = this.pathOf(ino) + PARTIAL
    try {
      const fh = await open(path, constants.O_RDWR | constants.O_CREAT | constants.O_TRUNC, 0o600)
      return { path, fh }
    } catch (err) {
      throw TierfsError.from(err, `staging ${path}`)
    }
  }

  /**
   * Makes a finished copy from `createPartial` the staging file of `ino` (the handle stays open).
   * The copy is synced first: once published it replaces the committed bytes at start-up.
   */
  async publish(ino: Ino, file: StagingFile): Promise<StagingFile> {
    const path = this.pathOf(ino)
    try {
      await file.fh.datasync()
      await rename(file.path, path)
      return { path, fh: file.fh }
    } catch (err) {
      throw TierfsError.from(err, `staging ${path}`)
    }
  }

  /** Opens an existing staging file (recovery after a crash). */
  async reopen(ino: Ino): Promise<StagingFile> {
    const path = this.pathOf(ino)
    try {
      return { path, fh: await open(path, constants.O_RDWR) }
    } catch (err) {
      throw TierfsError.from(err, `staging ${path}`)
    }
  }

  async remove(ino: Ino): Promise<void> {
    await rm(this.pathOf(ino), { force: true })
    await rm(this.pathOf(ino) + PARTIAL, { force: true })
  }

  /** Inodes that have a staging file now. */
  async leftovers(): Promise<Ino[]> {
    const names = await readdir(this.dir)
    return names.filter((n) => /^[0-9]+$/.test(n)).map((n) => asIno(Number(n)))
  }

  /** Bytes held in staging (for status). */
  async bytes(): Promise<number> {
    let total = 0
    for (const ino of await this.leftovers()) {
      try {
        const fh = await open(this.pathOf(ino), 'r')
        total += (await fh.stat()).size
        await fh.close()
      } catch {
        // sealed and removed meanwhile
      }
    }
    return total
  }
}
