/**
 * Mounts PassthroughVfs (a Vfs over a plain directory) with the mount options the tierfs daemon
 * uses: the speed ceiling of fuse-native + our adapter, for the foundation benchmark.
 *
 * Run in its own process (a FUSE mount must never be used from the event loop that serves it):
 *   node --import @tapjs/typescript/import test/bench/passthrough-mount.ts BACKING_DIR MOUNTPOINT
 * Prints `ready <pid>` on stdout once the mount is live; unmounts and exits on SIGTERM or SIGINT.
 */
import { DEFAULT_MOUNT_OPTIONS, mountVfs } from '../../src/fuse/mount.js'
import { PassthroughVfs } from '../../src/vfs/passthrough-vfs.js'

const [backing, mountpoint] = process.argv.slice(2)
if (backing === undefined || mountpoint === undefined) {
  process.stderr.write('usage: passthrough-mount.ts BACKING_DIR MOUNTPOINT\n')
  process.exit(2)
}

const errors = new Map<string, number>()
const mounted = await mountVfs(mountpoint, new PassthroughVfs(backing), { ...DEFAULT_MOUNT_OPTIONS, extra: [], debug: false }, (op) => {
  errors.set(op, (errors.get(op) ?? 0) + 1)
})
process.stdout.write(`ready ${process.pid}\n`)

let stopping = false
const stop = (): void => {
  if (stopping) return
  stopping = true
  if (errors.size > 0) process.stderr.write(`passthrough: failed operations ${JSON.stringify(Object.fromEntries(errors))}\n`)
  mounted.unmount().then(() => process.exit(0), (err: unknown) => {
    process.stderr.write(`passthrough: unmount failed: ${String(err)}\n`)
    process.exit(1)
  })
}
process.on('SIGTERM', stop)
process.on('SIGINT', stop)
