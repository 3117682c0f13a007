import t from 'tap'
import { randomBytes } from 'node:crypto'
import { copyFile, open, readdir, stat, truncate } from 'node:fs/promises'
import { join } from 'node:path'
import { TierfsError } from '../../src/errors.js'
import { asTierId, asVersion } from '../../src/ids.js'
import { SYS_VERSION } from '../../src/meta/keys.js'
import { loadRows } from '../../src/meta/level-load.js'
import { LevelMeta } from '../../src/meta/level-meta.js'
import type { Meta } from '../../src/meta/meta.js'
import { checkpointOps, readHeaderObject, verifyCheckpointFile } from '../../src/store/checkpoint-file.js'
import { applyDelta, putRows } from '../../src/store/checkpoint-merge.js'
import { CHECKPOINT_PREFIX, listCheckpoints, writeCheckpoint, type CheckpointOptions } from '../../src/store/checkpoint.js'
import { checkpointDue, nextIsFull } from '../../src/store/checkpoint-state.js'
import { parseConfig } from '../../src/store/config.js'
import { LocalTier } from '../../src/tier/local-tier.js'
import { removeFixture, ROOT_CALLER, vfsStore, type VfsFixture } from '../support/vfs-store.js'

const code = (p: Promise<unknown>): Promise<string> => p.then(() => 'ok', (e: unknown) => (e instanceof TierfsError ? e.code : String(e)))

async function writeFile(fx: VfsFixture, path: string, data: Buffer): Promise<void> {
  const fh = await fx.vfs.create(path, 0o640, 0o101, ROOT_CALLER)
  for (let off = 0; off < data.length; off += 128 * 1024) await fx.vfs.write(fh, data.subarray(off, off + 128 * 1024), off)
  await fx.vfs.release(fh)
}

/** Every row of the store, as hex text (small test stores only). */
async function rowsOf(meta: Pick<Meta, 'dump'>): Promise<string[]> {
  const dump = await meta.dump()
  try {
    const out: string[] = []
    for await (const [k, v] of dump.rows()) out.push(`${k.toString('hex')}=${v.toString('hex')}`)
    return out
  } finally {
    await dump.close()
  }
}

/** Opens a metadata database loaded from `rows` and returns its rows. */
async function loadAndRead(dir: string, rows: AsyncIterable<[Buffer, Buffer]>): Promise<{ rows: string[]; loaded: number; head: bigint }> {
  const loaded = await loadRows(dir, rows)
  const meta = new LevelMeta({ path: dir })
  await meta.ready()
  try {
    return { rows: await rowsOf(meta), loaded, head: meta.head }
  } finally {
    await meta.close()
  }
}

async function setup(t: Tap.Test): Promise<{ fx: VfsFixture; tier: LocalTier; opts: CheckpointOptions; clock: { ms: number } }> {
  const fx = await vfsStore()
  t.teardown(async () => { await fx.close(); await removeFixture(fx) })
  const tier = new LocalTier(asTierId('object'), join(fx.dir, 'object'))
  await tier.ready()
  const clock = { ms: Date.UTC(2026, 4, 21, 2, 0, 0) }
  return { fx, tier, clock, opts: { localDir: join(fx.dir, 'block/checkpoints'), keep: 7, fullEvery: 7, now: () => clock.ms } }
}

async function populate(fx: VfsFixture): Promise<void> {
  await fx.vfs.mkdir('/data', 0o755, ROOT_CALLER)
  await writeFile(fx, '/data/small.txt', Buffer.from('inline bytes\n'))
  await writeFile(fx, '/data/big.bin', randomBytes(2 * 1024 * 1024 + 77))
  await fx.vfs.symlink('big.bin', '/data/link', ROOT_CALLER)
  await fx.vfs.setxattr('/data/small.txt', 'user.note', Buffer.from('kept'), 0)
  await fx.vfs.sealAll()
  await fx.store.meta.begin().putPin({ workflow: 'w', timeMs: 1_000, version: fx.store.meta.head }).commit()
}

t.test('a full checkpoint holds every row of one snapshot; loading it gives the same database', async (t) => {
  const { fx, tier, opts } = await setup(t)
  await populate(fx)
  const before = await rowsOf(fx.store.meta)
  const r = await writeCheckpoint(fx.store.meta, tier, opts)
  t.equal(r.kind, 'full')
  t.equal(r.fullReason, 'no earlier full checkpoint on this host')
  t.match(r.key, /^meta\/checkpoints\/20260521T020000\.000Z-\d+\.tfck$/, 'named <UTC time>-<head version>.tfck')
  t.equal(r.head, fx.store.meta.head.toString())
  t.equal(r.entries, before.length, 'one record per row')
  t.same(r.deleted, [])
  const path = tier.localPath(r.key)
  t.equal((await stat(path)).size, r.bytes, 'the tier holds the whole file')
  const header = await readHeaderObject(tier, r.key)
  t.same({ kind: header.kind, head: header.head, entries: header.entries, timeMs: header.timeMs },
    { kind: 'full', head: BigInt(r.head), entries: before.length, timeMs: opts.now!() }, 'the header describes it')
  t.equal((await verifyCheckpointFile(path)).sha256, r.sha256, 'the footer digest verifies')
  const loaded = await loadAndRead(join(fx.dir, 'loaded'), putRows(checkpointOps(path)))
  t.equal(loaded.loaded, before.length)
  t.same(loaded.rows, before, 'the loaded database holds exactly the same rows')
  t.equal(loaded.head.toString(), r.head, 'and opens at the same head version')
  t.ok(r.bytes < before.join('').length / 2, `compressed (${r.bytes} bytes for ${before.length} rows)`)
})

t.test('a dump is one committed state: commits made while it is read are not in it', async (t) => {
  const { fx, tier, opts } = await setup(t)
  await populate(fx)
  const meta = fx.store.meta
  const dump = await meta.dump()
  await meta.begin().putSys('late', Buffer.from('x')).commit()
  const keys: string[] = []
  let versionRow: Buffer | undefined
  for await (const [k, v] of dump.rows()) {
    keys.push(k.toString('latin1'))
    if (k.toString('latin1') === `!sys!${SYS_VERSION}`) versionRow = v
  }
  await dump.close()
  t.notOk(keys.includes('!sys!late'), 'a commit after the snapshot is not in the dump')
  t.equal(versionRow?.readBigUInt64BE(0), dump.head, 'the dump holds the head it reports')
  t.ok(meta.head > dump.head)

  // Commits racing a whole checkpoint: each puts a pair of rows, and a new inode version.
  let stop = false
  let commits = 0
  const writer = (async () => {
    for (let i = 0; !stop; i++) {
      const a = (await meta.getInode(1 as never))!
      await meta.begin().putSys(`pair/${i}/a`, Buffer.from('a')).putSys(`pair/${i}/b`, Buffer.from('b')).putInode({ ...a, mtimeNs: BigInt(i) }).commit()
      commits++
      await new Promise((r) => setImmediate(r))
    }
  })()
  const r = await writeCheckpoint(meta, tier, opts)
  stop = true
  await writer
  t.ok(commits > 0, `${commits} commits ran during the checkpoint`)
  const loadedDir = join(fx.dir, 'loaded')
  const loaded = await loadAndRead(loadedDir, putRows(checkpointOps(tier.localPath(r.key))))
  const pairs = new Map<string, number>()
  for (const row of loaded.rows) {
    const key = Buffer.from(row.slice(0, row.indexOf('=')), 'hex').toString('latin1')
    const m = /^!sys!pair\/(\d+)\/[ab]$/.exec(key)
    if (m !== null) pairs.set(m[1] as string, (pairs.get(m[1] as string) ?? 0) + 1)
  }
  t.ok([...pairs.values()].every((n) => n === 2), `no transaction is torn (${pairs.size} pairs in the checkpoint)`)
  t.equal(loaded.head.toString(), r.head)
  const reopened = new LevelMeta({ path: join(fx.dir, 'loaded2') })
  t.teardown(() => reopened.close())
  await loadRows(join(fx.dir, 'loaded2'), putRows(checkpointOps(tier.localPath(r.key))))
  await reopened.ready()
  t.equal((await reopened.getInode(1 as never))?.mtimeNs, (await meta.getInode(1 as never, asVersion(BigInt(r.head))))?.mtimeNs,
    'the root inode is the one current at the checkpoint head')
})

t.test('the next checkpoint is a delta; base + delta is exactly the store at its snapshot, deletions included', async (t) => {
  const { fx, tier, opts, clock } = await setup(t)
  await populate(fx)
  await fx.vfs.mkdir('/many', 0o755, ROOT_CALLER)
  for (let i = 0; i < 150; i++) await writeFile(fx, `/many/f${i}`, Buffer.from(`file ${i}\n`))
  await fx.vfs.sealAll()
  await fx.store.meta.collect(fx.store.meta.head)
  const full = await writeCheckpoint(fx.store.meta, tier, opts)
  await writeFile(fx, '/data/new.bin', randomBytes(300_000))
  await fx.vfs.unlink('/data/big.bin')
  await fx.vfs.sealAll()
  await fx.store.meta.begin().deletePin('w', 1_000).commit()
  const c = await fx.store.meta.collect(fx.store.meta.head)
  t.ok(c.versionsDropped > 0, `the collector dropped ${c.versionsDropped} versions (rows the delta must delete)`)
  clock.ms += 3_600_000
  const now = await rowsOf(fx.store.meta)
  const delta = await writeCheckpoint(fx.store.meta, tier, opts)
  t.equal(delta.kind, 'delta')
  t.equal(delta.base, full.key.slice(CHECKPOINT_PREFIX.length))
  t.match(delta.key, /\.delta\.tfck$/)
  t.ok(delta.entries < now.length, `the delta holds ${delta.entries} records for a store of ${now.length} rows`)
  t.ok(delta.bytes < full.bytes, `and is smaller than the full one (${delta.bytes} < ${full.bytes})`)
  let dels = 0
  for await (const op of checkpointOps(tier.localPath(delta.key))) if (op.op === 'del') dels++
  t.ok(dels > 0, `it deletes ${dels} rows`)
  const loaded = await loadAndRead(join(fx.dir, 'loaded'), applyDelta(checkpointOps(tier.localPath(full.key)), checkpointOps(tier.localPath(delta.key))))
  t.same(loaded.rows, now, 'base + delta loads exactly the rows of the store')
  t.equal(loaded.head.toString(), delta.head)
})

t.test('every fullEvery-th checkpoint is full; keep prunes older ones but keeps the bases of kept deltas', async (t) => {
  const { fx, tier, opts, clock } = await setup(t)
  await populate(fx)
  const o = { ...opts, keep: 2, fullEvery: 3 }
  const made: Array<{ name: string; kind: string; deleted: string[] }> = []
  for (let i = 0; i < 5; i++) {
    await fx.store.meta.begin().putSys(`step/${i}`, Buffer.from([i])).commit()
    clock.ms += 3_600_000
    const r = await writeCheckpoint(fx.store.meta, tier, o)
    made.push({ name: r.key.slice(CHECKPOINT_PREFIX.length), kind: r.kind, deleted: r.deleted })
    const on = (await listCheckpoints(tier)).map((c) => c.name)
    if (i === 2) t.same(on, made.slice(0, 3).map((m) => m.name), 'after #3: the two newest (deltas) and their base')
  }
  t.same(made.map((m) => m.kind), ['full', 'delta', 'delta', 'full', 'delta'])
  t.same((await listCheckpoints(tier)).map((c) => c.name), [made[3]!.name, made[4]!.name], 'after #5: the newest two, the full one being the delta\'s base')
  t.same(made[3]!.deleted, [made[1]!.name], '#4: #3 is still kept, so its base #1 stays; #2 goes')
  t.same(made[4]!.deleted, [made[0]!.name, made[2]!.name], '#5: the old base and its last delta go')
  const once = await writeCheckpoint(fx.store.meta, tier, { ...o, full: true })
  t.equal(once.kind, 'full')
  t.equal(once.fullReason, 'requested')
})

t.test('a corrupted checkpoint file is refused with CORRUPT', async (t) => {
  const { fx, tier, opts, clock } = await setup(t)
  await populate(fx)
  const r = await writeCheckpoint(fx.store.meta, tier, opts)
  const good = tier.localPath(r.key)
  const size = (await stat(good)).size
  const damaged = async (name: string, at: number): Promise<string> => {
    const p = join(fx.dir, name)
    await copyFile(good, p)
    const fh = await open(p, 'r+')
    const b = Buffer.alloc(1)
    await fh.read(b, 0, 1, at)
    b[0] = b[0]! ^ 0x40
    await fh.write(b, 0, 1, at)
    await fh.close()
    return p
  }
  t.equal(await code(verifyCheckpointFile(await damaged('body.tfck', Math.floor(size / 2)))), 'CORRUPT', 'a flipped body byte')
  t.equal(await code(verifyCheckpointFile(await damaged('header.tfck', 20))), 'CORRUPT', 'a flipped header byte (head version)')
  t.equal(await code(verifyCheckpointFile(await damaged('footer.tfck', size - 45 + 10))), 'CORRUPT', 'a flipped digest byte')
  const cut = join(fx.dir, 'cut.tfck')
  await copyFile(good, cut)
  await truncate(cut, size - 100)
  t.equal(await code(verifyCheckpointFile(cut)), 'CORRUPT', 'a truncated file')
  const body = await damaged('load.tfck', Math.floor(size / 2))
  t.equal(await code(loadRows(join(fx.dir, 'never'), putRows(checkpointOps(body)))), 'CORRUPT', 'loading a damaged file fails too')
  t.equal(await code(verifyCheckpointFile(good)), 'ok', 'the original verifies')

  // A damaged local base: the next checkpoint is full instead of a delta against it.
  const base = join(opts.localDir, 'base.tfck')
  const fh = await open(base, 'r+')
  await fh.write(Buffer.from([0xff, 0xfe, 0xfd]), 0, 3, Math.floor(size / 2))
  await fh.close()
  clock.ms += 1000
  await fx.store.meta.begin().putSys('more', Buffer.from('y')).commit()
  const next = await writeCheckpoint(fx.store.meta, tier, opts)
  t.equal(next.kind, 'full', 'a delta against a damaged base is never written')
  t.match(next.fullReason, /damaged/)
  t.same((await readdir(opts.localDir)).sort(), ['base.tfck', 'state.json'], 'no temporary files are left')
})

t.test('config: checkpoint defaults and checks', async (t) => {
  const d = parseConfig('{}', 'x.json').checkpoint
  t.same(d, { target: 'object', everyHours: 24, keep: 7, fullEvery: 7 })
  t.equal(await code(Promise.resolve().then(() => parseConfig('{"checkpoint":{"target":"block"}}', 'x.json'))), 'CONFIG')
  t.equal(await code(Promise.resolve().then(() => parseConfig('{"checkpoint":{"target":"nowhere"}}', 'x.json'))), 'CONFIG')
  t.equal(await code(Promise.resolve().then(() => parseConfig('{"checkpoint":{"keep":0}}', 'x.json'))), 'CONFIG')
  t.equal(parseConfig('{"targets":{"s3":{"type":"local","path":"/x"}},"checkpoint":{"target":"s3"}}', 'x.json').checkpoint.target, 's3')
})

t.test('schedule: due everyHours after the last checkpoint, or after the state was made; which are full', async (t) => {
  const h = 3_600_000
  const fresh = { deltas: 0, lastDeltaBytes: 0, sinceMs: 10 * h }
  t.notOk(checkpointDue(fresh, 33 * h, 24), 'a new store waits a whole period first')
  t.ok(checkpointDue(fresh, 34 * h, 24))
  const after = { ...fresh, lastMs: 40 * h }
  t.notOk(checkpointDue(after, 63 * h, 24))
  t.ok(checkpointDue(after, 64 * h, 24))
  t.notOk(checkpointDue(after, 1000 * h, 0), 'everyHours 0: never')
  const base = { name: 'x.tfck', sha256: '00', bytes: 1000 }
  t.ok(nextIsFull(fresh, 7), 'no base: full')
  t.notOk(nextIsFull({ ...fresh, base, deltas: 5, lastDeltaBytes: 400 }, 7), 'the 7th is a delta')
  t.ok(nextIsFull({ ...fresh, base, deltas: 6, lastDeltaBytes: 400 }, 7), 'the 8th is full')
  t.ok(nextIsFull({ ...fresh, base, deltas: 1, lastDeltaBytes: 600 }, 7), 'a delta past half its base: full')
  t.ok(nextIsFull({ ...fresh, base, deltas: 0, lastDeltaBytes: 0 }, 1), 'fullEvery 1: always full')
})
