import t from 'tap'
import { HybridClock, versionAt, versionMs } from '../../src/meta/clock.js'
import { asVersion } from '../../src/ids.js'

t.test('versions follow the wall clock and count within a millisecond', async (t) => {
  let now = 1000
  const clock = new HybridClock({ now: () => now })
  const a = clock.next()
  t.equal(a, 1000n << 16n)
  t.equal(clock.next(), (1000n << 16n) + 1n)
  now = 1001
  t.equal(clock.next(), 1001n << 16n)
  t.equal(versionMs(clock.last), 1001)
})

t.test('strictly increasing when the wall clock steps back', async (t) => {
  let now = 5000
  const clock = new HybridClock({ now: () => now })
  const seen: bigint[] = [clock.next()]
  now = 10
  for (let i = 0; i < 70_000; i++) seen.push(clock.next())
  for (let i = 1; i < seen.length; i++) if (seen[i]! <= seen[i - 1]!) t.fail(`not increasing at ${i}`)
  t.ok(seen.at(-1)! > 5000n << 16n, 'counter carries into the millisecond bits')
})

t.test('resumes above a restored version and never moves back', async (t) => {
  const clock = new HybridClock({ now: () => 1, last: 99n << 16n })
  t.equal(clock.next(), (99n << 16n) + 1n)
  clock.observe(5n)
  t.equal(clock.next(), (99n << 16n) + 2n)
  clock.observe(200n << 16n)
  t.equal(clock.next(), (200n << 16n) + 1n)
})

t.test('versionAt includes every commit of that millisecond', async (t) => {
  t.equal(versionAt(1234), asVersion((1234n << 16n) | 0xffffn))
  const clock = new HybridClock({ now: () => 1234 })
  for (let i = 0; i < 10; i++) t.ok(clock.next() <= versionAt(1234))
  t.ok(versionAt(1233) < (1234n << 16n))
  t.equal(clock.versionAt(7), versionAt(7))
  t.equal(new HybridClock().nowMs() > 0, true)
})
