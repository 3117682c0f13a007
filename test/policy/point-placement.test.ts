import t from 'tap'
import { readdir, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { kindRank, PolicySet } from '../../src/policy/decide.js'
import { parsePolicyFile } from '../../src/policy/policy-file.js'
import { placePoint } from '../../src/policy/point-placement.js'

const GOLDEN = fileURLToPath(new URL('./golden/', import.meta.url))

interface Golden {
  description: string
  now: string
  policies: Array<{ file: string; text: string }>
  points: Array<{ workflow: string; time: string }>
  expected: Array<Record<string, unknown> & { point: string }>
}

function policySet(g: Golden): PolicySet {
  return new PolicySet(g.policies.flatMap((p, i) => parsePolicyFile(p.text, p.file, i * 100)))
}

t.test('golden files: where restore-point data belongs, with reasons', async (t) => {
  const files = (await readdir(GOLDEN)).filter((f) => f.startsWith('point-placement') && f.endsWith('.json')).sort()
  t.ok(files.length >= 1, `${files.length} golden files`)
  for (const file of files) {
    const g = JSON.parse(await readFile(join(GOLDEN, file), 'utf8')) as Golden
    const set = policySet(g)
    const got = g.points.map((p) => ({ point: `${p.workflow} ${p.time}`, ...placePoint({ workflow: p.workflow, timeMs: Date.parse(p.time) }, set, Date.parse(g.now)) }))
    t.same(got, g.expected, `${file}: ${g.description}`)
  }
})

t.test('a point follows the same chain a file of the same age does, whatever then says', async (t) => {
  const g = JSON.parse(await readFile(join(GOLDEN, 'point-placement.json'), 'utf8')) as Golden
  const set = policySet(g)
  const now = Date.parse(g.now)
  for (const days of [0, 4.99, 5, 12, 29.9, 30, 209, 210, 1000]) {
    const timeMs = now - days * 86_400_000
    const point = placePoint({ workflow: 'hbase-nightly', timeMs }, set, now)
    const file = set.decide({ path: '/hbase/f', size: 1, uid: 0, gid: 0, mtimeMs: timeMs, atimeMs: timeMs, ctimeMs: timeMs, tier: 'block' }, now)
    if (file.action === 'delete') t.same(point.to, { tier: 'cold', target: 'glacier-archive' }, `${days} days: a file is deleted, point data stays on the last tier`)
    else t.same(point.to, file.to, `${days} days: ${point.to?.tier ?? 'stays'}`)
  }
  t.same([kindRank('block'), kindRank('object'), kindRank('cold')], [0, 1, 2])
})
