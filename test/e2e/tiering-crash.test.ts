import t from 'tap'
import { randomInt } from 'node:crypto'
import { mkdir } from 'node:fs/promises'
import { join } from 'node:path'
import { tempMount } from '../support/tierfs-mount.js'
import { sleep, waitSealed } from '../support/e2e-io.js'
import { fsckNoProblems, leftovers, readsExact } from '../support/crash-checks.js'
import { S3rverProcess } from '../support/s3rver-process.js'
import {
  MiB, apply, chainPolicy, clockOffset, reload, s3Keys, s3Target, tierBytes, tieringConfig, useTieringCredentials,
  writeData, writePolicy, xattr,
} from '../support/tiering-fixture.js'

await useTieringCredentials()
// Each kill is followed by a remount, a full read-back and two fscks: minutes on a loaded machine.
t.setTimeout(1_800_000)

const KILLS = Number(process.env.TIERFS_TIERING_KILLS ?? 12)
const FILES = 15
const FILE_SIZE = 4 * MiB

t.test(`kill -9 of the daemon during migrations (${FILES * FILE_SIZE / MiB} MiB), ${KILLS} times`, async (t) => {
  const s3 = await S3rverProcess.start({ buckets: ['tierfs-crash'] })
  t.teardown(() => s3.destroy())
  const m = await tempMount({ config: tieringConfig({ 's3-primary': s3Target(s3.endpoint, 'tierfs-crash') }) })
  t.teardown(() => m.cleanup())
  await mkdir(join(m.mnt, 'hbase'))
  const files = new Map<string, string>()
  for (let i = 0; i < FILES; i++) {
    const p = join(m.mnt, `hbase/f${i}.bin`)
    files.set(p, await writeData(p, `tiering-crash-${i}`, FILE_SIZE))
  }
  await waitSealed(m)
  await writePolicy(m, 'hbase', chainPolicy({ name: 'hbase', path: '/hbase/**', object: 's3-primary', then: 'keep' }))
  await reload(t, m)

  // Day 6 moves everything to s3, day 0 brings it back to block: every pass moves all of it.
  // The first full pass each way calibrates how long a pass takes.
  const offsets = ['6d', '0d']
  const passMs: number[] = []
  for (const offset of offsets) {
    await clockOffset(t, m, offset)
    const t0 = Date.now()
    const r = await apply(m)
    passMs.push(Date.now() - t0)
    t.equal(r.code, 0, `calibration pass to ${offset === '6d' ? 's3' : 'block'} ${r.stderr}`)
    t.equal(r.report.filesMoved, FILES)
  }
  t.comment(`a full pass takes ${passMs.join(' / ')} ms (to s3 / back to block)`)

  const seen = { strays: 0, deadPacks: 0, unsettled: 0 }
  for (let i = 0; i < KILLS; i++) {
    const offset = offsets[i % 2] as string
    const dest = offset === '6d' ? 's3-primary' : 'block'
    await clockOffset(t, m, offset)
    // Kill anywhere in the pass: planning, copying, uploading, between upload and commit,
    // between commit and free, while freeing.
    const killAfter = randomInt(Math.max(1, Math.round((passMs[i % 2] as number) * 0.95)))
    const pass = apply(m)
    await sleep(killAfter)
    await m.kill9()
    await pass
    const left = await leftovers(m)
    seen.strays += left.strays.length > 0 ? 1 : 0
    seen.deadPacks += left.deadPacks > 0 ? 1 : 0
    seen.unsettled += left.unsettled > 0 ? 1 : 0
    t.comment(`kill ${i + 1} (to ${dest}) after ${killAfter} ms: ${left.unsettled} files mid-move, ${left.strays.length} noted strays, ${left.deadPacks} dead packs, files by recorded tier ${JSON.stringify(left.tiers)}`)
    if (i % 2 === 0) {
      // The state a kill leaves is consistent as it is: only noted strays wait for the next mount.
      const before = await fsckNoProblems(t, m, `kill ${i + 1}, before recovery`)
      t.ok(before <= left.strays.length, `kill ${i + 1}: fsck sees ${before} pending strays (${left.strays.length} noted; one may not have reached the bucket)`)
    }

    await m.mount()
    await clockOffset(t, m, offset)
    await readsExact(t, files, `kill ${i + 1}, after remount`)
    await m.umount()
    const after = await fsckNoProblems(t, m, `kill ${i + 1}, after recovery`)
    t.equal(after, 0, `kill ${i + 1}: recovery removed every stray upload`)
    await m.mount()
    if (i === KILLS - 1 || i % 4 === 3) {
      // A later pass completes the move.
      await clockOffset(t, m, offset)
      const r = await apply(m)
      t.equal(r.code, 0, `kill ${i + 1}: the next pass completes ${r.stderr}`)
      t.same(r.report.errors, [])
      for (const p of files.keys()) {
        const tier = await xattr(p, 'user.tierfs.tier')
        if (tier !== (dest === 'block' ? 'block' : 'object')) t.fail(`kill ${i + 1}: ${p} on ${tier} after the next pass`)
      }
      const bytes = await tierBytes(m)
      const other = dest === 'block' ? 's3-primary' : 'block'
      t.equal(bytes[other] ?? 0, 0, `kill ${i + 1}: nothing left on ${other} after the next pass (${JSON.stringify(bytes)})`)
    }
  }
  t.comment(`kills that left: files mid-move ${seen.unsettled}, noted strays ${seen.strays}, dead packs ${seen.deadPacks}`)
  if (KILLS >= 8) {
    t.ok(seen.unsettled > 0, 'some kill landed in the middle of a move')
    t.ok(seen.strays > 0, 'some kill landed between noting an upload (or free) and finishing it')
    t.ok(seen.deadPacks > 0, 'some kill landed between a commit and freeing its source')
  }

  // The bucket holds exactly the recorded packs, and everything reads back.
  const bytes = await tierBytes(m)
  const keys = await s3Keys(s3.endpoint, 'tierfs-crash')
  t.equal(keys.reduce((n, k) => n + k.size, 0), bytes['s3-primary'] ?? 0, 'no object in the bucket without a record')
  await m.umount()
  await m.mount()
  await readsExact(t, files, 'at the end')
  await m.umount()
  await fsckNoProblems(t, m, 'at the end')
})
