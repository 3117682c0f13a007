import { createHash } from 'node:crypto'
import { mkdir, readFile, rm, writeFile, rename } from 'node:fs/promises'
import { join, resolve } from 'node:path'

/** Where running daemons register their mount point (tmpfs, cleared at boot). */
export function runDir(): string {
  return process.env.TIERFS_RUN_DIR ?? '/run/tierfs'
}

export interface MountRecord {
  mountpoint: string
  store: string
  socket: string
  pid: number
}

function recordPath(mountpoint: string): string {
  const id = createHash('sha256').update(resolve(mountpoint)).digest('hex').slice(0, 24)
  return join(runDir(), `${id}.json`)
}

/** Records that a daemon serves `rec.mountpoint` (atomically replaced). */
export async function register(rec: MountRecord): Promise<void> {
  await mkdir(runDir(), { recursive: true, mode: 0o755 })
  const path = recordPath(rec.mountpoint)
  await writeFile(path + '.tmp', JSON.stringify(rec) + '\n')
  await rename(path + '.tmp', path)
}

export async function unregister(mountpoint: string): Promise<void> {
  await rm(recordPath(mountpoint), { force: true })
}

export async function lookupMount(mountpoint: string): Promise<MountRecord | undefined> {
  try {
    return JSON.parse(await readFile(recordPath(mountpoint), 'utf8')) as MountRecord
  } catch {
    return undefined
  }
}

/** Every registered mount (for commands given paths inside a mount). */
export async function lookupAllMounts(): Promise<MountRecord[]> {
  const { readdir } = await import('node:fs/promises')
  const names = await readdir(runDir()).catch(() => [] as string[])
  const out: MountRecord[] = []
  for (const n of names.filter((n) => n.endsWith('.json'))) {
    try {
      out.push(JSON.parse(await readFile(join(runDir(), n), 'utf8')) as MountRecord)
    } catch {
      // a record being replaced
    }
  }
  return out
}
