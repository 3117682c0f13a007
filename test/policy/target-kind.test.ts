import t from 'tap'
import { join } from 'node:path'
import { Tiering } from '../../daemon/tiering.js'
import { silentLogger } from '../../src/log.js'
import { PolicySet } from '../../src/policy/decide.js'
import { parsePolicyFile } from '../../src/policy/policy-file.js'
import { tierState } from '../../src/store/tier-state.js'
import { det, PRUNE_CONFIG, putFile, readWhole } from '../backup/prune-fixture.js'
import { removeFixture, ROOT_CALLER, vfsStore } from '../support/vfs-store.js'

const DAY = 86_400_000

t.test('a local directory declared cold serves cold steps: cold placement, and the cold kind shown', async (t) => {
  const nasDir = join(t.testdir(), 'nas')
  const fx = await vfsStore({ ...PRUNE_CONFIG, targets: { nas: { type: 'local', name: 'nas', path: nasDir, kind: 'cold' } } })
  t.teardown(async () => { await fx.close().catch(() => undefined); await removeFixture(fx) })
  t.equal(fx.store.tiers.kindOf(fx.store.tiers.resolve('cold', 'nas')), 'cold')
  const policies = new PolicySet(parsePolicyFile([
    'name: arch', 'match: { path: "/arch/**" }', 'tiers:', '  - { tier: block, days: 1 }', '  - { tier: cold, target: nas }', 'then: keep', '',
  ].join('\n'), 'arch.yaml'))
  const t0 = Date.now()
  const clock = { now: t0 }
  const tiering = new Tiering({ store: fx.store, vfs: fx.vfs, log: silentLogger, policies: () => policies, nowMs: () => clock.now })
  await fx.vfs.mkdir('/arch', 0o755, ROOT_CALLER)
  const data = det('nas', 200 * 1024)
  await putFile(fx, '/arch/f', data)
  clock.now = t0 + 2 * DAY
  const r = await tiering.apply()
  t.same(r.errors, [])
  t.equal(r.filesMoved, 1)
  t.equal((await fx.store.meta.getInode(await fx.vfs.resolve('/arch/f')))?.tier, 'nas')
  const attrs = await fx.store.meta.getInode(await fx.vfs.resolve('/arch/f'))
  const shown = await tierState(attrs as NonNullable<typeof attrs>, fx.store.meta, fx.store.tiers, fx.store.chunks)
  t.equal(shown.tier, 'cold', 'user.tierfs.tier says cold')
  t.equal((await tiering.apply()).filesMoved, 0, 'the next pass finds it in place')
  t.ok((await readWhole(fx, '/arch/f')).equals(data))
})
