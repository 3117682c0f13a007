import t from 'tap'
import { TierfsError } from '../../src/errors.js'
import { alignRetrievalRange, checkPartSize, isRetrievalRangeAligned, isTreeHashAligned, partSizeFor } from '../../src/tier/glacier-range.js'

const MiB = 1024 * 1024
const code = (f: () => unknown): string => { try { f(); return 'ok' } catch (e) { return e instanceof TierfsError ? e.code : 'raw' } }

t.test('retrieval ranges are widened to MiB boundaries or the archive end', async (t) => {
  const size = 10 * MiB + 500
  t.same(alignRetrievalRange(0, 1, size), { start: 0, end: MiB - 1 })
  t.same(alignRetrievalRange(MiB + 5, 10, size), { start: MiB, end: 2 * MiB - 1 })
  t.same(alignRetrievalRange(MiB - 1, 2, size), { start: 0, end: 2 * MiB - 1 }, 'straddling a boundary')
  t.same(alignRetrievalRange(10 * MiB + 1, 10, size), { start: 10 * MiB, end: size - 1 }, 'ends at the archive end')
  t.same(alignRetrievalRange(0, size, size), { start: 0, end: size - 1 })
  t.same(alignRetrievalRange(0, 10, 300), { start: 0, end: 299 }, 'a small archive')
  for (let i = 0; i < 500; i++) {
    const offset = Math.floor(Math.random() * size)
    const length = 1 + Math.floor(Math.random() * (size - offset))
    const r = alignRetrievalRange(offset, length, size)
    t.ok(isRetrievalRangeAligned(r, size) && r.start <= offset && r.end >= offset + length - 1 && r.start > offset - MiB, `${offset}+${length}`)
  }
  t.equal(code(() => alignRetrievalRange(0, 0, size)), 'INVALID')
  t.equal(code(() => alignRetrievalRange(size, 1, size)), 'INVALID')
  t.equal(code(() => alignRetrievalRange(-1, 5, size)), 'INVALID')
})

t.test('Glacier alignment rules', async (t) => {
  const size = 5 * MiB + 10
  t.ok(isRetrievalRangeAligned({ start: MiB, end: 3 * MiB - 1 }, size))
  t.ok(isRetrievalRangeAligned({ start: 4 * MiB, end: size - 1 }, size))
  t.notOk(isRetrievalRangeAligned({ start: 1, end: MiB - 1 }, size), 'start not on a MiB')
  t.notOk(isRetrievalRangeAligned({ start: 0, end: MiB }, size), 'end+1 not on a MiB')
  t.notOk(isRetrievalRangeAligned({ start: 0, end: size }, size), 'past the end')
  t.ok(isTreeHashAligned({ start: 0, end: size - 1 }, size), 'the whole archive')
  t.ok(isTreeHashAligned({ start: 2 * MiB, end: 3 * MiB - 1 }, size), 'one leaf')
  t.ok(isTreeHashAligned({ start: 0, end: 4 * MiB - 1 }, size), 'four leaves from 0')
  t.ok(isTreeHashAligned({ start: 4 * MiB, end: size - 1 }, size), 'the last node')
  t.notOk(isTreeHashAligned({ start: MiB, end: 3 * MiB - 1 }, size), 'two leaves not on a two-leaf boundary')
  t.notOk(isTreeHashAligned({ start: 0, end: 3 * MiB - 1 }, size), 'three leaves')
  t.notOk(isTreeHashAligned({ start: 0, end: 100 }, size), 'part of a leaf')
})

t.test('part sizes: powers of two MiB, 1 MiB to 4 GiB, grown to fit 10,000 parts', async (t) => {
  for (const ok of [MiB, 2 * MiB, 8 * MiB, 4096 * MiB]) t.equal(checkPartSize(ok), ok)
  for (const bad of [0, MiB - 1, 3 * MiB, 1.5 * MiB, 8192 * MiB, NaN]) t.equal(code(() => checkPartSize(bad)), 'CONFIG', String(bad))
  t.equal(partSizeFor(100 * MiB, 8 * MiB), 8 * MiB)
  t.equal(partSizeFor(10_000 * MiB, MiB), MiB)
  t.equal(partSizeFor(10_000 * MiB + 1, MiB), 2 * MiB)
  t.equal(partSizeFor(100_000 * MiB, 8 * MiB), 16 * MiB)
})
