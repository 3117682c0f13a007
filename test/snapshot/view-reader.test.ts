import t from 'tap'
import { asIno, asTierId, asVersion, type Ino, type Version } from '../../src/ids.js'
import type { DirEntry, InodeAttrs } from '../../src/meta/types.js'
import { ViewReader, type ViewReaderMeta } from '../../src/snapshot/view-reader.js'
import { gc } from '../support/gc.js'

const V1 = asVersion(1_000n << 16n)
const V2 = asVersion(2_000n << 16n)

function attrsAt(ino: number, v: Version): InodeAttrs {
  const t0 = v * 1_000n
  return {
    ino: asIno(ino), type: 'file', mode: 0o644, uid: 1000, gid: 1000, size: Number(v % 100_000n) + ino, blocks: 8, nlink: 1, rdev: 0,
    atimeNs: t0, mtimeNs: t0 + 1n, ctimeNs: t0 + 2n, btimeNs: t0 + 3n, tier: asTierId('block'),
  }
}

/** A store whose every record depends on the version read, counting the reads that reach it. */
function versionedStore(settled: (v: Version) => boolean = () => true): ViewReaderMeta & { reads: number } {
  const meta = {
    reads: 0,
    settled,
    async getInode(ino: Ino, asOf?: Version) { meta.reads++; return attrsAt(ino, asOf as Version) },
    async lookup(parent: Ino, name: string, asOf?: Version) { meta.reads++; return asIno(Number((asOf as Version) % 1_000n) + name.length + parent) },
    async getXattr(ino: Ino, name: string, asOf?: Version) { meta.reads++; return Buffer.from(`${name}@${asOf}#${ino}`) },
    async listXattrs(ino: Ino, asOf?: Version) { meta.reads++; return [`user.v${asOf}`, `user.i${ino}`] },
    async *listXattrsIn() { meta.reads++ },
    async *readdir(): AsyncIterable<DirEntry> { meta.reads++ },
  }
  return meta
}

t.test('a cached read never answers for another version', async (t) => {
  const meta = versionedStore()
  const r = new ViewReader(meta)
  const x = asIno(7)
  for (let round = 0; round < 2; round++) {
    for (const v of [V1, V2]) {
      t.same(await r.getInode(x, v), attrsAt(x, v))
      t.equal(await r.lookup(asIno(1), 'name', v), Number(v % 1_000n) + 5)
      t.same(await r.listXattrs(x, v), [`user.v${v}`, 'user.i7'])
      t.equal((await r.getXattr(x, 'user.k', v))?.toString(), `user.k@${v}#7`)
    }
  }
  t.equal(meta.reads, 8, 'each (version, key) read from the store once')
  t.same(await r.getInode(x, asVersion(V1 + 1n)), attrsAt(x, asVersion(V1 + 1n)))
  t.equal(meta.reads, 9, 'a neighbouring version is read on its own')
  const cachedAttrs = await r.getInode(x, V1) as InodeAttrs
  t.throws(() => { cachedAttrs.size = 1 }, TypeError, 'cached attributes are frozen')
  r.clear()
  await r.getInode(x, V1)
  t.equal(meta.reads, 10, 'cleared')
})

t.test('a version that is not settled yet is read from the store every time', async (t) => {
  const meta = versionedStore((v) => v <= V1)
  const r = new ViewReader(meta)
  for (let i = 0; i < 3; i++) {
    await r.getInode(asIno(3), V2)
    await r.lookup(asIno(1), 'a', V2)
    await r.listXattrs(asIno(3), V2)
    await r.getXattr(asIno(3), 'user.a', V2)
  }
  t.equal(meta.reads, 12)
  t.equal(r.entries, 0)
  await r.getInode(asIno(3), V1)
  await r.getInode(asIno(3), V1)
  t.equal(meta.reads, 13, 'a settled one is cached')
})

t.test('memory stays within the bound, whatever the number of entries read', async (t) => {
  const maxBytes = 4 * 1024 * 1024
  const r = new ViewReader(versionedStore(), maxBytes)
  let over = 0
  for (let i = 1; i <= 60_000; i++) {
    const v = i % 2 === 0 ? V1 : V2
    await r.getInode(asIno(i), v)
    await r.lookup(asIno(1), `file-${i}.dat`, v)
    await r.listXattrs(asIno(i), v)
    if (i % 4 === 0) await r.getXattr(asIno(i), 'user.tag', v)
    if (r.bytes > maxBytes) over++
  }
  t.equal(over, 0, 'the estimate never exceeds the bound')
  t.ok(r.entries > 5_000 && r.entries < 40_000, `${r.entries} entries kept`)
  // What the cache holds: the heap with it full, less the heap once it is cleared.
  const heap = (): number => { gc(); return process.memoryUsage().heapUsed + process.memoryUsage().arrayBuffers }
  const full = heap()
  r.clear()
  const held = full - heap()
  t.ok(held < 1.5 * maxBytes, `${(held / 1048576).toFixed(1)} MiB held for a ${maxBytes / 1048576} MiB bound`)
})
