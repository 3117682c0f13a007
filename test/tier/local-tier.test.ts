import t from 'tap'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { asTierId } from '../../src/ids.js'
import { LocalTier } from '../../src/tier/local-tier.js'
import { tierConformance } from './conformance.js'

t.test('local tier passes the Tier conformance suite', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'tierfs-local-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  await tierConformance(t, async () => new LocalTier(asTierId('block'), dir))
})

t.test('local tier reports space and local paths', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'tierfs-local-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const tier = new LocalTier(asTierId('block'), dir)
  await tier.ready()
  const s = await tier.space()
  t.ok(s.total > 0 && s.free > 0 && s.free <= s.total)
  t.equal(tier.localPath('packs/aa/x.pack'), join(dir, 'packs/aa/x.pack'))
})
