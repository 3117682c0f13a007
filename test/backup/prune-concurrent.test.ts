import t from 'tap'
import { setImmediate as tick } from 'node:timers/promises'
import { prune } from '../../src/backup/prune.js'
import type { ChunkId } from '../../src/ids.js'
import type { Meta, Txn } from '../../src/meta/meta.js'
import { removeFixture, restorePoints, ROOT_CALLER, vfsStore, type VfsFixture } from '../support/vfs-store.js'
import { det, fsckReport, PRUNE_CONFIG, pruneDeps, putFile, readWhole } from './prune-fixture.js'

const KiB = 1024
const MiB = 1024 * KiB
const PRUNE_NOW = { retention: new Map(), historyWindowMs: 0, dryRun: false }

/**
 * A store where `content` was written as /gone, deleted and collected: its chunks are dead
 * records (refs 0) that a new file with the same bytes deduplicates against.
 */
async function deadChunks(fx: VfsFixture, content: Buffer): Promise<Set<ChunkId>> {
  await putFile(fx, '/gone', content)
  const map = await fx.store.meta.getFileMap(await fx.vfs.resolve('/gone'))
  if (map?.kind !== 'extents') throw new Error('expected extents')
  await fx.vfs.unlink('/gone')
  await fx.store.meta.collect(fx.store.meta.versionAt(Date.now()))
  const ids = new Set(map.extents.map((e) => e.id))
  for (const id of ids) if ((await fx.store.meta.getChunk(id))?.refs !== 0) throw new Error('expected dead chunks')
  return ids
}

/**
 * Writes `content` to /y and lets its seal run up to the metadata commit, which waits for the
 * namespace lock the test holds: the ingest has deduplicated every chunk against the index.
 * Returns the function that releases the lock.
 */
async function sealUpToCommit(fx: VfsFixture, content: Buffer, ids: Set<ChunkId>): Promise<() => Promise<void>> {
  const meta = fx.store.meta as Meta & { getChunk: Meta['getChunk'] }
  const lock = fx.vfs.lock
  // Created and written first: creating takes the namespace lock; the seal starts at release.
  const fh = await fx.vfs.create('/y', 0o644, 0o1101, ROOT_CALLER)
  await fx.vfs.write(fh, content, 0)
  let unlock!: () => void
  const held = lock.run(() => new Promise<void>((r) => { unlock = r }))
  await tick()

  const looked = new Set<ChunkId>()
  let allLooked!: () => void
  const lookedUp = new Promise<void>((r) => { allLooked = r })
  const getChunk = meta.getChunk
  meta.getChunk = async (id) => {
    const rec = await getChunk.call(meta, id)
    if (rec !== undefined && ids.has(id) && !looked.has(id)) {
      looked.add(id)
      if (looked.size === ids.size) allLooked()
    }
    return rec
  }
  const run = lock.run
  let arrived!: () => void
  const atLock = new Promise<void>((r) => { arrived = r })
  lock.run = <T>(fn: () => Promise<T>): Promise<T> => { arrived(); return run.call(lock, fn) }

  await fx.vfs.release(fh)
  await lookedUp
  await atLock
  meta.getChunk = getChunk
  lock.run = run
  return async () => {
    unlock()
    await held
  }
}

t.test('prune removes a dead chunk a seal deduplicated against: the seal fails NOT_FOUND and its retry stores it again', async (t) => {
  let fx = await vfsStore(PRUNE_CONFIG)
  t.teardown(async () => { await fx.close(); await removeFixture(fx) })
  const content = det('shared', 1.5 * MiB)
  const ids = await deadChunks(fx, content)
  const release = await sealUpToCommit(fx, content, ids)

  const r = await prune(pruneDeps(fx), { ...PRUNE_NOW, nowMs: Date.now() })
  t.equal(r.chunksFreed, ids.size, 'the dead chunks were removed under the waiting seal')
  t.equal(r.chunksRevived, 0)
  t.ok(r.packsDeleted >= 1, 'with their sealed pack')
  for (const id of ids) t.equal(await fx.store.meta.getChunk(id), undefined)

  await release()
  await fx.vfs.sealAll()
  t.equal(fx.vfs.sealer.failures, 1, 'the seal failed once (addRefs: NOT_FOUND)')
  // The sealer retries a failed file after a backoff, or at once when drained.
  await fx.vfs.sealAll()
  for (const id of ids) t.equal((await fx.store.meta.getChunk(id))?.refs, 1, 'the retry stored the chunk again')
  t.ok((await readWhole(fx, '/y')).equals(content))
  t.same(await fsckReport(fx), { ok: true, problems: [] })
  await fx.close()
  fx = await fx.reopen()
  t.ok((await readWhole(fx, '/y')).equals(content), 'byte-exact from a fresh start')
})

t.test('a seal that deduplicated against a dead chunk and commits first keeps it: the delete is skipped at commit', async (t) => {
  let fx = await vfsStore(PRUNE_CONFIG)
  t.teardown(async () => { await fx.close(); await removeFixture(fx) })
  const content = det('shared', 1.5 * MiB)
  const ids = await deadChunks(fx, content)
  const release = await sealUpToCommit(fx, content, ids)
  const packs = new Set<string>()
  for (const id of ids) packs.add((await fx.store.meta.getChunk(id))!.pack)

  // The seal commits between prune's plan and its first commit (the dead-record batch).
  const meta = fx.store.meta
  let first = true
  const wrapTxn = (txn: Txn): Txn => new Proxy(txn, {
    get(target, prop) {
      const value = Reflect.get(target, prop, target) as unknown
      if (prop === 'commit') {
        return async (opts?: { sync?: boolean }) => {
          if (first) {
            first = false
            await release()
            await fx.vfs.sealAll()
          }
          return target.commit(opts)
        }
      }
      return typeof value === 'function' ? (...a: unknown[]) => { const out = (value as (...x: unknown[]) => unknown).apply(target, a); return out === target ? wrapTxn(target) : out } : value
    },
  })
  const racing = new Proxy(meta, {
    get(m, prop) {
      if (prop === 'begin') return () => wrapTxn(m.begin())
      const value = Reflect.get(m, prop, m) as unknown
      return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(m) : value
    },
  })
  const r = await prune(pruneDeps(fx, racing), { ...PRUNE_NOW, nowMs: Date.now() })
  t.notOk(first, 'the seal ran inside the prune')
  t.equal(fx.vfs.sealer.failures, 0, 'the seal committed first and did not fail')
  t.equal(r.chunksRevived, ids.size, 'every delete was skipped at commit and counted back as live')
  t.equal(r.chunksFreed, 0)
  for (const id of ids) t.equal((await meta.getChunk(id))?.refs, 1)
  for (const p of packs) t.ok(await meta.getPack(p as never), `pack ${p} holding the revived chunks is kept`)
  t.same(await fsckReport(fx), { ok: true, problems: [] }, 'clean: liveBytes followed the revival')
  await fx.close()
  fx = await fx.reopen()
  t.ok((await readWhole(fx, '/y')).equals(content))
})

t.test('prunes running over a busy writer: every file and restore point stays byte-exact, fsck clean', async (t) => {
  let fx = await vfsStore(PRUNE_CONFIG)
  t.teardown(async () => { await fx.close(); await removeFixture(fx) })
  await fx.vfs.mkdir('/w', 0o755, ROOT_CALLER)
  const rp = restorePoints(fx, Date.now)
  const current = new Map<string, Buffer>()
  const snapshots = new Map<string, Map<string, Buffer>>()
  // Contents repeat (seed i % 7): rewrites deduplicate against chunks earlier prunes found dead.
  const content = (i: number): Buffer => det(`w${i % 7}`, (100 + (i % 7) * 90) * KiB)
  let writing = true
  const writes = async (): Promise<void> => {
    for (let i = 0; i < 48; i++) {
      const name = `/w/f${i % 5}`
      if (i % 6 === 5 && current.has(name)) {
        await fx.vfs.unlink(name)
        current.delete(name)
      } else {
        await putFile(fx, name, content(i))
        current.set(name, content(i))
      }
      if (i % 8 === 7) {
        const p = await rp.create('busy', '/w')
        snapshots.set(p.name, new Map([...current].map(([k, v]) => [k.slice(3), v])))
      }
    }
  }
  const writer = (async () => {
    try {
      await writes()
    } finally {
      writing = false
    }
  })()
  let prunes = 0
  const pruner = (async () => {
    while (writing) {
      await prune(pruneDeps(fx), { ...PRUNE_NOW, retention: new Map([['busy', { last: 2 }]]), nowMs: Date.now(), packLiveThreshold: 0.8 })
      prunes++
      await new Promise((r) => setTimeout(r, 2))
    }
  })()
  await Promise.all([writer, pruner])
  const last = await prune(pruneDeps(fx), { ...PRUNE_NOW, retention: new Map([['busy', { last: 2 }]]), nowMs: Date.now(), packLiveThreshold: 0.8 })
  t.ok(prunes >= 3, `${prunes} prunes ran during the writes (seals retried after a pruned dedup target: ${fx.vfs.sealer.failures})`)
  t.same(last.problems, [])
  t.same(await fsckReport(fx), { ok: true, problems: [] })
  await fx.close()
  fx = await fx.reopen()
  for (const [path, data] of current) t.ok((await readWhole(fx, path)).equals(data), `${path} byte-exact`)
  const kept = (await restorePoints(fx, Date.now).list('busy')).map((p) => p.name)
  t.equal(kept.length, 2, 'retention kept the last two restore points')
  for (const name of kept) {
    for (const [file, data] of snapshots.get(name)!) {
      t.ok((await readWhole(fx, `/.snapshots/busy/${name}/${file}`)).equals(data), `${name}/${file} byte-exact`)
    }
  }
})
