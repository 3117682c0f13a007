import t from 'tap'
import { asVersion, ROOT_INO } from '../../src/ids.js'
import { attrs, ino, ManualClock, openMeta } from './helpers.js'

t.test('getInodeVersioned: the inode record a read as of V sees, with the version that wrote it', async (t) => {
  const clock = new ManualClock()
  const meta = await openMeta(t.testdir(), { now: clock.now })
  t.teardown(() => meta.close())
  const x = meta.allocIno()
  const y = meta.allocIno()
  const v0 = meta.head
  clock.ms += 10
  const v1 = await meta.begin().putInode(attrs(x, { size: 1 })).putInode(attrs(y)).commit()
  clock.ms += 10
  const v2 = await meta.begin().putInode(attrs(x, { size: 2 })).commit()
  clock.ms += 10
  const v3 = await meta.begin().putDentry(ROOT_INO, 'unrelated', y).commit()
  clock.ms += 10
  const v4 = await meta.begin().deleteInode(x).commit()

  t.equal(await meta.getInodeVersioned(x, v0), undefined, 'not yet created')
  t.same(await meta.getInodeVersioned(x, v1), { attrs: attrs(x, { size: 1 }), version: v1 })
  t.equal((await meta.getInodeVersioned(x, asVersion(v2 - 1n)))?.version, v1, 'just before the rewrite')
  t.same(await meta.getInodeVersioned(x, v2), { attrs: attrs(x, { size: 2 }), version: v2 })
  t.equal((await meta.getInodeVersioned(x, v3))?.version, v2, 'commits that do not touch the inode leave its version')
  t.equal(await meta.getInodeVersioned(x, v4), undefined, 'deleted')
  t.equal(await meta.getInodeVersioned(x), undefined, 'deleted, now')
  t.equal((await meta.getInodeVersioned(y))?.version, v1, 'newest, untouched since v1')
  t.same((await meta.getInodeVersioned(y))?.attrs, await meta.getInode(y), 'same attributes as getInode')
  t.equal(await meta.getInodeVersioned(ino(12345)), undefined, 'never existed')
  t.ok((await meta.getInodeVersioned(ROOT_INO))!.version <= v0, 'the root was made at open')
})
