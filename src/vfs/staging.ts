import { constants } from 'node:fs'
import { mkdir, open, readdir, rename, rm, stat, unlink } from 'node:fs/promises'
import { join } from 'node:path'
import { TierfsError } from '../errors.js'
import { asIno, type Ino } from '../ids.js'
import { DiskStaged } from './staged-file.js'

/** Suffix of a copy being built (never resealed: start-up removes it). */
const PARTIAL = '.partial'

/**
 * The staging area: one plain file per inode being written (`<dir>/<ino>`), on the block tier,
 * so FUSE writes go straight to local disk (small files are staged in memory instead: see
 * MemoryStaged). A staging file that exists at start-up holds
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

  /** Creates (or truncates) the staging file of `ino`. */
  create(ino: Ino): Promise<DiskStaged> {
    return this.createAt(this.pathOf(ino))
  }

  /** Creates the staging file of `ino` under its temporary name, for a copy `publish` finishes. */
  createPartial(ino: Ino): Promise<DiskStaged> {
    return this.createAt(this.pathOf(ino) + PARTIAL)
  }

  private async createAt(path: string): Promise<DiskStaged> {
    try {
      return new DiskStaged(path, await open(path, constants.O_RDWR | constants.O_CREAT | constants.O_TRUNC, 0o600))
    } catch (err) {
      throw TierfsError.from(err, `staging ${path}`)
    }
  }

  /**
   * Makes a finished copy from `createPartial` the staging file of `ino` (its descriptor is closed;
   * the returned file opens one on use). The copy is synced first: once published it replaces the
   * committed bytes at start-up.
   */
  async publish(ino: Ino, file: DiskStaged): Promise<DiskStaged> {
    const path = this.pathOf(ino)
    try {
      await file.sync(true)
      await file.park()
      await rename(file.path, path)
      return new DiskStaged(path)
    } catch (err) {
      throw TierfsError.from(err, `staging ${path}`)
    }
  }

  /** The existing staging file of `ino` (recovery after a crash), with its size and times. */
  async adopt(ino: Ino): Promise<{ file: DiskStaged; size: number; mtimeNs: bigint; ctimeNs: bigint }> {
    const path = this.pathOf(ino)
    try {
      const st = await stat(path, { bigint: true })
      return { file: new DiskStaged(path), size: Number(st.size), mtimeNs: st.mtimeNs, ctimeNs: st.ctimeNs }
    } catch (err) {
      throw TierfsError.from(err, `staging ${path}`)
    }
  }

  async remove(ino: Ino): Promise<void> {
    await Promise.all([unlinkIfThere(this.pathOf(ino)), unlinkIfThere(this.pathOf(ino) + PARTIAL)])
  }

  /** Inodes that have a staging file now. */
  async leftovers(): Promise<Ino[]> {
    const names = await readdir(this.dir)
    return names.filter((n) => /^[0-9]+$/.test(n)).map((n) => asIno(Number(n)))
  }
}

async function unlinkIfThere(path: string): Promise<void> {
  try {
    await unlink(path)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw TierfsError.from(err, `staging ${path}`)
  }
}
