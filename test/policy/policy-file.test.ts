import t from 'tap'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { PolicySet } from '../../src/policy/decide.js'
import { compileGlob } from '../../src/policy/glob.js'
import { PolicyDir } from '../../src/policy/policy-dir.js'
import { parsePolicyFile, PolicyError } from '../../src/policy/policy-file.js'

const EXAMPLES = fileURLToPath(new URL('../../policies/', import.meta.url))

t.test('the shipped examples parse', async (t) => {
  const hb = parsePolicyFile(await readFile(join(EXAMPLES, 'hbase-nightly.yaml'), 'utf8'), 'hbase-nightly.yaml')
  t.equal(hb.length, 1)
  const p = hb[0]!
  t.equal(p.name, 'hbase-nightly')
  t.same(p.tiers, [{ tier: 'block', days: 5 }, { tier: 'object', target: 's3-primary', days: 25 }, { tier: 'cold', target: 'glacier-archive', days: 180 }])
  t.equal(p.then, 'delete')
  t.same(p.backup, { name: 'hbase-nightly', schedule: '0 0 2 * * *', source: { kind: 'namespace', path: '/hbase' }, retain: { last: 7, daily: 14, weekly: 8, monthly: 6 } })
  t.equal(parsePolicyFile(await readFile(join(EXAMPLES, 'archive-default.yaml'), 'utf8'), 'x')[0]!.tiers[1]!.days, Infinity)
})

const BAD: Array<[string, string, number, number, RegExp]> = [
  ['syntax', 'name: a\nmatch: {path: "/x/**"\n', 3, 1, /./],
  ['unknown key', 'name: a\nmatch: { path: "/x/**" }\ntierz: []\n', 3, 1, /unknown key "tierz"/],
  ['bad days', 'name: a\nmatch: { path: "/x/**" }\ntiers:\n  - { tier: block, days: five }\n', 4, 26, /days must be a number/],
  ['bad tier', 'name: a\nmatch: { path: "/x/**" }\ntiers:\n  - { tier: tape, days: 1 }\n', 4, 13, /tier must be block, object or cold/],
  ['warmer after colder', 'name: a\nmatch: { path: "/x/**" }\ntiers:\n  - { tier: cold, days: 1 }\n  - { tier: block, days: 1 }\n', 5, 13, /block -> object -> cold/],
  ['relative path', 'name: a\nmatch: { path: "x/**" }\ntiers:\n  - { tier: block }\n', 2, 16, /must be absolute/],
  ['missing match', 'name: a\ntiers:\n  - { tier: block }\n', 1, 1, /missing "match"/],
  ['delete without days', 'name: a\nmatch: { path: "/x" }\ntiers:\n  - { tier: block }\nthen: delete\n', 5, 7, /needs days/],
  ['bad cron', 'name: a\nmatch: { path: "/x" }\ntiers:\n  - { tier: block }\nbackup:\n  schedule: "every night"\n', 6, 13, /cron/],
  ['bad size', 'name: a\nmatch: { path: "/x", minSize: lots }\ntiers:\n  - { tier: block }\n', 2, 31, /size/],
]

for (const [what, text, line, col, msg] of BAD) {
  t.test(`bad policy: ${what} -> file:line:col`, async (t) => {
    try {
      parsePolicyFile(text, 'p.yaml')
      t.fail('accepted')
    } catch (err) {
      t.ok(err instanceof PolicyError, String(err))
      const e = err as PolicyError
      t.equal(e.code, 'CONFIG')
      t.equal(`${e.line}:${e.col}`, `${line}:${col}`, e.message)
      t.match(e.message, /^p\.yaml:\d+:\d+: /)
      t.match(e.reason, msg)
    }
  })
}

t.test('globs', async (t) => {
  const cases: Array<[string, string, boolean]> = [
    ['/hbase/**', '/hbase', true], ['/hbase/**', '/hbase/a/b/c', true], ['/hbase/**', '/hbasex/a', false],
    ['/hbase/*.log', '/hbase/x.log', true], ['/hbase/*.log', '/hbase/d/x.log', false],
    ['/**/*.tmp', '/a/b/c.tmp', true], ['/**/*.tmp', '/c.tmp', true], ['/d/{a,b}/*', '/d/b/z', true], ['/d/{a,b}/*', '/d/c/z', false],
    ['/f?le', '/file', true], ['/f[0-9]', '/f7', true], ['/f[0-9]', '/fx', false], ['/a.b', '/aXb', false],
  ]
  for (const [glob, path, want] of cases) t.equal(compileGlob(glob).test(path), want, `${glob} ~ ${path}`)
})

t.test('decisions walk the tier chain (golden table)', async (t) => {
  const set = new PolicySet([
    ...parsePolicyFile(await readFile(join(EXAMPLES, 'hbase-nightly.yaml'), 'utf8'), 'hb.yaml'),
    ...parsePolicyFile(await readFile(join(EXAMPLES, 'archive-default.yaml'), 'utf8'), 'def.yaml', 1),
  ])
  const now = Date.parse('2026-11-21T00:00:00Z')
  const day = 86_400_000
  const f = (path: string, ageDays: number, tier: 'block' | 'object' | 'cold', target?: string) => ({
    path, size: 100, uid: 0, gid: 0, mtimeMs: now - ageDays * day, atimeMs: now, ctimeMs: now, tier, ...(target ? { target } : {}),
  })
  const golden: Array<[ReturnType<typeof f>, string, string | undefined]> = [
    [f('/hbase/t/a', 1, 'block'), 'stay hbase-nightly', 'block'],
    [f('/hbase/t/a', 6, 'block'), 'move hbase-nightly', 'object:s3-primary'],
    [f('/hbase/t/a', 6, 'object', 's3-primary'), 'stay hbase-nightly', 'object:s3-primary'],
    [f('/hbase/t/a', 31, 'object', 's3-primary'), 'move hbase-nightly', 'cold:glacier-archive'],
    [f('/hbase/t/a', 211, 'cold', 'glacier-archive'), 'delete hbase-nightly', undefined],
    [f('/hbase/tmp/x', 50, 'block'), 'move archive-default', 'object'],
    [f('/hbase/t/x.tmp', 1, 'block'), 'stay archive-default', 'block'],
    [f('/other', 29, 'block'), 'stay archive-default', 'block'],
    [f('/other', 3000, 'block'), 'move archive-default', 'object'],
  ]
  for (const [facts, want, to] of golden) {
    const d = set.decide(facts, now)
    t.equal(`${d.action} ${d.policy}`, want, `${facts.path} at ${Math.round((now - facts.mtimeMs) / day)} days: ${d.reason}`)
    t.equal(d.to === undefined ? undefined : d.to.target === undefined ? d.to.tier : `${d.to.tier}:${d.to.target}`, d.action === 'delete' ? undefined : to)
    t.ok(d.reason.length > 10)
  }
  t.equal(new PolicySet([]).decide(f('/x', 1, 'block'), now).action, 'none')
})

t.test('match fields, the age basis and the order rule decide which policy a file gets', async (t) => {
  const yaml = (lines: string[]): string => lines.join('\n') + '\n'
  const chain = ['tiers:', '  - { tier: block, days: 5 }', '  - { tier: object }']
  const set = new PolicySet([
    // a.yaml: first file. b.yaml: second file, one of its policies with a higher priority.
    ...parsePolicyFile(yaml(['name: big-logs', 'match: { path: "/logs/**", minSize: 1MiB, maxSize: 1GiB }', 'age: atime', ...chain]), 'a.yaml', 0),
    ...parsePolicyFile(yaml(['name: alice', 'match: { path: "/logs/**", uid: 1000 }', 'age: ctime', ...chain]), 'b.yaml', 1),
    ...parsePolicyFile(yaml(['name: ops-group', 'priority: 10', 'match: { path: "/logs/ops/**", gid: 50 }', ...chain]), 'c.yaml', 2),
    ...parsePolicyFile(yaml(['name: logs-any', 'match: { path: "/logs/**" }', ...chain]), 'd.yaml', 3),
  ])
  const now = Date.parse('2026-11-21T00:00:00Z')
  const day = 86_400_000
  const f = (path: string, over: Partial<{ size: number; uid: number; gid: number; mtimeDays: number; atimeDays: number; ctimeDays: number }> = {}) => ({
    path, size: over.size ?? 100, uid: over.uid ?? 0, gid: over.gid ?? 0, tier: 'block' as const,
    mtimeMs: now - (over.mtimeDays ?? 0) * day, atimeMs: now - (over.atimeDays ?? 0) * day, ctimeMs: now - (over.ctimeDays ?? 0) * day,
  })
  const MiB = 1024 * 1024
  const cases: Array<[ReturnType<typeof f>, string, string]> = [
    [f('/logs/x', { size: 2 * MiB }), 'big-logs', 'within minSize..maxSize: the first file wins'],
    [f('/logs/x', { size: MiB - 1 }), 'logs-any', 'below minSize'],
    [f('/logs/x', { size: 2 * 1024 * MiB }), 'logs-any', 'above maxSize'],
    [f('/logs/x', { size: 100, uid: 1000 }), 'alice', 'uid matches'],
    [f('/logs/x', { size: 100, uid: 1001 }), 'logs-any', 'uid does not'],
    [f('/logs/ops/x', { size: 2 * MiB, gid: 50 }), 'ops-group', 'priority 10 beats the earlier file'],
    [f('/logs/ops/x', { size: 2 * MiB, gid: 51 }), 'big-logs', 'gid does not match: back to file order'],
  ]
  for (const [facts, want, why] of cases) t.equal(set.select(facts)?.name, want, `${facts.path} size ${facts.size} uid ${facts.uid} gid ${facts.gid}: ${why}`)
  // Each policy's age basis: only that time decides.
  t.equal(set.decide(f('/logs/x', { size: 2 * MiB, atimeDays: 6, mtimeDays: 1, ctimeDays: 1 }), now).action, 'move', 'big-logs ages by atime')
  t.equal(set.decide(f('/logs/x', { size: 2 * MiB, atimeDays: 1, mtimeDays: 9, ctimeDays: 9 }), now).action, 'stay', 'and not by mtime or ctime')
  t.equal(set.decide(f('/logs/x', { uid: 1000, ctimeDays: 6, mtimeDays: 1, atimeDays: 1 }), now).action, 'move', 'alice ages by ctime')
  t.equal(set.decide(f('/logs/x', { uid: 1000, ctimeDays: 1, mtimeDays: 9, atimeDays: 9 }), now).action, 'stay', 'and not by mtime or atime')
  t.equal(set.decide(f('/logs/x', { mtimeDays: 6, atimeDays: 1, ctimeDays: 1 }), now).action, 'move', 'mtime is the default basis')
})

t.test('a broken file keeps its last good version; others still update', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'tierfs-pol-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const pd = new PolicyDir(dir)
  await writeFile(join(dir, 'a.yaml'), 'name: a\nmatch: { path: "/a/**" }\ntiers:\n  - { tier: block, days: 1 }\n  - { tier: object }\n')
  await writeFile(join(dir, 'b.yaml'), 'name: b\nmatch: { path: "/b/**" }\ntiers:\n  - { tier: block }\n')
  t.same((await pd.reload()).errors, [])
  t.same(pd.set.policies.map((p) => p.name), ['a', 'b'])
  await new Promise((r) => setTimeout(r, 20))
  await writeFile(join(dir, 'a.yaml'), 'name: a\nmatch: { path: "/a/**" }\ntiers:\n  - { tier: blok }\n')
  await writeFile(join(dir, 'b.yaml'), 'name: b\nmatch: { path: "/bb/**" }\ntiers:\n  - { tier: block }\n')
  const r = await pd.reload()
  t.equal(r.errors.length, 1)
  t.match(r.errors[0]!.message, /a\.yaml:4:\d+: tier must be/)
  t.same(pd.set.policies.map((p) => `${p.name}:${p.match.paths[0]}`), ['a:/a/**', 'b:/bb/**'], 'a keeps its last good version')
  await writeFile(join(dir, 'c.yaml'), 'name: b\nmatch: { path: "/c/**" }\ntiers:\n  - { tier: block }\n')
  const dup = await pd.reload()
  t.ok(dup.errors.some((e) => /already used/.test(e.message)))
})
