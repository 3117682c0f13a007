import t from 'tap'
import { createHash, randomBytes } from 'node:crypto'
import { HashPool } from '../../src/chunk/hash-pool.js'

const hex = (b: Buffer): string => createHash('sha256').update(b).digest('hex')

t.test('digests equal the in-place hash, small and large, many at once', async (t) => {
  const pool = new HashPool(2)
  t.teardown(() => pool.close())
  const bufs = [0, 1, 64 * 1024 - 1, 64 * 1024, 1 << 20, (1 << 20) + 7].map((n) => randomBytes(n))
  t.same(await Promise.all(bufs.map((b) => pool.sha256Hex(b))), bufs.map(hex))
  const many = Array.from({ length: 40 }, () => randomBytes(300 * 1024))
  t.same(await Promise.all(many.map((b) => pool.sha256Hex(b))), many.map(hex), '40 in flight over 2 workers')
})

t.test("the caller's bytes are neither taken nor changed, nor are their neighbours'", async (t) => {
  const pool = new HashPool(1)
  t.teardown(() => pool.close())
  const span = randomBytes(3 << 20)
  const before = Buffer.from(span)
  const views = [0, 1, 2].map((i) => span.subarray(i << 20, (i + 1) << 20))
  const digests = await Promise.all(views.map((v) => pool.sha256Hex(v)))
  t.same(digests, views.map(hex))
  t.equal(span.length, 3 << 20, 'the shared buffer is still attached')
  t.ok(span.equals(before), 'and unchanged')
})

t.test('after close, hashing goes on in place', async (t) => {
  const pool = new HashPool(1)
  const b = randomBytes(1 << 20)
  t.equal(await pool.sha256Hex(b), hex(b))
  await pool.close()
  await pool.close()
  t.equal(await pool.sha256Hex(b), hex(b))
})

t.test('close returns whether the workers are idle or busy, and fails what was in flight with CLOSED', async (t) => {
  for (let i = 0; i < 20; i++) {
    const pool = new HashPool(1)
    const a = randomBytes(1 << 20)
    t.equal(await pool.sha256Hex(a), hex(a))
    const busy = pool.sha256Hex(randomBytes(4 << 20)).then(() => 'done', (e: { code?: string }) => e.code)
    await pool.close()
    t.ok(['done', 'CLOSED'].includes(await busy), 'in flight: finished or CLOSED, never left hanging')
  }
})
