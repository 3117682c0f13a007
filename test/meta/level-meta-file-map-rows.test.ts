import t from 'tap'
import type { LevelMeta } from '../../src/meta/level-meta.js'
import { attrs, chunkId, collectAll, openMeta } from './helpers.js'

const extents = (...seeds: string[]) => ({
  kind: 'extents' as const,
  extents: seeds.map((s, i) => ({ offset: i * 100, length: 100, id: chunkId(s) })),
})

async function rows(meta: LevelMeta, from?: Parameters<LevelMeta['fileMapRows']>[0]): Promise<string[]> {
  return (await collectAll(meta.fileMapRows(from))).map((r) => `${r.ino}@${r.version} ${r.tombstone ? 'tomb' : r.chunkIds().map((id) => id.slice(0, 4)).join(',') || 'inline'}`)
}

t.test('fileMapRows: every row, tombstones included, inode order, newest first, from an inode on', async (t) => {
  const meta = await openMeta(t.testdir())
  t.teardown(() => meta.close())
  const a = meta.allocIno()
  const b = meta.allocIno()
  const a1 = await meta.begin().putInode(attrs(a)).putFileMap(a, extents('A', 'B')).commit()
  const b1 = await meta.begin().putInode(attrs(b)).putFileMap(b, { kind: 'inline', data: Buffer.from('x') }).commit()
  const a2 = await meta.begin().putInode(attrs(a)).putFileMap(a, extents('C')).commit()
  const a3 = await meta.begin().deleteInode(a).commit()
  const A = chunkId('A').slice(0, 4)
  const B = chunkId('B').slice(0, 4)
  const C = chunkId('C').slice(0, 4)
  t.same(await rows(meta), [`${a}@${a3} tomb`, `${a}@${a2} ${C}`, `${a}@${a1} ${A},${B}`, `${b}@${b1} inline`])
  t.same(await rows(meta, b), [`${b}@${b1} inline`], 'from an inode on')
  t.same((await collectAll(meta.fileMapVersions())).length, 3, 'fileMapVersions still leaves tombstones out')
})
