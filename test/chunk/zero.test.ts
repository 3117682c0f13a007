import t from 'tap'
import { dataBlocks, isAllZero } from '../../src/chunk/zero.js'

t.test('isAllZero', async (t) => {
  t.ok(isAllZero(Buffer.alloc(0)))
  t.ok(isAllZero(Buffer.alloc(200_000)))
  const b = Buffer.alloc(200_000)
  b[199_999] = 1
  t.notOk(isAllZero(b), 'a byte past the first 64 KiB counts')
})

t.test('dataBlocks counts 4 KiB pages holding data, as a local filesystem allocates', async (t) => {
  t.equal(dataBlocks(Buffer.alloc(0)), 0)
  t.equal(dataBlocks(Buffer.alloc(1 << 20)), 0, 'zeros are holes')
  const b = Buffer.alloc(1 << 20)
  b[0] = 1
  b[5000] = 1
  b[(1 << 20) - 1] = 1
  t.equal(dataBlocks(b), 3 * 8, 'three pages of 8 blocks')
  t.equal(dataBlocks(Buffer.from('hello')), 1, 'a short tail counts as far as it goes')
  const tail = Buffer.alloc(4096 + 600)
  tail[4100] = 7
  t.equal(dataBlocks(tail), 2, 'the last partial page: ceil(600 / 512)')
})
