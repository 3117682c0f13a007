import t from 'tap'
import { neededVersions, pinWithin } from '../../src/meta/collect-rule.js'

// rows newest first; [version, tombstone]
const rows = (...r: Array<[number, boolean?]>) => r.map(([v, tomb]) => ({ version: BigInt(v), tombstone: tomb === true }))
const HEAD = 1000n

t.test('the current version is kept, older ones only while visible', async (t) => {
  t.same(neededVersions(rows([30], [20], [10]), 100n, [], HEAD), [true, false, false], 'all history before the horizon')
  t.same(neededVersions(rows([30], [20], [10]), 25n, [], HEAD), [true, true, false], 'v20 was current at 25')
  t.same(neededVersions(rows([30], [20], [10]), 20n, [], HEAD), [true, true, false], 'v20 is current exactly at the horizon')
  t.same(neededVersions(rows([30], [20], [10]), 19n, [], HEAD), [true, true, true], 'v10 was current at 19')
  t.same(neededVersions(rows([30], [20], [10]), 5n, [], HEAD), [true, true, true])
})

t.test('pins keep the version they see', async (t) => {
  t.same(neededVersions(rows([30], [20], [10]), 100n, [10n], HEAD), [true, false, true])
  t.same(neededVersions(rows([30], [20], [10]), 100n, [19n], HEAD), [true, false, true])
  t.same(neededVersions(rows([30], [20], [10]), 100n, [20n], HEAD), [true, true, false])
  t.same(neededVersions(rows([30], [20], [10]), 100n, [9n, 40n], HEAD), [true, false, false], 'pins outside every interval')
})

t.test('tombstones', async (t) => {
  t.same(neededVersions(rows([30, true], [20], [10]), 100n, [], HEAD), [false, false, false], 'deleted long ago: all gone')
  t.same(neededVersions(rows([30, true], [20], [10]), 25n, [], HEAD), [true, true, false], 'the tombstone hides v20')
  t.same(neededVersions(rows([30, true]), 20n, [], HEAD), [true], 'a tombstone inside the window stays')
  t.same(neededVersions(rows([30, true]), 30n, [], HEAD), [false], 'a lone tombstone at the horizon goes')
  t.same(neededVersions(rows([30, true], [20], [10]), 100n, [15n], HEAD), [true, false, true], 'it hides the pinned v10')
  t.same(neededVersions(rows([40], [30, true], [20]), 100n, [35n], HEAD), [true, false, false], 'a pin on a tombstone hiding nothing')
  t.same(neededVersions(rows([40], [30, true], [20]), 100n, [25n, 35n], HEAD), [true, true, true])
  t.same(neededVersions(rows([40, true], [30, true], [20]), 100n, [25n, 35n, 45n], HEAD), [false, true, true],
    'a tombstone whose nearest older survivor is a tombstone is redundant')
})

t.test('versions above the pass head are never dropped', async (t) => {
  t.same(neededVersions(rows([1200, true], [1100], [900], [800]), 2000n, [], HEAD), [true, true, false, false])
  t.same(neededVersions(rows([1200], [900]), 500n, [], HEAD), [true, true])
})

t.test('pinWithin', async (t) => {
  const pins = [5n, 10n, 20n]
  t.ok(pinWithin(pins, 5n, 6n))
  t.notOk(pinWithin(pins, 6n, 10n))
  t.ok(pinWithin(pins, 6n, 11n))
  t.notOk(pinWithin(pins, 21n, 100n))
  t.notOk(pinWithin([], 0n, 100n))
})
