import t from 'tap'
import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { fileURLToPath } from 'node:url'
import { Level } from 'level'
import { asTierId, ROOT_INO } from '../../src/ids.js'
import { LevelMeta } from '../../src/meta/level-meta.js'
import { attrs, chunkId, chunkRec, collectAll, ManualClock, openMeta, packId, packRec } from './helpers.js'

const CHILD = fileURLToPath(new URL('fixtures/lock-child.ts', import.meta.url))

function child(path: string, mode: 'hold' | 'try'): { proc: ChildProcess; line: Promise<string> } {
  const proc = spawn(process.execPath, [...process.execArgv, CHILD, path, mode], { stdio: ['pipe', 'pipe', 'inherit'] })
  const line = new Promise<string>((resolve, reject) => {
    let out = ''
    proc.stdout!.on('data', (d: Buffer) => {
      out += d.toString()
      if (out.includes('\n')) resolve(out.trim())
    })
    proc.once('exit', (code) => reject(new Error(`child exited (${code}) before reporting: ${out}`)))
  })
  return { proc, line }
}

async function rawSys(path: string, name: string, value: Buffer): Promise<void> {
  const db = new Level<Buffer, Buffer>(path, { keyEncoding: 'buffer', valueEncoding: 'buffer' })
  await db.sublevel<Buffer, Buffer>('sys', { keyEncoding: 'buffer', valueEncoding: 'buffer' }).put(Buffer.from(name), value)
  await db.close()
}

t.test('reopen keeps everything and the clock stays monotonic', async (t) => {
  const path = t.testdir()
  const clock = new ManualClock()
  let meta = await openMeta(path, { now: clock.now })
  const x = meta.allocIno()
  const spare = meta.allocIno()
  const p = packId('p')
  await meta.begin()
    .putInode(attrs(x, { size: 3, target: 'not-a-symlink-but-stored' }))
    .putDentry(ROOT_INO, 'f', x)
    .putFileMap(x, { kind: 'inline', data: Buffer.from('abc') })
    .putXattr(x, 'user.a', Buffer.from('1'))
    .putPack(packRec(p, { liveBytes: 1000 }))
    .putChunk(chunkRec('c', p, { refs: 1 }))
    .putPin({ workflow: 'w', timeMs: 1, version: meta.head })
    .putSys('marker', Buffer.from('m'))
    .commit()
  clock.ms += 5
  const last = await meta.begin().putInode(attrs(x, { size: 4 })).commit()
  await meta.close()
  await meta.close()

  clock.ms -= 3_600_000 // the wall clock stepped back an hour across the restart
  meta = await openMeta(path, { now: clock.now })
  t.teardown(() => meta.close())
  t.equal(meta.head, last)
  t.equal((await meta.getInode(x))?.size, 4)
  t.equal(await meta.lookup(ROOT_INO, 'f'), x)
  t.same(await meta.getFileMap(x), { kind: 'inline', data: Buffer.from('abc') })
  t.same(await meta.getXattr(x, 'user.a'), Buffer.from('1'))
  t.equal((await meta.getChunk(chunkId('c')))?.refs, 1)
  t.equal((await meta.getPack(p))?.liveBytes, 1000)
  t.equal((await collectAll(meta.pins('w'))).length, 1)
  t.same(await meta.getSys('marker'), Buffer.from('m'))
  t.ok(meta.allocIno() > spare, 'allocated inode numbers are never reused')

  const next = await meta.begin().putInode(attrs(x, { size: 5 })).commit()
  t.ok(next > last, 'versions keep increasing although the clock went back')
  clock.ms -= 1000
  const after = await meta.begin().putInode(attrs(x, { size: 6 })).commit()
  t.ok(after > next, 'and within a session')
  t.equal((await meta.getInode(x, last))?.size, 4)
  t.equal((await meta.getInode(x, next))?.size, 5)
})

t.test('allocated inode numbers are persisted by the next commit of any kind', async (t) => {
  const path = t.testdir()
  let meta = await openMeta(path)
  const inos = [meta.allocIno(), meta.allocIno(), meta.allocIno()]
  await meta.begin().putSys('x', Buffer.alloc(0)).commit()
  await meta.close()
  meta = await openMeta(path)
  t.teardown(() => meta.close())
  t.equal(meta.allocIno(), inos[2]! + 1)
})

t.test('inode numbers stay below 2^32', async (t) => {
  const path = t.testdir()
  await (await openMeta(path)).close()
  const b = Buffer.alloc(4)
  b.writeUInt32BE(0xfffffffe)
  await rawSys(path, 'meta.ino', b)
  const meta = await openMeta(path)
  t.teardown(() => meta.close())
  t.equal(meta.allocIno(), 0xffffffff)
  t.throws(() => meta.allocIno(), { code: 'NO_SPACE' })
  await meta.begin().putInode(attrs(0xffffffff)).commit()
  t.equal((await meta.getInode(attrs(0xffffffff).ino))?.ino, 0xffffffff)
})

t.test('a second open of the same path fails with LOCKED', async (t) => {
  const path = t.testdir()
  const meta = await openMeta(path)
  t.teardown(() => meta.close())
  const second = new LevelMeta({ path })
  await t.rejects(second.ready(), { code: 'LOCKED', name: 'TierfsError' })
  await t.rejects(second.ready(), { code: 'LOCKED' }, 'still locked on retry')
  await second.close()

  const c = child(path, 'try')
  t.equal(await c.line, 'error LOCKED', 'from a child process')
  await once(c.proc, 'exit')
})

t.test('a store held by another process fails with LOCKED here', async (t) => {
  const path = t.testdir()
  const c = child(path, 'hold')
  t.equal(await c.line, 'open')
  const meta = new LevelMeta({ path })
  await t.rejects(meta.ready(), { code: 'LOCKED' })
  c.proc.stdin!.end()
  await once(c.proc, 'exit')
  await meta.ready()
  t.ok(await meta.getInode(ROOT_INO), 'opens once the other process let go')
  await meta.close()
})

t.test('unknown format versions and foreign databases fail with STORE', async (t) => {
  const path = t.testdir()
  await (await openMeta(path)).close()
  await rawSys(path, 'meta.format', Buffer.from([9]))
  await t.rejects(new LevelMeta({ path }).ready(), { code: 'STORE', message: /unknown format version/ })
  const foreign = t.testdir()
  const db = new Level(foreign)
  await db.put('hello', 'world')
  await db.close()
  await t.rejects(new LevelMeta({ path: foreign }).ready(), { code: 'STORE' })
  // the failed open released the lock
  const again = new Level(foreign)
  await again.open()
  await again.close()
})

t.test('use outside ready..close fails with CLOSED; close waits for commits', async (t) => {
  const path = t.testdir()
  const early = new LevelMeta({ path })
  t.throws(() => early.begin(), { code: 'CLOSED' })
  t.throws(() => early.allocIno(), { code: 'CLOSED' })
  await Promise.all([early.ready(), early.ready()])
  const x = early.allocIno()
  const txn = early.begin().putInode(attrs(x))
  const pending = early.begin().putInode(attrs(x, { size: 1, tier: asTierId('object') })).commit()
  const closed = early.close()
  await pending
  await closed
  await t.rejects(txn.commit(), { code: 'CLOSED' })
  await t.rejects(early.getInode(x), { code: 'CLOSED' })
  await t.rejects(early.ready(), { code: 'CLOSED' })
  await t.rejects(collectAll(early.readdir(ROOT_INO)), { code: 'CLOSED' })
  t.throws(() => early.begin(), { code: 'CLOSED' })
  const meta = await openMeta(path)
  t.teardown(() => meta.close())
  t.equal((await meta.getInode(x))?.tier, 'object', 'the commit issued before close landed')
})
