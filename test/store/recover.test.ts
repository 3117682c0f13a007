import t from 'tap'
import { randomBytes } from 'node:crypto'
import { open, readdir, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { TierfsError } from '../../src/errors.js'
import { asTierId } from '../../src/ids.js'
import { silentLogger } from '../../src/log.js'
import { writeCheckpoint } from '../../src/store/checkpoint.js'
import { DEFAULT_CONFIG, type StoreConfig } from '../../src/store/config.js'
import { openStore } from '../../src/store/open-store.js'
import { recoverStore } from '../../src/store/recover.js'
import { LocalTier } from '../../src/tier/local-tier.js'
import { O_RDONLY } from '../../src/vfs/vfs.js'
import { removeFixture, ROOT_CALLER, vfsStore, type VfsFixture } from '../support/vfs-store.js'

const code = (p: Promise<unknown>): Promise<string> => p.then(() => 'ok', (e: unknown) => (e instanceof TierfsError ? e.code : String(e)))

async function writeFile(fx: VfsFixture, path: string, data: Buffer): Promise<void> {
  const fh = await fx.vfs.create(path, 0o644, 0o101, ROOT_CALLER)
  for (let off = 0; off < data.length; off += 128 * 1024) await fx.vfs.write(fh, data.subarray(off, off + 128 * 1024), off)
  await fx.vfs.release(fh)
}

/** A store with checkpoints on its object tier (full A, then delta B), closed: the lost host. */
async function lostHost(t: Tap.Test): Promise<{ fx: VfsFixture; names: string[]; config: StoreConfig }> {
  const fx = await vfsStore()
  t.teardown(() => removeFixture(fx))
  const tier = new LocalTier(asTierId('object'), join(fx.dir, 'object'))
  const opts = { localDir: join(fx.dir, 'block/checkpoints'), keep: 7, fullEvery: 7 }
  let ms = Date.UTC(2026, 0, 1)
  await fx.vfs.mkdir('/d', 0o755, ROOT_CALLER)
  await writeFile(fx, '/d/inline.txt', Buffer.from('kept in metadata\n'))
  await writeFile(fx, '/d/chunked.bin', randomBytes(600_000))
  await fx.vfs.sealAll()
  await fx.store.meta.begin().putPin({ workflow: 'nightly', timeMs: Date.UTC(2026, 0, 1, 2), version: fx.store.meta.head, root: await fx.vfs.resolve('/d') }).commit()
  const a = await writeCheckpoint(fx.store.meta, tier, { ...opts, now: () => ms })
  await writeFile(fx, '/d/second.txt', Buffer.from('written after A\n'))
  await fx.vfs.sealAll()
  ms += 3_600_000
  const b = await writeCheckpoint(fx.store.meta, tier, { ...opts, now: () => ms })
  t.equal(b.kind, 'delta')
  await fx.close()
  const config = { ...DEFAULT_CONFIG, tiers: { ...DEFAULT_CONFIG.tiers, object: { type: 'local' as const, path: join(fx.dir, 'object') } } }
  return { fx, names: [a.key, b.key].map((k) => k.slice('meta/checkpoints/'.length)), config }
}

async function readAll(fx: { vfs: VfsFixture['vfs'] }, path: string): Promise<Buffer> {
  const fh = await fx.vfs.open(path, O_RDONLY, ROOT_CALLER)
  const buf = Buffer.alloc(64 * 1024)
  const n = await fx.vfs.read(fh, buf, 0)
  await fx.vfs.release(fh)
  return buf.subarray(0, n)
}

t.test('a damaged newest checkpoint is skipped for the one before, and said so', async (t) => {
  const { fx, names, config } = await lostHost(t)
  const newest = join(fx.dir, 'object/meta/checkpoints', names[1]!)
  const fh = await open(newest, 'r+')
  await fh.write(Buffer.from([0x55]), 0, 1, (await stat(newest)).size - 60)
  await fh.close()
  const store = join(fx.dir, 'new')
  const r = await recoverStore({ store, from: 'object', config, log: silentLogger })
  t.equal(r.checkpoint.name, names[0], 'recovered from the full checkpoint before it')
  t.equal(r.skipped.length, 1)
  t.equal(r.skipped[0]?.name, names[1])
  t.match(r.skipped[0]?.reason, /SHA-256|damaged|compressed/)
  t.same(r.reconcile.lost.current, ['/d/chunked.bin'], 'the chunked file lived on the block tier only')
  t.same(r.reconcile.lost.restorePoints, [{ workflow: 'nightly', name: '2026-01-01T02:00:00Z', files: ['/chunked.bin'] }])
  t.same(r.reconcile.packs.dropped, { block: 1 })

  const re = await vfsStore({}, store)
  t.teardown(() => re.close())
  t.equal((await readAll(re, '/d/inline.txt')).toString(), 'kept in metadata\n', 'a file inline in the metadata reads')
  t.equal(await code(readAll(re, '/d/chunked.bin')), 'CORRUPT', 'a lost file fails (EIO at the mount)')
  t.equal(await code(re.vfs.getattr('/d/second.txt')), 'NOT_FOUND', 'what only the skipped checkpoint held is not there')

  t.equal(await code(recoverStore({ store, from: 'object', config, log: silentLogger })), 'STORE', 'a store is never recovered over')
})

t.test('refusals leave nothing behind', async (t) => {
  const { fx, names, config } = await lostHost(t)
  const store = join(fx.dir, 'new')
  const newest = join(fx.dir, 'object/meta/checkpoints', names[1]!)
  const fh = await open(newest, 'r+')
  await fh.write(Buffer.from([0x55, 0x55]), 0, 2, 100)
  await fh.close()
  t.equal(await code(recoverStore({ store, from: 'object', config, checkpoint: names[1]!, log: silentLogger })), 'CORRUPT',
    'a named damaged checkpoint is refused')
  t.equal(await code(recoverStore({ store, from: 'block', config, log: silentLogger })), 'CONFIG')
  t.equal(await code(recoverStore({ store, from: 's3-nowhere', config, log: silentLogger })), 'CONFIG')
  t.equal(await code(recoverStore({ store, from: 'cold', config, log: silentLogger })), 'NOT_FOUND', 'no checkpoints on the cold tier')
  const left = await readdir(store).catch(() => [])
  t.notOk(left.includes('tierfs.json') || left.includes('meta'), `no store is left half made (${left.join(', ')})`)

  const ok = await recoverStore({ store, from: 'object', config, checkpoint: names[0]!, log: silentLogger })
  t.equal(ok.checkpoint.kind, 'full', 'the full one named by --checkpoint is used')
  const opened = await openStore(store, silentLogger)
  t.ok(opened.meta.head > 0n)
  await opened.close()
})
