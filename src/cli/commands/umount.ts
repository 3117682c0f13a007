import { resolve } from 'node:path'
import { mountedAt } from '../../fuse/mount.js'
import { lookupMount } from '../../store/registry.js'
import { need, parseArgs } from '../args.js'
import { callMount } from '../daemon-client.js'

export const usage = 'tierfs umount MOUNTPOINT'

/** Asks the daemon to seal, flush and unmount, and waits until it has exited. */
export async function run(argv: string[], out: (s: string) => void): Promise<number> {
  const [mountpoint] = need(parseArgs(argv, {}), 1, usage) as [string]
  const mnt = resolve(mountpoint)
  const rec = await lookupMount(mnt)
  await callMount(mnt, 'umount')
  const deadline = Date.now() + 600_000
  while (Date.now() < deadline) {
    const alive = rec !== undefined && isAlive(rec.pid)
    if (!alive && (await mountedAt(mnt)) === undefined) {
      out(`unmounted ${mnt}\n`)
      return 0
    }
    await new Promise((r) => setTimeout(r, 50))
  }
  throw new Error(`daemon for ${mnt} did not stop within 10 minutes`)
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}
