import t from 'tap'
import { mkdtemp, readFile, rmdir } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fuseNativeDir, loadedAddonPath } from './fuse-native-api.js'
import { mountMiniFs } from './mini-fs.js'
import type { MiniFsOptions } from './mini-fs.js'
import { runChild, sh } from './child.js'

t.test('the patched build in build/Release is the addon that loads', async t => {
  t.equal(loadedAddonPath, join(fuseNativeDir, 'build/Release/fuse.node'))
})

// Counts setTimeout calls made from fuse-native's index.js while `work` runs against a fresh mount.
async function fuseTimers (t: { teardown(fn: () => unknown): void }, timeout: MiniFsOptions['timeout']): Promise<number> {
  const fs = await mountMiniFs({ timeout })
  t.teardown(() => fs.unmount())
  const real = globalThis.setTimeout
  let armed = 0
  globalThis.setTimeout = ((...args: Parameters<typeof setTimeout>) => {
    if (new Error().stack?.includes('/fuse-native/index.js') === true) armed++
    return real(...args)
  }) as typeof setTimeout
  try {
    await sh(`touch '${fs.mnt}/f' && mkdir '${fs.mnt}/d' && ls -l '${fs.mnt}' && stat '${fs.mnt}/f'`)
  } finally {
    globalThis.setTimeout = real
    await fs.unmount()
  }
  return armed
}

t.test('timeout: false arms no per-operation timer', async t => {
  t.equal(await fuseTimers(t, false), 0, 'no timer with timeout: false')
  const control = await fuseTimers(t, 60_000)
  t.comment(`timers armed by the same workload with timeout: 60000: ${control}`)
  t.ok(control > 5, 'control: timeout: 60000 arms one per operation')
})

// Runs in a child node process so a hang (the upstream behaviour) cannot stall this test.
const BAD_MOUNT = `
const Fuse = require(process.argv[1])
const fuse = new Fuse(process.argv[2], {}, { fsname: 'x,bogus_option=1', timeout: false })
fuse.mount(err => console.log(JSON.stringify({ code: err && err.code, message: err && err.message })))
`

t.test('a rejected mount option fails clearly, leaves no mount and lets the process exit', async t => {
  const mnt = await mkdtemp(join(tmpdir(), 'tierfs-badmount-'))
  t.teardown(() => rmdir(mnt))
  const { stdout } = await runChild(process.execPath, ['-e', BAD_MOUNT, fuseNativeDir, mnt], { timeoutMs: 15_000 })
  const err = JSON.parse(stdout) as { code: string, message: string }
  t.equal(err.code, 'fuse failed', 'err.code is unchanged')
  t.match(err.message, `fuse_new rejected options -ofsname=x,bogus_option=1 for ${mnt}`, 'message names the step, options and mount point')
  const mounts = await readFile('/proc/mounts', 'utf8')
  t.notOk(mounts.includes(` ${mnt} `), 'no mount left behind')
})
