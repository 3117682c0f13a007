import t from 'tap'
import { mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { BackupService, type DiffPage } from '../../src/backup/backup-service.js'
import { silentLogger } from '../../src/log.js'
import { parsePolicyFile } from '../../src/policy/policy-file.js'
import { PolicySet } from '../../src/policy/decide.js'
import { removeFixture, restorePoints, ROOT_CALLER, vfsStore, type VfsFixture } from '../support/vfs-store.js'

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))

async function put(fx: VfsFixture, path: string, text: string): Promise<void> {
  const fh = await fx.vfs.create(path, 0o644, 0o1101, ROOT_CALLER)
  await fx.vfs.write(fh, Buffer.from(text), 0)
  await fx.vfs.release(fh)
}

function service(fx: VfsFixture): BackupService {
  return new BackupService({ meta: fx.store.meta, vfs: fx.vfs, restorePoints: restorePoints(fx, () => Date.now()), log: silentLogger, nowMs: () => Date.now(), historyWindowMs: 3_600_000 })
}

t.test('workflows from policies; diff pages, points and inode numbers for the CLI', async (t) => {
  const fx = await vfsStore()
  t.teardown(async () => { await fx.close(); await removeFixture(fx) })
  const svc = service(fx)
  const src = t.testdir()
  await mkdir(join(src, 'd'))
  for (let i = 0; i < 7; i++) await writeFile(join(src, 'd', `f${i}`), `file ${i}\n`)
  const policies = parsePolicyFile([
    'name: ingested', 'match: { path: "/in/**" }', 'tiers: [{ tier: block }]', 'backup:', `  source: ${src}`, '  dest: /in',
    '---',
    'name: app', 'match: { path: "/app/**" }', 'tiers: [{ tier: block }]', 'backup:', '  schedule: "0 0 3 * * *"',
  ].join('\n'), 'test.yaml')
  svc.setPolicies(new PolicySet(policies))
  svc.start()
  t.teardown(() => svc.stop())
  t.match(await svc.handle('backup-status', {}), [{ name: 'ingested', mode: 'ingest' }, { name: 'app', mode: 'snapshot', schedule: '0 0 3 * * *' }])

  await fx.vfs.mkdir('/app', 0o755, ROOT_CALLER)
  await put(fx, '/app/x', 'one')
  const snap = (await svc.handle('backup-run', { workflow: 'app' })) as { ok: boolean; summary: { mode: string; restorePoint: { name: string } } }
  t.match(snap, { ok: true, summary: { mode: 'snapshot' } })
  const first = (await svc.handle('backup-run', { workflow: 'ingested' })) as { ok: boolean; summary: Record<string, unknown> }
  t.match(first, { ok: true, summary: { mode: 'ingest', filesNew: 7 } })
  for (let i = 0; i < 7; i += 2) await writeFile(join(src, 'd', `f${i}`), `file ${i}, changed\n`)
  await writeFile(join(src, 'd', 'g'), 'new\n')
  await sleep(5)
  const mid = new Date().toISOString()
  await sleep(5)
  const second = (await svc.handle('backup-run', { workflow: 'ingested' })) as { ok: boolean; summary: Record<string, any> }
  t.match(second, { ok: true, summary: { filesNew: 1, filesChanged: 4, filesUnchanged: 3 } })
  const [p1, p2] = [`ingested/${first.summary.restorePoint.name}`, 'ingested/latest']

  const all: string[] = []
  let page = (await svc.handle('diff', { from: p1, to: p2, limit: 2 })) as DiffPage
  t.equal(page.to, `ingested/${second.summary.restorePoint.name}`, 'latest resolves to the restore point itself')
  t.equal(page.toView, `/.snapshots/ingested/${second.summary.restorePoint.name}`)
  for (;;) {
    t.ok(page.entries.length <= 2)
    all.push(...page.entries.map((e) => `${e.change} ${e.path}`))
    if (page.next === undefined) break
    page = (await svc.handle('diff', { from: page.from, to: page.to, limit: 2, after: page.next })) as DiffPage
  }
  t.same(all, ['modified /d/f0', 'modified /d/f2', 'modified /d/f4', 'modified /d/f6', 'added /d/g'], 'pages of two add up to the whole diff')

  const byInstant = (await svc.handle('diff', { from: p1, to: mid })) as DiffPage
  t.same(byInstant.entries, [], 'an instant side takes the restore point root: nothing changed before the instant')
  const whole = (await svc.handle('diff', { from: p1, to: p2, rootOf: mid })) as DiffPage
  t.same(whole.entries.map((e) => e.path), ['/in/d/f0', '/in/d/f2', '/in/d/f4', '/in/d/f6', '/in/d/g'], 'rootOf an instant: paths from the namespace root')
  t.match(await svc.handle('point', { point: mid }), { label: new Date(Date.parse(mid)).toISOString(), view: `/.history/${new Date(Date.parse(mid)).toISOString()}` })
  await t.rejects(svc.handle('point', { point: '2001-01-01T00:00:00Z' })!, { code: 'NOT_FOUND' }, 'outside the history window')
  await t.rejects(svc.handle('point', { point: 'ingested/2001-01-01T00:00:00Z' })!, { code: 'NOT_FOUND' })
  await t.rejects(svc.handle('diff', { from: p1 })!, { code: 'INVALID' })

  await fx.vfs.link('/in/d/g', '/in/d/g2')
  const inos = (await svc.handle('inodes', { paths: ['/in/d/g', '/in/d/g2', '/in/d/f0', '/in/nope', `/.snapshots/${p1}/d/f1`] })) as Array<number | null>
  t.equal(inos[0], inos[1], 'hard links share an inode number')
  t.not(inos[0], inos[2])
  t.equal(inos[3], null)
  t.type(inos[4], 'number', 'paths inside views resolve too')
  t.equal(svc.handle('unknown', {}), undefined, 'other commands are left to the daemon')
})
