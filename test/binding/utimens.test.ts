import t from 'tap'
import { stat } from 'node:fs/promises'
import { Fuse } from './fuse-native-api.js'
import { mountMiniFs } from './mini-fs.js'
import type { RecordedCall } from './mini-fs.js'
import { sh } from './child.js'

// 2001-02-03T04:05:06.123456789Z and friends, in ns since the epoch.
const T1 = BigInt(Date.UTC(2001, 1, 3, 4, 5, 6)) * 1_000_000n + 123_456_789n
const T2 = BigInt(Date.UTC(2010, 0, 1)) * 1_000_000n + 500_000_000n
const T3 = BigInt(Date.UTC(2011, 0, 1)) * 1_000_000n + 250_000_000n

t.test('utimens through a real mount', async t => {
  const fs = await mountMiniFs()
  t.teardown(() => fs.unmount())
  const file = `${fs.mnt}/f`
  const lastUtimens = (): RecordedCall | undefined => fs.calls.filter(c => c.op === 'utimens').at(-1)
  const times = async () => {
    const st = await stat(file, { bigint: true })
    const shown = (await sh(`exec stat -c '%x|%y' '${file}'`)).stdout.trim()
    return { atime: st.atimeNs, mtime: st.mtimeNs, shown }
  }

  t.test('touch -d with nanoseconds sets atime and mtime at full precision', async t => {
    await sh(`exec touch -d '2001-02-03 04:05:06.123456789' '${file}'`)
    t.match(lastUtimens(), { path: '/f', atime: T1, mtime: T1 }, 'handler got both times as bigint ns')
    const got = await times()
    t.equal(got.atime, T1, 'atime read back to the ns')
    t.equal(got.mtime, T1, 'mtime read back to the ns')
    t.equal(got.shown, '2001-02-03 04:05:06.123456789 +0000|2001-02-03 04:05:06.123456789 +0000', 'stat -c %x|%y')
  })

  t.test('touch -m -d omits atime', async t => {
    await sh(`exec touch -m -d '2010-01-01 00:00:00.5' '${file}'`)
    t.match(lastUtimens(), { path: '/f', atime: Fuse.UTIME_OMIT, mtime: T2 }, 'atime arrives as UTIME_OMIT (-2n)')
    const got = await times()
    t.equal(got.atime, T1, 'atime unchanged')
    t.equal(got.mtime, T2, 'mtime set')
  })

  t.test('touch -a -d omits mtime', async t => {
    await sh(`exec touch -a -d '2011-01-01 00:00:00.25' '${file}'`)
    t.match(lastUtimens(), { path: '/f', atime: T3, mtime: Fuse.UTIME_OMIT }, 'mtime arrives as UTIME_OMIT (-2n)')
    const got = await times()
    t.equal(got.atime, T3, 'atime set')
    t.equal(got.mtime, T2, 'mtime unchanged')
  })

  t.test('touch without a date asks for UTIME_NOW', async t => {
    const before = BigInt(Date.now()) * 1_000_000n
    await sh(`exec touch '${file}'`)
    const after = BigInt(Date.now()) * 1_000_000n
    t.match(lastUtimens(), { path: '/f', atime: Fuse.UTIME_NOW, mtime: Fuse.UTIME_NOW }, 'both arrive as UTIME_NOW (-1n)')
    const got = await times()
    t.ok(got.atime >= before && got.atime <= after, 'atime is now')
    t.equal(got.mtime, got.atime, 'mtime is the same now')
  })

  t.equal(Fuse.UTIME_NOW, -1n)
  t.equal(Fuse.UTIME_OMIT, -2n)
})
