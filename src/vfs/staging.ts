import { constants } from 'node:fs'
import { mkdir, open, readdir, rm, type FileHandle } from 'node:fs/promises'
import { join } from 'node:path'
import { TierfsError } from '../errors.js'
import { asIno, type Ino } from '../ids.js'

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
 * Contract: `create` truncates any leftover; `remove` is idempotent; the staging file is never
 * opened with O_APPEND (pwrite must honour offsets).
 */
export class Staging {
  constructor(readonly dir: string) {}

  async ready(): Promise<void> {
    await mkdir(this.dir, { recursive: true })
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
