import { createReadStream, createWriteStream } from 'node:fs'
import { mkdir, open, readdir, rename, rm, stat, statfs, writeFile } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { pipeline } from 'node:stream/promises'
import { randomBytes } from 'node:crypto'
import { TierfsError } from '../errors.js'
import { preadFully } from './file-part.js'
import type { TierId } from '../ids.js'
import type { ObjectInfo, Tier, TierCapabilities, Warmth } from './tier.js'
import { checkKey } from './tier-key.js'

/**
 * A tier in a local directory (local disk, EBS, SAN mount). Objects are plain files under
 * `root`; puts go to a temporary name in the same directory, are fsynced, then renamed.
 */
export class LocalTier implements Tier {
  readonly capabilities: TierCapabilities = { rangeReads: true, needsWarmup: false, maxConnections: 16, localFiles: true }

  constructor(readonly id: TierId, readonly root: string) {}

  async ready(): Promise<void> {
    await mkdir(this.root, { recursive: true })
  }

  async close(): Promise<void> {}

  localPath(key: string): string {
    return join(this.root, checkKey(key))
  }

  async get(key: string, range?: { offset: number; length: number }): Promise<Buffer> {
    const path = this.localPath(key)
    let fh
    try {
      fh = await open(path, 'r')
    } catch (err) {
      throw TierfsError.from(err, `${this.id}: get ${key}`)
    }
    try {
      const size = (await fh.stat()).size
      const offset = range?.offset ?? 0
      const length = Math.max(0, Math.min(range?.length ?? size, size - offset))
      return await preadFully(fh, offset, length)
    } catch (err) {
      throw TierfsError.from(err, `${this.id}: get ${key}`)
    } finally {
      await fh.close()
    }
  }

  async put(key: string, source: { file: string } | { data: Buffer }): Promise<void> {
    const path = this.localPath(key)
    const tmp = `${path}.tmp-${randomBytes(6).toString('hex')}`
    try {
      await mkdir(dirname(path), { recursive: true })
      if ('data' in source) {
        await writeFile(tmp, source.data, { flush: true })
      } else {
        await pipeline(createReadStream(source.file), createWriteStream(tmp, { flush: true }))
      }
      await rename(tmp, path)
      await syncDir(dirname(path))
    } catch (err) {
      await rm(tmp, { force: true })
      throw TierfsError.from(err, `${this.id}: put ${key}`)
    }
  }

  async head(key: string): Promise<ObjectInfo | undefined> {
    try {
      const st = await stat(this.localPath(key))
      return { key, size: st.size }
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined
      throw TierfsError.from(err, `${this.id}: head ${key}`)
    }
  }

  async delete(key: string): Promise<void> {
    try {
      await rm(this.localPath(key), { force: true })
    } catch (err) {
      throw TierfsError.from(err, `${this.id}: delete ${key}`)
    }
  }

  async *list(prefix: string): AsyncIterable<ObjectInfo> {
    const dirs = ['']
    while (dirs.length > 0) {
      const rel = dirs.pop() as string
      let names
      try {
        names = await readdir(join(this.root, rel), { withFileTypes: true })
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue
        throw TierfsError.from(err, `${this.id}: list ${prefix}`)
      }
      for (const d of names) {
        const key = rel === '' ? d.name : `${rel}/${d.name}`
        if (d.isDirectory()) {
          if (prefix.startsWith(key + '/') || key.startsWith(prefix) || prefix === '') dirs.push(key)
        } else if (d.isFile() && key.startsWith(prefix) && !d.name.includes('.tmp-')) {
          const st = await stat(join(this.root, key)).catch(() => undefined)
          if (st !== undefined) yield { key, size: st.size }
        }
      }
    }
  }

  async warmth(_key: string): Promise<Warmth> {
    return 'warm'
  }

  async warmup(_key: string): Promise<void> {}

  async space(): Promise<{ free: number; total: number }> {
    const s = await statfs(this.root)
    return { free: s.bavail * s.bsize, total: s.blocks * s.bsize }
  }
}

/** fsync a directory so a rename or create inside it is durable. */
export async function syncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r')
  try {
    await fh.sync()
  } finally {
    await fh.close()
  }
}
