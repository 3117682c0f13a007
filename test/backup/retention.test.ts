import t from 'tap'
import { readdir, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { applyRetention, formatDuration, isoWeek } from '../../src/backup/retention.js'
import type { Retention } from '../../src/policy/policy-file.js'

const GOLDEN = fileURLToPath(new URL('./golden/', import.meta.url))

interface Golden {
  description: string
  now: string
  rule: Retention
  points: Array<{ workflow: string; time: string }>
  expected: Array<{ workflow: string; time: string; keep: boolean; reasons: string[] }>
}

t.test('golden files: keep/remove with every reason', async (t) => {
  const files = (await readdir(GOLDEN)).filter((f) => f.endsWith('.json')).sort()
  t.ok(files.length >= 6, `${files.length} golden files`)
  for (const file of files) {
    const g = JSON.parse(await readFile(join(GOLDEN, file), 'utf8')) as Golden
    const points = g.points.map((p) => ({ workflow: p.workflow, name: p.time, timeMs: Date.parse(p.time) }))
    const got = applyRetention(points, g.rule, Date.parse(g.now))
    t.same(got.map((d) => ({ workflow: d.point.workflow, time: d.point.name, keep: d.keep, reasons: d.reasons })), g.expected, `${file}: ${g.description}`)
    t.ok(got.every((d, i) => d.point === points[i]), `${file}: decisions come in input order, carrying the caller's objects`)
  }
})

t.test('the decision does not depend on input order', async (t) => {
  const g = JSON.parse(await readFile(join(GOLDEN, 'combined-nightly.json'), 'utf8')) as Golden
  const points = g.points.map((p) => ({ workflow: p.workflow, name: p.time, timeMs: Date.parse(p.time) }))
  const shuffled = [...points].reverse()
  const a = applyRetention(points, g.rule, Date.parse(g.now))
  const b = applyRetention(shuffled, g.rule, Date.parse(g.now))
  const key = (ds: typeof a) => ds.map((d) => `${d.point.name} ${d.keep} ${d.reasons.join('|')}`).sort()
  t.same(key(b), key(a))
})

t.test('ISO weeks and durations', async (t) => {
  t.equal(isoWeek(Date.parse('2021-01-03T23:59:59Z')), '2020-W53', 'a Sunday in January can belong to the previous ISO year')
  t.equal(isoWeek(Date.parse('2024-12-30T00:00:00Z')), '2025-W01', 'a Monday in December can open the next ISO year')
  t.equal(isoWeek(Date.parse('1969-12-29T00:00:00Z')), '1970-W01', 'before the epoch too')
  t.equal(formatDuration(172_800_000), '2d')
  t.equal(formatDuration(5_400_000), '1h30m')
  t.equal(formatDuration(0), '0s')
})

t.test('malformed rules are refused', async (t) => {
  for (const rule of [{ last: -1 }, { daily: 1.5 }, { withinMs: Number.NaN }] as Retention[]) {
    t.throws(() => applyRetention([], rule, 0), { name: 'TierfsError', code: 'INVALID' }, JSON.stringify(rule))
  }
})
