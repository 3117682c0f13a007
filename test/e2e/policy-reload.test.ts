import t from 'tap'
import { readFile, writeFile, mkdir } from 'node:fs/promises'
import { join } from 'node:path'
import { tempMount } from '../support/tierfs-mount.js'
import { eventually } from '../support/tiering-fixture.js'

t.test('policy files are picked up on the reload interval without a restart; a broken edit keeps the last good one', async (t) => {
  const m = await tempMount({ config: { policies: { reloadSeconds: 1 }, migrate: { schedule: '' } } })
  t.teardown(() => m.cleanup())
  await mkdir(join(m.mnt, 'logs'))
  await writeFile(join(m.mnt, 'logs/a.log'), 'x')
  const explain = async (): Promise<string> => (await m.cli(['policy', 'explain', m.mnt, '/logs/a.log'])).stdout
  t.match(await explain(), /no policy matches/)

  const dir = join(m.store, 'policies')
  await mkdir(dir, { recursive: true })
  const file = join(dir, 'logs.yaml')
  await writeFile(file, ['name: logs-v1', 'match: { path: "/logs/**" }', 'tiers:', '  - { tier: block, days: 5 }', '  - { tier: object }', ''].join('\n'))
  await eventually('the new policy', 15_000, async () => (/policy logs-v1/.test(await explain()) ? true : undefined), 250)

  await writeFile(file, ['name: logs-v2', 'match: { path: "/logs/**" ', 'tiers: []', ''].join('\n'))
  const logFile = join(m.store, 'log/tierfs.log')
  await eventually('the parse error in the log', 15_000, async () => (/logs\.yaml:\d+:\d+/.test(await readFile(logFile, 'utf8')) ? true : undefined), 250)
  t.match(await explain(), /policy logs-v1/, 'the last good version stays in force')

  await writeFile(file, ['name: logs-v3', 'match: { path: "/logs/**" }', 'tiers:', '  - { tier: block }', ''].join('\n'))
  await eventually('the fixed policy', 15_000, async () => (/policy logs-v3/.test(await explain()) ? true : undefined), 250)
  t.pass('a fixed file replaces it, still without a restart or a reload command')
})

t.test('policy passes run on the migrate.schedule cron, against the injected clock', async (t) => {
  const m = await tempMount({ config: { policies: { reloadSeconds: 1 }, migrate: { schedule: '*/2 * * * * *' } } })
  t.teardown(() => m.cleanup())
  await mkdir(join(m.mnt, 'hb'))
  await writeFile(join(m.mnt, 'hb/f.bin'), Buffer.alloc(2 * 1024 * 1024, 'cron'))
  await mkdir(join(m.store, 'policies'), { recursive: true })
  await writeFile(join(m.store, 'policies/hb.yaml'), ['name: hb', 'match: { path: "/hb/**" }', 'tiers:', '  - { tier: block, days: 5 }', '  - { tier: object }', ''].join('\n'))
  const where = async (): Promise<string> => (await m.cli(['policy', 'explain', m.mnt, '/hb/f.bin'])).stdout
  const passes = async (): Promise<number> => JSON.parse((await m.cli(['status', m.mnt, '--json'])).stdout).migrations.passes as number
  // Passes run meanwhile and find nothing old enough; at day 6 on the injected clock one moves it.
  await eventually('a scheduled pass', 15_000, async () => ((await passes()) >= 1 ? true : undefined), 250)
  t.match(await where(), /on block/, 'a pass ran and left the young file on block')
  const r = await m.cli(['debug', 'clock-offset', m.mnt, '6d'])
  t.equal(r.code, 0, r.stderr)
  await eventually('the scheduled move', 20_000, async () => (/on object/.test(await where()) ? true : undefined), 250)
  t.pass('the file moved to the object tier by a pass nobody asked for')
})
