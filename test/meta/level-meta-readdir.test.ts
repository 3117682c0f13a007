import t from 'tap'
import { asVersion, ROOT_INO } from '../../src/ids.js'
import { attrs, collectAll, ManualClock, openMeta } from './helpers.js'
import { gc } from '../support/gc.js'

const byBytes = (a: string, b: string): number => Buffer.compare(Buffer.from(a), Buffer.from(b))
const names = async (it: AsyncIterable<{ name: string }>): Promise<string[]> => (await collectAll(it)).map((e) => e.name)

t.test('order, after, tombstones and as-of views', async (t) => {
  const clock = new ManualClock()
  const meta = await openMeta(t.testdir(), { now: clock.now })
  t.teardown(() => meta.close())
  const dir = meta.allocIno()
  const other = meta.allocIno()
  const initial = ['b', 'a', 'ab', 'a\u00e9', 'c', 'B', 'z'.repeat(200), '\u4e2d\u6587']
  const txn = meta.begin().putInode(attrs(dir, { type: 'dir' })).putInode(attrs(other, { type: 'dir' }))
  for (const n of initial) txn.putDentry(dir, n, meta.allocIno())
  txn.putDentry(other, 'a', meta.allocIno()) // a neighbouring directory must not leak in
  clock.ms += 1
  const v1 = await txn.commit()

  const sorted = [...initial].sort(byBytes)
  t.same(await names(meta.readdir(dir)), sorted)
  t.same(await names(meta.readdir(dir, undefined, 'a')), sorted.slice(sorted.indexOf('a') + 1))
  t.same(await names(meta.readdir(dir, undefined, 'aa')), sorted.slice(sorted.indexOf('ab')), 'after a name that does not exist')
  t.same(await names(meta.readdir(dir, undefined, '\u4e2d\u6587')), [])
  t.same(await names(meta.readdir(dir, undefined, '')), sorted)
  t.ok(await meta.hasChildren(dir))
  t.notOk(await meta.hasChildren(meta.allocIno()))

  clock.ms += 1
  const v2 = await meta.begin().deleteDentry(dir, 'ab').deleteDentry(dir, 'b').putDentry(dir, 'aa', dir).commit()
  clock.ms += 1
  const v3 = await meta.begin().putDentry(dir, 'b', other).commit()
  const now2 = sorted.filter((n) => n !== 'ab' && n !== 'b').concat('aa').sort(byBytes)
  t.same(await names(meta.readdir(dir, v2)), now2)
  t.same(await names(meta.readdir(dir, v1)), sorted, 'the old view is unchanged')
  t.same(await names(meta.readdir(dir, asVersion(v1 - 1n))), [], 'before the directory existed')
  t.same(await names(meta.readdir(dir, v3)), [...now2, 'b'].sort(byBytes))
  t.same(await names(meta.readdir(dir, v2, 'a')), now2.slice(now2.indexOf('a') + 1), 'after, as of a version')
  t.same((await collectAll(meta.readdir(dir))).find((e) => e.name === 'b'), { name: 'b', ino: other })

  clock.ms += 1
  const del = meta.begin()
  for (const n of [...initial, 'aa']) del.deleteDentry(dir, n)
  await del.commit()
  t.same(await names(meta.readdir(dir)), [])
  t.notOk(await meta.hasChildren(dir), 'only tombstones left')
  t.ok(await meta.hasChildren(dir, v3))
})

t.test('resumable listing with after, across concurrent changes', async (t) => {
  const meta = await openMeta(t.testdir())
  t.teardown(() => meta.close())
  const dir = meta.allocIno()
  const txn = meta.begin()
  for (let i = 0; i < 100; i++) txn.putDentry(dir, `f${String(i).padStart(3, '0')}`, meta.allocIno())
  await txn.commit()
  const seen: string[] = []
  let after: string | undefined
  for (;;) {
    const page: string[] = []
    for await (const e of meta.readdir(dir, undefined, after)) {
      page.push(e.name)
      if (page.length === 7) break
    }
    if (page.length === 0) break
    seen.push(...page)
    after = page.at(-1)
    if (seen.length === 14) await meta.begin().deleteDentry(dir, 'f050').putDentry(dir, 'f000x', dir).commit()
  }
  t.equal(seen.length, 99, 'a deleted entry ahead of the cursor is not listed, one inserted behind it is not either')
  t.notOk(seen.includes('f050'))
  t.notOk(seen.includes('f000x'))
  t.same(seen, [...seen].sort(byBytes))
})

t.test('20k entries are listed with bounded memory', async (t) => {
  const meta = await openMeta(t.testdir())
  t.teardown(() => meta.close())
  const dir = meta.allocIno()
  const N = 20_000
  const pad = 'p'.repeat(180)
  for (let i = 0; i < N; i += 2000) {
    const txn = meta.begin()
    for (let j = i; j < i + 2000; j++) txn.putDentry(dir, `${pad}${String(j).padStart(6, '0')}`, meta.allocIno())
    await txn.commit()
  }
  // a second version of every tenth entry and tombstones for every 100th
  const txn = meta.begin()
  for (let j = 0; j < N; j += 10) txn.putDentry(dir, `${pad}${String(j).padStart(6, '0')}`, dir)
  for (let j = 5; j < N; j += 100) txn.deleteDentry(dir, `${pad}${String(j).padStart(6, '0')}`)
  await txn.commit()

  // The first entries warm up code and the iterator; memory must not grow after that.
  let base = 0
  let peak = 0
  let count = 0
  let prev: Buffer | undefined
  let ordered = true
  for await (const e of meta.readdir(dir)) {
    const b = Buffer.from(e.name)
    if (prev !== undefined && Buffer.compare(prev, b) >= 0) ordered = false
    prev = b
    if (++count % 2000 === 0) {
      gc()
      const used = process.memoryUsage().heapUsed
      if (count === 2000) base = used
      else peak = Math.max(peak, used - base)
    }
  }
  t.equal(count, N - N / 100)
  t.ok(ordered, 'byte order')
  // Holding the listing would take > 18k * 200 bytes of names alone.
  t.ok(peak < 1024 * 1024, `heap growth while listing ${(peak / 1024).toFixed(0)} KiB`)
  const start = performance.now()
  let timed = 0
  for await (const _ of meta.readdir(dir)) timed++
  const ms = performance.now() - start
  t.comment(`readdir of ${timed} entries: ${Math.round(timed / (ms / 1000))} entries/s, heap growth ${(peak / 1024).toFixed(0)} KiB`)
})
