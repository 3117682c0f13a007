import t from 'tap'
import { asVersion, ROOT_INO } from '../../src/ids.js'
import { attrs, collectAll, ino, ManualClock, openMeta } from './helpers.js'

t.test('settled: versions no later commit can change', async (t) => {
  const clock = new ManualClock()
  const meta = await openMeta(t.testdir(), { now: clock.now })
  t.teardown(() => meta.close())
  clock.ms += 10
  const v1 = await meta.begin().putInode(attrs(meta.allocIno())).commit()
  t.ok(meta.settled(v1), 'the head')
  t.ok(meta.settled(asVersion(v1 - 1n)), 'below the head')
  t.notOk(meta.settled(meta.versionAt(clock.ms)), 'the current millisecond: a commit may still land in it')
  t.notOk(meta.settled(meta.versionAt(clock.ms + 5)), 'the future')
  clock.ms += 1
  const past = meta.versionAt(clock.ms - 1)
  t.ok(past > v1, 'an instant after the last commit')
  t.ok(meta.settled(past), 'a millisecond the clock has passed, no commit in flight')
  clock.ms -= 5
  t.notOk(meta.settled(past), 'the clock stepped back before it: a commit would land in it')
  const v2 = await meta.begin().putInode(attrs(meta.allocIno())).commit()
  t.ok(v2 <= past, 'as it does')
  clock.ms += 10
  t.ok(meta.settled(past), 'once the clock has passed it again')
})

t.test('pinStamp changes with every commit that puts or deletes a pin', async (t) => {
  const meta = await openMeta(t.testdir())
  t.teardown(() => meta.close())
  const s0 = meta.pinStamp
  await meta.begin().putInode(attrs(meta.allocIno())).commit()
  t.equal(meta.pinStamp, s0, 'other commits leave it')
  await meta.begin().putPin({ workflow: 'w', timeMs: 1000, version: meta.head }).commit()
  const s1 = meta.pinStamp
  t.not(s1, s0)
  await meta.begin().deletePin('w', 1000).commit()
  t.not(meta.pinStamp, s1)
})

t.test('listXattrsIn: the names of a span of inodes as of a version, in one scan', async (t) => {
  const clock = new ManualClock()
  const meta = await openMeta(t.testdir(), { now: clock.now })
  t.teardown(() => meta.close())
  const [a, b, c, d] = [meta.allocIno(), meta.allocIno(), meta.allocIno(), meta.allocIno()]
  clock.ms += 10
  const v1 = await meta.begin()
    .putXattr(a, 'user.x', Buffer.from('1')).putXattr(b, 'user.y', Buffer.from('2')).putXattr(b, 'user.a', Buffer.from('3'))
    .putXattr(d, 'user.out', Buffer.from('4'))
    .commit()
  clock.ms += 10
  await meta.begin().deleteXattr(b, 'user.y').putXattr(c, 'user.z', Buffer.from('5')).commit()
  t.same(await collectAll(meta.listXattrsIn(a, c, v1)), [{ ino: a, name: 'user.x' }, { ino: b, name: 'user.a' }, { ino: b, name: 'user.y' }])
  t.same(await collectAll(meta.listXattrsIn(b, c)), [{ ino: b, name: 'user.a' }, { ino: c, name: 'user.z' }])
  t.same(await collectAll(meta.listXattrsIn(ino(c), ino(c), v1)), [])
  t.same(await collectAll(meta.listXattrsIn(ROOT_INO, ROOT_INO)), [])
})
