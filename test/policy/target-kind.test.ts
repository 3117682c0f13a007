import t from 'tap'
import { join } from 'node:path'
import { PolicySet } from '../../src/policy/decide.js'
import { parsePolicyFile } from '../../src/policy/policy-file.js'
import { tierState } from '../../src/store/tier-state.js'
import { det, putFile, readWhole } from '../backup/prune-fixture.js'
import { tieredStore } from '../support/tiered-store.js'

t.test('a local directory declared cold serves cold steps: cold placement, and the cold kind shown', async (t) => {
  const nasDir = join(t.testdir(), 'nas')
  const policies = new PolicySet(parsePolicyFile([
    'name: arch', 'match: { path: "/arch/**" }', 'tiers:', '  - { tier: block, days: 1 }', '  - { tier: cold, target: nas }', 'then: keep', '',
  ].join('\n'), 'arch.yaml'))
  const { fx, tiering, at } = await tieredStore(t, policies, ['/arch'], { targets: { nas: { type: 'local', name: 'nas', path: nasDir, kind: 'cold' } } })
  t.equal(fx.store.tiers.kindOf(fx.store.tiers.resolve('cold', 'nas')), 'cold')
  const data = det('nas', 200 * 1024)
  await putFile(fx, '/arch/f', data)
  at(2)
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
