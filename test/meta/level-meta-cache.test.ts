import t from 'tap'
import { ROOT_INO, type Ino } from '../../src/ids.js'
import type { LevelMeta } from '../../src/meta/level-meta.js'
import { LruCache } from '../../src/meta/lru-cache.js'
import type { Space } from '../../src/meta/space.js'
import { attrs, ino, openMeta } from './helpers.js'

/** Deterministic PRNG so a failure replays. */
function rng(seed: number): () => number {
  let s = seed >>> 0
  return () => {
    s = (s + 0x6d2b79f5) >>> 0
    let x = s
    x = Math.imul(x ^ (x >>> 15), x | 1)
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61)
    return ((x ^ (x >>> 14)) >>> 0) / 2 ** 32
  }
}

const show = (x: unknown): string => JSON.stringify(x, (_, v: unknown) => (typeof v === 'bigint' ? String(v) : v))

/** Compares every cached read with the uncached path (as of head, which skips the cache). */
async function mismatches(meta: LevelMeta, inos: Ino[], names: string[]): Promise<string[]> {
  const bad: string[] = []
  const head = meta.head
  for (const i of inos) {
    const [cached, direct] = await Promise.all([meta.getInode(i), meta.getInode(i, head)])
    if (show(cached) !== show(direct)) bad.push(`inode ${i}`)
  }
  for (const n of names) {
    const [cached, direct] = await Promise.all([meta.lookup(ROOT_INO, n), meta.lookup(ROOT_INO, n, head)])
    if (cached !== direct) bad.push(`dentry ${n}: ${cached} vs ${direct}`)
  }
  return bad
}

for (const cacheEntries of [16, 100_000]) {
  t.test(`the cache is never stale (random operations, ${cacheEntries} entries)`, async (t) => {
    const meta = await openMeta(t.testdir(), { cacheEntries })
    t.teardown(() => meta.close())
    const rand = rng(cacheEntries)
    const inos = Array.from({ length: 40 }, () => meta.allocIno())
    const names = inos.map((_, k) => `n${k}`)
    const pick = <T>(xs: T[]): T => xs[Math.floor(rand() * xs.length)]!
    const committed: bigint[] = []
    let stale = 0
    let checked = 0
    // Right after commit v returns, a cached read must show v's value or a later commit's:
    // some version u in [v, head after the read] must give the same value uncached.
    const afterCommit = async (v: bigint, touchedInos: Ino[], touchedNames: string[]): Promise<void> => {
      for (const i of touchedInos) {
        const cached = show(await meta.getInode(i))
        const h = meta.head
        const us = committed.filter((u) => u >= v && u <= h)
        const direct = await Promise.all(us.map(async (u) => show(await meta.getInode(i, u as never))))
        checked++
        if (!direct.includes(cached)) stale++
      }
      for (const n of touchedNames) {
        const cached = await meta.lookup(ROOT_INO, n)
        const h = meta.head
        const us = committed.filter((u) => u >= v && u <= h)
        const direct = await Promise.all(us.map((u) => meta.lookup(ROOT_INO, n, u as never)))
        checked++
        if (!direct.includes(cached)) stale++
      }
    }
    for (let round = 0; round < 40; round++) {
      const work: Promise<unknown>[] = []
      for (let k = 0; k < 25; k++) {
        const r = rand()
        if (r < 0.4) {
          const txn = meta.begin()
          const touchedInos: Ino[] = []
          const touchedNames: string[] = []
          for (let m = 0; m < 3; m++) {
            const op = rand()
            const i = pick(inos)
            const n = pick(names)
            if (op < 0.35) txn.putInode(attrs(i, { size: Math.floor(rand() * 1000) }))
            else if (op < 0.5) txn.deleteInode(i)
            else if (op < 0.85) txn.putDentry(ROOT_INO, n, i)
            else txn.deleteDentry(ROOT_INO, n)
            if (op < 0.5) touchedInos.push(i)
            else touchedNames.push(n)
          }
          // reads in flight across the commit: they must not put an older value into the cache
          for (const i of touchedInos) work.push(meta.getInode(i))
          for (const n of touchedNames) work.push(meta.lookup(ROOT_INO, n))
          work.push(txn.commit().then((v) => {
            committed.push(v)
            return afterCommit(v, touchedInos, touchedNames)
          }))
        } else if (r < 0.6) {
          work.push(meta.getInode(pick(inos)))
        } else if (r < 0.7) {
          // A listing fills the dentry cache, across whatever commits run meanwhile.
          work.push((async () => { for await (const _ of meta.readdir(ROOT_INO)) { /* fills */ } })())
        } else {
          work.push(meta.lookup(ROOT_INO, pick(names)))
        }
      }
      await Promise.all(work)
      const bad = await mismatches(meta, inos, names)
      if (bad.length > 0) t.fail(`round ${round}: ${bad.join(', ')}`)
    }
    t.equal(stale, 0, `reads right after each commit are fresh (${checked} checks)`)
    t.same(await mismatches(meta, inos, names), [])
  })
}

/**
 * Makes the next iterator that `owner[method]` creates hold its first answer: `answered` resolves
 * once LevelDB has answered (the read is then in flight in JavaScript), and the rows reach the
 * reader only after `release()`. Later iterators are not held.
 */
function holdReads(owner: object, method: 'values' | 'iterator'): { answered: Promise<void>; release: () => void } {
  type Iter = { nextv: (n: number) => Promise<unknown[]> }
  const target = owner as Record<string, (opts: never) => Iter>
  const make = target[method]!.bind(owner)
  let answered!: () => void
  const answeredP = new Promise<void>((resolve) => { answered = resolve })
  let release!: () => void
  const gate = new Promise<void>((resolve) => { release = resolve })
  target[method] = (opts: never) => {
    target[method] = make
    const it = make(opts)
    const nextv = it.nextv.bind(it)
    it.nextv = async (n: number) => {
      const rows = await nextv(n)
      answered()
      await gate
      return rows
    }
    return it
  }
  return { answered: answeredP, release }
}

t.test('a read in flight across a commit does not put the old value into the cache', async (t) => {
  const meta = await openMeta(t.testdir(), { cacheEntries: 1 })
  t.teardown(() => meta.close())
  const x = meta.allocIno()
  const y = meta.allocIno()
  await meta.begin().putInode(attrs(x, { size: 1 })).commit()
  await meta.begin().putInode(attrs(y)).commit() // evicts x
  // Hold the read of x after LevelDB answered, until the commit below has returned.
  const hold = holdReads((meta as unknown as { sp: { inode: Space } }).sp.inode.db, 'values')
  const inFlight = meta.getInode(x)
  await hold.answered
  await meta.begin().putInode(attrs(x, { size: 2 })).commit()
  hold.release()
  t.equal((await inFlight)?.size, 1, 'the read that started before the commit saw the old value')
  t.equal((await meta.getInode(x))?.size, 2, 'and did not cache it')
  t.equal((await meta.getInode(x))?.size, 2)
})

t.test('a listing fills the dentry cache only while no commit ran since it began', async (t) => {
  const meta = await openMeta(t.testdir())
  t.teardown(() => meta.close())
  const cache = (meta as unknown as { cache: LruCache<unknown, unknown> }).cache
  const inos = Array.from({ length: 5 }, () => meta.allocIno())
  const txn = meta.begin()
  inos.forEach((i, k) => txn.putInode(attrs(i)).putDentry(ROOT_INO, `e${k}`, i))
  await txn.commit()
  cache.clear()
  for await (const _ of meta.readdir(ROOT_INO)) { /* list */ }
  t.equal(cache.size, 5, 'every name listed is cached')
  t.equal(await meta.lookup(ROOT_INO, 'e3'), inos[3])

  // A listing whose scan answered before a commit that removes a name must not cache that name.
  cache.clear()
  const hold = holdReads((meta as unknown as { sp: { dentry: Space } }).sp.dentry, 'iterator')
  const listing = (async () => { const names: string[] = []; for await (const e of meta.readdir(ROOT_INO)) names.push(e.name); return names })()
  await hold.answered
  await meta.begin().deleteDentry(ROOT_INO, 'e1').commit()
  hold.release()
  t.same(await listing, ['e0', 'e1', 'e2', 'e3', 'e4'], 'the scan saw the state when it began')
  t.equal(await meta.lookup(ROOT_INO, 'e1'), undefined, 'the removed name was not cached as present')
  t.same(await mismatches(meta, inos, ['e0', 'e1', 'e2', 'e3', 'e4']), [])
})

t.test('cached records are copies', async (t) => {
  const meta = await openMeta(t.testdir())
  t.teardown(() => meta.close())
  const x = meta.allocIno()
  const a = attrs(x, { size: 1 })
  await meta.begin().putInode(a).commit()
  a.size = 99
  const got = await meta.getInode(x)
  t.equal(got?.size, 1, 'changing the object after put does not leak')
  got!.size = 77
  t.equal((await meta.getInode(x))?.size, 1, 'changing a result does not leak')
})

t.test('LRU evicts the least recently used entry', async (t) => {
  const lru = new LruCache<number, string | null>(2)
  lru.set(1, 'a')
  lru.set(2, null)
  t.equal(lru.get(1), 'a')
  lru.set(3, 'c')
  t.equal(lru.get(2), undefined, '2 was least recently used')
  t.equal(lru.get(1), 'a')
  t.equal(lru.size, 2)
  lru.delete(1)
  t.equal(lru.get(1), undefined)
  const none = new LruCache<number, number>(0)
  none.set(1, 1)
  t.equal(none.get(1), undefined)
})

t.test('throughput', async (t) => {
  const meta = await openMeta(t.testdir())
  t.teardown(() => meta.close())
  const N = 3000
  let start = performance.now()
  const inos: Ino[] = []
  for (let k = 0; k < N; k++) {
    const i = meta.allocIno()
    inos.push(i)
    await meta.begin().putInode(attrs(i, { size: k })).putDentry(ROOT_INO, `f${k}`, i).commit()
  }
  const commits = N / ((performance.now() - start) / 1000)

  let batchStart = performance.now()
  await Promise.all(inos.slice(0, 1000).map((i, k) => meta.begin().putInode(attrs(i, { size: k + 1 })).commit()))
  const concurrent = 1000 / ((performance.now() - batchStart) / 1000)

  const M = 200_000
  start = performance.now()
  for (let k = 0; k < M; k++) await meta.lookup(ROOT_INO, `f${k % N}`)
  const lookups = M / ((performance.now() - start) / 1000)
  start = performance.now()
  for (let k = 0; k < M; k++) await meta.getInode(inos[k % N]!)
  const stats = M / ((performance.now() - start) / 1000)

  const U = 5000
  start = performance.now()
  for (let k = 0; k < U; k++) await meta.getInode(inos[k % N]!, meta.head)
  const uncached = U / ((performance.now() - start) / 1000)
  batchStart = performance.now()
  for (let k = 0; k < U; k++) await meta.lookup(ino(1), `f${k % N}`, meta.head)
  const uncachedLookups = U / ((performance.now() - batchStart) / 1000)

  t.comment(`commits (inode + dentry, no sync), sequential: ${Math.round(commits)}/s; 1000 concurrent: ${Math.round(concurrent)}/s`)
  t.comment(`from cache: lookup ${Math.round(lookups / 1000)}k/s, getInode ${Math.round(stats / 1000)}k/s`)
  t.comment(`uncached (as of head, one seek): getInode ${Math.round(uncached / 1000)}k/s, lookup ${Math.round(uncachedLookups / 1000)}k/s`)
  t.ok(commits > 500 && lookups > 50_000, 'within an order of magnitude of the expected figures')
})
