import t, { type Test } from 'tap'
import { mkdir } from 'node:fs/promises'
import { join } from 'node:path'
import type { CrashPointName } from '../../src/crash-point.js'
import { tempMount, type TestMount } from '../support/tierfs-mount.js'
import { waitSealed } from '../support/e2e-io.js'
import { S3rverProcess } from '../support/s3rver-process.js'
import { startGlacierServer } from '../support/glacier-server.js'
import { fsckNoProblems, leftovers, readsExact, type Leftovers } from '../support/crash-checks.js'
import {
  MiB, apply, chainPolicy, clockOffset, eventually, glacierTarget, ok, reload, s3Keys, s3Target, tierBytes, tieringConfig,
  useTieringCredentials, writeData, writePolicy, xattr,
} from '../support/tiering-fixture.js'

/**
 * kill -9 at each step of a migration, deterministically: the daemon is told to kill itself
 * (SIGKILL) the first time it reaches a named crash point (src/crash-point.ts), in a move from
 * block to s3 and in one from s3 to Glacier. Each time: the state the kill left is what that
 * step should leave (so the kill really landed there), fsck finds nothing wrong in it, a remount
 * reads every file back exact, recovery leaves no stray object, and the next pass completes the
 * move with nothing left behind on the tier it left.
 */

await useTieringCredentials()
t.setTimeout(1_800_000)

const FILES = 6
const FILE_SIZE = 3 * MiB
/** The block tier's pack size in tieringConfig. */
const PACK_SIZE = MiB

type Direction = 'to-s3' | 'to-glacier'
const OFFSET: Record<Direction, string> = { 'to-s3': '6d', 'to-glacier': '31d' }
const SOURCE: Record<Direction, string> = { 'to-s3': 'block', 'to-glacier': 's3' }
const DEST: Record<Direction, string> = { 'to-s3': 's3', 'to-glacier': 'gl' }
const DEST_KIND: Record<Direction, string> = { 'to-s3': 'object', 'to-glacier': 'cold' }

/** Per point: what the state left by a kill there must show. */
const EXPECT: Record<CrashPointName, (t: Test, l: Leftovers, d: Direction) => void> = {
  'migrate:marked': (t, l, d) => {
    t.equal(l.unsettled, FILES, 'every file is marked as being moved')
    t.same(l.strays, [], 'nothing noted: no upload began')
    t.equal(l.packs[DEST[d]] ?? 0, 0, `no pack recorded on ${DEST[d]}`)
  },
  'migrate:noted': (t, l, d) => {
    t.equal(l.strays.length, 1, 'one upload noted')
    t.same(l.strayObjects.map((s) => [s.tier, s.exists]), [[DEST[d], false]], 'its object not sent yet')
    t.equal(l.packs[DEST[d]] ?? 0, 0, `no pack recorded on ${DEST[d]}`)
  },
  'migrate:uploaded': (t, l, d) => {
    t.ok(l.strayObjects.some((s) => s.tier === DEST[d] && s.exists), 'a noted upload is on the tier with no pack record')
    t.equal(l.packs[DEST[d]] ?? 0, 0, `no pack recorded on ${DEST[d]}`)
  },
  'migrate:verified': (t, l, d) => EXPECT['migrate:uploaded'](t, l, d),
  'migrate:committed': (t, l, d) => {
    t.ok((l.packs[DEST[d]] ?? 0) >= 1, `a pack committed on ${DEST[d]}`)
    t.ok(l.unsettled > 0, 'the move is not seen through')
  },
  'migrate:unrecorded': (t, l, d) => {
    t.ok(l.strayObjects.some((s) => s.tier === SOURCE[d] && s.exists), `a freed ${SOURCE[d]} pack's record is gone, its object still there and noted`)
  },
  'migrate:freed': (t, l, d) => {
    t.ok(l.strayObjects.some((s) => s.tier === SOURCE[d] && !s.exists), `a freed ${SOURCE[d]} pack's object is gone, its note still there`)
  },
  'glacier:archived': (t, l) => {
    t.ok(l.strays.some((s) => s.startsWith('stray/gl/')), 'an upload to the vault is noted')
    t.equal(l.packs.gl ?? 0, 0, 'no pack recorded on the vault')
  },
}

const POINTS: Array<{ point: CrashPointName; directions: Direction[] }> = [
  { point: 'migrate:marked', directions: ['to-s3', 'to-glacier'] },
  { point: 'migrate:noted', directions: ['to-s3', 'to-glacier'] },
  { point: 'migrate:uploaded', directions: ['to-s3', 'to-glacier'] },
  { point: 'migrate:verified', directions: ['to-s3', 'to-glacier'] },
  { point: 'migrate:committed', directions: ['to-s3', 'to-glacier'] },
  { point: 'migrate:unrecorded', directions: ['to-s3', 'to-glacier'] },
  { point: 'migrate:freed', directions: ['to-s3', 'to-glacier'] },
  { point: 'glacier:archived', directions: ['to-glacier'] },
]

const bucketOf = (i: number): string => `tierfs-crashpoint-${i}`
const vaultOf = (i: number): string => `tierfs-crashpoint-${i}`

const s3 = await S3rverProcess.start({ buckets: POINTS.map((_, i) => bucketOf(i)) })
t.teardown(() => s3.destroy())
const glacier = await startGlacierServer({ jobDelayMs: 300, vaults: POINTS.map((_, i) => vaultOf(i)) })
t.teardown(() => glacier.stop())

/** Archives in the vault and objects in the bucket match the packs recorded there, exactly. */
async function noOrphans(t: Test, m: TestMount, i: number, label: string): Promise<void> {
  const bytes = await tierBytes(m)
  const keys = await s3Keys(s3.endpoint, bucketOf(i))
  t.equal(keys.reduce((n, k) => n + k.size, 0), bytes.s3 ?? 0, `${label}: no object in the bucket without a record`)
  await eventually(`${label}: vault archives equal to recorded packs`, 60_000, async () => {
    const vault = (await glacier.stats()).vaults[vaultOf(i)]
    const recorded = ((await m.status()).tiers?.gl?.objects as number | undefined) ?? 0
    if (vault?.archives === recorded && vault.uploads === 0) return true
    // Each pass first resolves what interrupted uploads left (a vault inventory may be needed).
    await apply(m)
    return undefined
  }, 1000)
  t.pass(`${label}: no archive in the vault without a record, no multipart upload left open`)
}

for (const [i, { point, directions }] of POINTS.entries()) {
  t.test(`kill -9 at ${point}`, async (t) => {
    const m = await tempMount({ config: tieringConfig({ s3: s3Target(s3.endpoint, bucketOf(i)), gl: glacierTarget(glacier.endpoint, vaultOf(i)) }) })
    t.teardown(() => m.cleanup())
    await mkdir(join(m.mnt, 'hbase'))
    const files = new Map<string, string>()
    for (let f = 0; f < FILES; f++) {
      const p = join(m.mnt, `hbase/f${f}.bin`)
      files.set(p, await writeData(p, `crash-point-${i}-${f}`, FILE_SIZE))
    }
    await waitSealed(m)
    await writePolicy(m, 'hbase', chainPolicy({ name: 'hbase', path: '/hbase/**', object: 's3', cold: 'gl', then: 'keep' }))
    await reload(t, m)
    for (const d of ['to-s3', 'to-glacier'] as const) {
      await clockOffset(t, m, OFFSET[d])
      if (directions.includes(d)) {
        const pid = await m.pid()
        await ok(t, m, ['debug', 'crash-at', m.mnt, point])
        const killed = await apply(m)
        t.not(killed.code, 0, `${d}: the pass dies with the daemon`)
        await m.died(pid)
        const left = await leftovers(m)
        t.comment(`${d}: killed at ${point}: ${left.unsettled} files mid-move, strays ${JSON.stringify(left.strayObjects)}, packs ${JSON.stringify(left.packs)}, files by tier ${JSON.stringify(left.tiers)}`)
        EXPECT[point](t, left, d)
        const vault = (await glacier.stats()).vaults[vaultOf(i)]
        t.comment(`${d}: the vault holds ${vault?.archives} archives and ${vault?.uploads} open multipart uploads; ${left.packs.gl ?? 0} recorded`)
        if (point === 'glacier:archived') t.ok((vault?.archives ?? 0) > (left.packs.gl ?? 0), 'an archive in the vault has no record: what recovery must find')
        const pending = await fsckNoProblems(t, m, `${d}: as the kill left it`)
        t.ok(pending <= left.strays.length, `${d}: fsck sees ${pending} pending strays, all noted`)
        await m.mount()
        await clockOffset(t, m, OFFSET[d])
        await readsExact(t, files, `${d}: after the remount`)
        await m.umount()
        t.equal(await fsckNoProblems(t, m, `${d}: after recovery`), 0, `${d}: recovery removed every stray upload`)
        await m.mount()
        await clockOffset(t, m, OFFSET[d])
      }
      const r = await apply(m)
      t.equal(r.code, 0, `${d}: the next pass completes ${r.stderr}`)
      t.same(r.report.errors, [], `${d}: without errors`)
      for (const p of files.keys()) {
        const tier = await xattr(p, 'user.tierfs.tier')
        if (tier !== DEST_KIND[d]) t.fail(`${d}: ${p} on ${tier} after the next pass`)
      }
      // The write tier's open pack keeps its (dead) bytes until it is finished.
      const bytes = await tierBytes(m)
      const open = SOURCE[d] === 'block' ? PACK_SIZE : 0
      t.ok((bytes[SOURCE[d]] ?? 0) <= open, `${d}: nothing left on ${SOURCE[d]} but an open pack (${JSON.stringify(bytes)})`)
      await noOrphans(t, m, i, d)
    }
    await readsExact(t, files, 'at the end, recalled from the vault')
    await m.umount()
    await fsckNoProblems(t, m, 'at the end')
  })
}
