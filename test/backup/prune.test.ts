import t from 'tap'
import { mkdir } from 'node:fs/promises'
import { dirname } from 'node:path'
import { prune } from '../../src/backup/prune.js'
import { packKey } from '../../src/chunk/chunk-store.js'
import { ChunkReader } from '../../src/chunk/chunk-reader.js'
import { encodeChunk } from '../../src/chunk/codec.js'
import { PackWriter } from '../../src/chunk/pack-writer.js'
import { asChunkId, asPackId, asTierId, type ChunkId, type PackId } from '../../src/ids.js'
import type { Meta } from '../../src/meta/meta.js'
import type { PackRecord } from '../../src/meta/types.js'
import { createHash, randomBytes } from 'node:crypto'
import { removeFixture, restorePoints, ROOT_CALLER, vfsStore, type VfsFixture } from '../support/vfs-store.js'
import {
  det, fsckReport, packFiles, PRUNE_CONFIG, pruneDeps, putFile, readWhole, referencedChunks, storeState,
} from './prune-fixture.js'

const KiB = 1024
const MiB = 1024 * KiB
const DAY = 86_400_000
const T0 = Date.parse('2026-03-01T02:00:00Z')

interface History {
  /** Contents by path, as the restore point kept by retention (the newest) shows them. */
  kept: { name: string; files: Record<string, Buffer> }
  current: Record<string, Buffer>
  removed: string[]
}

/**
 * Three nightly restore points of /data with files written, overwritten and deleted between
 * them: x1, a1 and c1 exist only in the two oldest points, d only in the newest, y everywhere.
 */
async function buildHistory(fx: VfsFixture): Promise<History> {
  let now = T0
  const rp = restorePoints(fx, () => now)
  const v = fx.vfs
  await v.mkdir('/data', 0o755, ROOT_CALLER)
  const f = {
    x1: det('x1', 2.5 * MiB), y: det('y', 200 * KiB), a1: det('a1', 1.5 * MiB), c1: det('c1', MiB),
    a2: det('a2', 1.5 * MiB), d: det('d', MiB), c2: det('c2', MiB), e: det('e', 500),
  }
  await putFile(fx, '/data/x1', f.x1)
  await putFile(fx, '/data/y', f.y)
  await putFile(fx, '/data/a', f.a1)
  await putFile(fx, '/data/c', f.c1)
  const p1 = await rp.create('nightly', '/data')
  now += DAY
  await v.unlink('/data/x1')
  await putFile(fx, '/data/a', f.a2)
  await putFile(fx, '/data/d', f.d)
  const p2 = await rp.create('nightly', '/data')
  now += DAY
  await putFile(fx, '/data/c', f.c2)
  const p3 = await rp.create('nightly', '/data')
  await v.unlink('/data/d')
  await putFile(fx, '/data/e', f.e)
  return {
    kept: { name: p3.name, files: { a: f.a2, c: f.c2, d: f.d, y: f.y } },
    current: { '/data/a': f.a2, '/data/c': f.c2, '/data/e': f.e, '/data/y': f.y },
    removed: [p1.name, p2.name],
  }
}

/** Per sealed pack, what a prune keeping exactly `survivors` must do with it. */
async function expectedPackFates(meta: Meta, survivors: Set<ChunkId>, threshold: number): Promise<{ deleted: Set<PackId>; repacked: Set<PackId> }> {
  const live = new Map<PackId, number>()
  for await (const c of meta.chunks()) if (survivors.has(c.id)) live.set(c.pack, (live.get(c.pack) ?? 0) + c.length)
  const deleted = new Set<PackId>()
  const repacked = new Set<PackId>()
  for await (const p of meta.packs()) {
    if (p.state !== 'sealed') continue
    const l = live.get(p.id) ?? 0
    if (l === 0) deleted.add(p.id)
    else if (l / p.size < threshold) repacked.add(p.id)
  }
  return { deleted, repacked }
}

async function packBytes(fx: VfsFixture): Promise<number> {
  let n = 0
  for await (const o of fx.store.block.list('packs/')) n += o.size
  return n
}

t.test('retention removes restore points; prune frees exactly what only they referenced, and a dry run plans the same', async (t) => {
  let fx = await vfsStore(PRUNE_CONFIG)
  t.teardown(async () => { await fx.close(); await removeFixture(fx) })
  const h = await buildHistory(fx)
  const meta = fx.store.meta
  // Restore point times are chosen; versions follow the real clock, so prune runs at real now.
  const opts = { retention: new Map([['nightly', { last: 1 }]]), nowMs: Date.now(), historyWindowMs: 0 }

  const state0 = await storeState(fx)
  const dry = await prune(pruneDeps(fx), { ...opts, dryRun: true })
  t.same(await storeState(fx), state0, 'a dry run changes nothing: pins, versions, chunks, packs, pack files')
  t.same(dry.pointsRemoved.map((p) => p.name), h.removed)
  t.same(dry.pointsKept.map((p) => [p.name, p.reasons]), [[h.kept.name, ['last: 1 of 1']]])

  const chunksBefore = new Set<ChunkId>()
  for await (const c of meta.chunks()) chunksBefore.add(c.id)
  const bytesBefore = await packBytes(fx)

  const real = await prune(pruneDeps(fx), { ...opts, dryRun: false })
  const survivors = await referencedChunks(meta)
  t.same(real.pointsRemoved.map((p) => p.name), h.removed)
  t.same((await restorePoints(fx, Date.now).list()).map((p) => p.name), [h.kept.name], 'only the kept restore point is left')

  const after = new Set<ChunkId>()
  for await (const c of meta.chunks()) {
    after.add(c.id)
    if (c.refs <= 0) t.fail(`chunk ${c.id} survived with refs ${c.refs}`)
  }
  t.same([...after].sort(), [...survivors].sort(), 'the index holds exactly the chunks the current files and the kept restore point reference')
  const freed = [...chunksBefore].filter((id) => !survivors.has(id))
  t.ok(freed.length > 40, `${freed.length} chunks were only in the removed points`)
  t.equal(real.chunksFreed, freed.length)
  t.equal(real.chunksRevived, 0)
  t.ok(real.versionsDropped > 0)
  t.same(real.problems, [])

  t.same({ versionsDropped: dry.versionsDropped, chunksFreed: dry.chunksFreed, packsDeleted: dry.packsDeleted, packsRepacked: dry.packsRepacked },
    { versionsDropped: real.versionsDropped, chunksFreed: real.chunksFreed, packsDeleted: real.packsDeleted, packsRepacked: real.packsRepacked },
    'the dry run planned what the real run did')

  const files = await packFiles(fx)
  const records: PackRecord[] = []
  for await (const p of meta.packs()) records.push(p)
  t.same([...files].sort(), records.map((p) => p.key).sort(), 'every pack file has its record and every record its file')
  t.ok(records.every((p) => p.state !== 'deleting'))
  t.ok(real.packsDeleted >= 2 && real.packsRepacked >= 1, `${real.packsDeleted} packs deleted, ${real.packsRepacked} repacked`)
  t.ok(real.chunksMoved > 0)
  const bytesAfter = await packBytes(fx)
  const overhead = bytesAfter - (bytesBefore - real.bytesFreed)
  t.ok(overhead >= 0 && overhead < 16 * KiB, `space reclaimed ${bytesBefore - bytesAfter} = bytesFreed ${real.bytesFreed} - output pack headers/trailers ${overhead}`)

  t.same(await fsckReport(fx), { ok: true, problems: [] }, 'fsck is clean after the prune')

  const again = await prune(pruneDeps(fx), { ...opts, dryRun: false })
  t.same([again.pointsRemoved.length, again.chunksFreed, again.packsDeleted, again.packsRepacked], [0, 0, 0, 0], 'a second prune finds nothing')

  // Read everything back from a fresh process state (no chunk cache, no open pack descriptors).
  await fx.close()
  fx = await fx.reopen()
  for (const [path, data] of Object.entries(h.current)) t.ok((await readWhole(fx, path)).equals(data), `${path} reads byte-exact`)
  for (const [name, data] of Object.entries(h.kept.files)) {
    t.ok((await readWhole(fx, `/.snapshots/nightly/${h.kept.name}/${name}`)).equals(data), `restore point ${h.kept.name}/${name} reads byte-exact`)
  }
  t.same(await fsckReport(fx), { ok: true, problems: [] })
})

t.test('pack fates: dead packs deleted, sparse ones repacked, exactly as the live bytes say', async (t) => {
  const fx = await vfsStore(PRUNE_CONFIG)
  t.teardown(async () => { await fx.close(); await removeFixture(fx) })
  await buildHistory(fx)
  const meta = fx.store.meta
  // Drop the two old points by hand, so the expected fates can be computed before pruning.
  for await (const p of meta.pins('nightly')) if (p.timeMs < T0 + 2 * DAY) await meta.begin().deletePin('nightly', p.timeMs).commit()
  const threshold = 0.7
  await meta.collect(meta.versionAt(Date.now()), { dryRun: false })
  const fates = await expectedPackFates(meta, await referencedChunks(meta), threshold)
  t.ok(fates.deleted.size > 0 && fates.repacked.size > 0, `${fates.deleted.size} dead, ${fates.repacked.size} sparse`)
  const existing = new Set<PackId>()
  for await (const p of meta.packs()) existing.add(p.id)
  const r = await prune(pruneDeps(fx), { dryRun: false, retention: new Map(), nowMs: Date.now(), historyWindowMs: 0, packLiveThreshold: threshold })
  t.equal(r.packsDeleted, fates.deleted.size)
  t.equal(r.packsRepacked, fates.repacked.size)
  for (const id of [...fates.deleted, ...fates.repacked]) t.equal(await meta.getPack(id), undefined, `pack ${id} is gone`)
  for await (const p of meta.packs()) {
    if (p.state !== 'sealed') continue
    const what = existing.has(p.id) ? 'kept pack' : 'repack output'
    t.ok(p.liveBytes / p.size >= threshold, `${what} ${p.id} is dense enough (${(p.liveBytes / p.size).toFixed(2)})`)
  }
  t.same(await fsckReport(fx), { ok: true, problems: [] })
})

/** Writes a finished pack of `n` chunks onto `tier` with the given records; returns its record. */
async function craftPack(fx: VfsFixture, tierId: string, n: number, createdMs: number): Promise<PackRecord> {
  const tier = fx.store.tiers.get(asTierId(tierId))
  const id = asPackId(randomBytes(16).toString('hex'))
  const key = packKey(id)
  const path = tier.localPath(key)!
  await mkdir(dirname(path), { recursive: true })
  const w = await PackWriter.create(path, id)
  const txn = fx.store.meta.begin()
  for (let i = 0; i < n; i++) {
    const data = det(`${id}-${i}`, 4000)
    const cid = asChunkId(createHash('sha256').update(data).digest('hex'))
    const e = await w.append(cid, encodeChunk(data, { compress: false }), data.length)
    txn.putChunk({ id: cid, pack: id, offset: e.offset, length: e.length, rawLength: data.length, codec: e.codec, refs: 0 })
  }
  const { size } = await w.finish()
  const rec: PackRecord = { id, tier: asTierId(tierId), key, state: 'sealed', size, liveBytes: 0, chunkCount: n, createdMs }
  await txn.putPack(rec).commit()
  return rec
}

t.test('cold archives wait minColdAgeMs; a prune stopped halfway is finished by the next', async (t) => {
  const fx = await vfsStore(PRUNE_CONFIG)
  t.teardown(async () => { await fx.close(); await removeFixture(fx) })
  const meta = fx.store.meta
  const now = Date.now()
  const young = await craftPack(fx, 'cold', 3, now - 10 * DAY)
  const old = await craftPack(fx, 'cold', 3, now - 100 * DAY)
  const objectPack = await craftPack(fx, 'object', 2, now)
  const cold = fx.store.tiers.get(asTierId('cold'))
  const base = { retention: new Map(), nowMs: now, historyWindowMs: 0 }

  const dry = await prune(pruneDeps(fx), { ...base, dryRun: true })
  t.same([dry.packsDeleted, dry.packsDeferred, dry.chunksFreed], [2, 1, 8])
  const r = await prune(pruneDeps(fx), { ...base, dryRun: false })
  t.same([r.packsDeleted, r.packsDeferred, r.chunksFreed], [2, 1, 8], 'the old archive and the object pack go; the young archive waits')
  t.ok(await meta.getPack(young.id), 'young archive kept (its records are gone: nothing points into it)')
  t.ok(await cold.head(young.key))
  t.equal(await meta.getPack(old.id), undefined)
  t.equal(await cold.head(old.key), undefined)
  t.equal(await fx.store.tiers.get(asTierId('object')).head(objectPack.key), undefined)

  const later = await prune(pruneDeps(fx), { ...base, nowMs: now + 81 * DAY, dryRun: false })
  t.same([later.packsDeleted, later.packsDeferred], [1, 0], 'deleted once old enough, with no record left to count')
  t.equal(await cold.head(young.key), undefined)

  // A crash between retiring a pack and removing it leaves a 'deleting' record (and maybe its object).
  const stuck = await craftPack(fx, 'block', 1, now)
  for await (const c of meta.chunks()) if (c.pack === stuck.id) await meta.begin().deleteChunk(c.id).commit()
  await meta.begin().retirePack(stuck.id, { unlessReferenced: [] }).commit()
  t.equal((await meta.getPack(stuck.id))?.state, 'deleting')
  await fx.store.block.delete(stuck.key)
  t.same(await fsckReport(fx), { ok: true, problems: [] }, "fsck: a 'deleting' pack without its object is a prune to finish, not damage")
  const finish = await prune(pruneDeps(fx), { ...base, dryRun: false })
  t.equal(finish.packsDeleted, 1)
  t.equal(await meta.getPack(stuck.id), undefined)
  t.equal(await fx.store.block.head(stuck.key), undefined)
})

t.test('a read that looked a chunk up before a repack moved it follows it to its new pack', async (t) => {
  const fx = await vfsStore(PRUNE_CONFIG)
  t.teardown(async () => { await fx.close(); await removeFixture(fx) })
  const meta = fx.store.meta
  const dead = det('dead', 3 * MiB)
  const kept = det('kept', 300 * KiB)
  await putFile(fx, '/dead', dead)
  await putFile(fx, '/kept', kept)
  await putFile(fx, '/filler', det('filler', 1.2 * MiB))
  await fx.vfs.unlink('/dead')
  const keptMap = await meta.getFileMap((await fx.vfs.resolve('/kept')))
  if (keptMap?.kind !== 'extents') throw new Error('expected extents')
  const target = keptMap.extents[0]!.id
  const before = (await meta.getChunk(target))!

  let raced = false
  const racing = new Proxy(meta, {
    get(m, prop) {
      if (prop === 'getChunk') {
        return async (id: ChunkId) => {
          const rec = await m.getChunk(id)
          if (id === target && !raced) {
            raced = true
            const r = await prune(pruneDeps(fx), { dryRun: false, retention: new Map(), nowMs: Date.now(), historyWindowMs: 0, packLiveThreshold: 0.99 })
            t.ok(r.packsRepacked >= 1, 'the prune repacked the pack the read is about to open')
          }
          return rec
        }
      }
      const value = Reflect.get(m, prop, m) as unknown
      return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(m) : value
    },
  })
  const reader = new ChunkReader(racing, (id) => fx.store.tiers.get(id), 0)
  const data = await reader.read(target)
  t.ok(raced)
  t.not((await meta.getChunk(target))!.pack, before.pack, 'the chunk moved')
  t.equal(await meta.getPack(before.pack), undefined, 'and its old pack is gone')
  t.ok(data.equals(kept.subarray(0, data.length)), 'the read returns the right bytes')
  await reader.close()
})

t.test('a damaged chunk is never copied: its pack stays as it is, for fsck', async (t) => {
  const fx = await vfsStore(PRUNE_CONFIG)
  t.teardown(async () => { await fx.close(); await removeFixture(fx) })
  const meta = fx.store.meta
  await putFile(fx, '/dead', det('dead', 3 * MiB))
  await putFile(fx, '/kept', det('kept', 300 * KiB))
  await putFile(fx, '/filler', det('filler', 1.2 * MiB))
  await fx.vfs.unlink('/dead')
  const map = await meta.getFileMap(await fx.vfs.resolve('/kept'))
  if (map?.kind !== 'extents') throw new Error('expected extents')
  // The victim: a chunk of /kept in the sparsest pack (the one the prune will repack).
  await meta.collect(meta.versionAt(Date.now()))
  let victim = (await meta.getChunk(map.extents[0]!.id))!
  let pack = (await meta.getPack(victim.pack))!
  for (const e of map.extents) {
    const c = (await meta.getChunk(e.id))!
    const p = (await meta.getPack(c.pack))!
    if (p.liveBytes / p.size < pack.liveBytes / pack.size) [victim, pack] = [c, p]
  }
  t.ok(pack.state === 'sealed' && pack.liveBytes / pack.size < 0.5, 'the victim is in a sparse sealed pack')
  const { open } = await import('node:fs/promises')
  const fh = await open(fx.store.block.localPath(pack.key)!, 'r+')
  await fh.write(Buffer.from([0x55 ^ (await fh.read(Buffer.alloc(1), 0, 1, victim.offset + 10)).buffer[0]!]), 0, 1, victim.offset + 10)
  await fh.close()

  const r = await prune(pruneDeps(fx), { dryRun: false, retention: new Map(), nowMs: Date.now(), historyWindowMs: 0, packLiveThreshold: 0.99 })
  t.match(r.problems.join('\n'), new RegExp(`pack ${pack.id}.*chunk ${victim.id}`), 'reported')
  t.match(await meta.getPack(pack.id), { state: 'sealed' }, 'the pack is kept')
  t.match(await meta.getChunk(victim.id), { pack: pack.id, offset: victim.offset }, 'the chunk is where it was')
  const records: string[] = []
  for await (const p of meta.packs()) records.push(p.key)
  t.same([...(await packFiles(fx))].sort(), records.sort(), 'no output pack left without a record')
  const f = await fsckReport(fx)
  t.same(f.problems.map((p) => p.split(':')[0]), ['chunk-corrupt'], 'fsck sees the damage and nothing else')
})
