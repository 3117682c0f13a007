import t from 'tap'
import { randomBytes } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { asTierId } from '../../src/ids.js'
import { jsonLogger } from '../../src/log.js'
import { LevelMeta } from '../../src/meta/level-meta.js'
import { metaIntents, metaJobs, metaLocators } from '../../src/store/meta-locators.js'
import { clearStrays, noteStray } from '../../src/store/stray-objects.js'
import { GlacierTier } from '../../src/tier/glacier-tier.js'
import type { LocatorStore } from '../../src/tier/tier.js'
import { TierSet } from '../../src/tier/tier-set.js'
import { startGlacierServer, TEST_REGION, useTestCredentials } from '../support/glacier-server.js'

useTestCredentials()

// The daemon's wiring: locators, jobs and intents in metadata (sys space), and clearStrays,
// which keeps a stray note while the Glacier tier answers AGAIN and drops it once resolved.
t.test('a crashed single upload: clearStrays keeps the note while the inventory runs, then removes the archive', async (t) => {
  const server = await startGlacierServer({ jobDelayMs: 300, vaults: ['v'] })
  t.teardown(() => server.stop())
  const dir = await mkdtemp(join(tmpdir(), 'tierfs-gstray-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const meta = new LevelMeta({ path: join(dir, 'meta') })
  await meta.ready()
  t.teardown(() => meta.close())
  const logs: Array<{ level: string; msg: string }> = []
  const log = jsonLogger((line) => { logs.push(JSON.parse(line) as { level: string; msg: string }) }, 'debug')
  const id = asTierId('deep')
  const make = async (locators: LocatorStore): Promise<GlacierTier> => {
    const tier = new GlacierTier(id, {
      vault: 'v', region: TEST_REGION, endpoint: server.endpoint, maxAttempts: 1, clockSkewMs: 0, log,
      locators, jobs: metaJobs(meta, 'deep'), intents: metaIntents(meta, 'deep'),
    })
    await tier.ready()
    t.teardown(() => tier.close())
    return tier
  }
  const key = `packs/ab/ab${'0'.repeat(30)}.pack`
  await noteStray(meta, id, key)
  // The crash: the upload is done, the locator write never returns.
  let entered!: () => void
  const there = new Promise<void>((resolve) => { entered = resolve })
  const crashed = await make({ ...metaLocators(meta, 'deep'), set: () => { entered(); return new Promise<never>(() => {}) } })
  void crashed.put(key, { data: randomBytes(1000) }).catch(() => undefined)
  await there
  await crashed.close()
  t.same(await meta.sysNames('upl/'), [`upl/deep/${key}`], 'the intent is in metadata')

  const tier = await make(metaLocators(meta, 'deep'))
  const tiers = new TierSet().add(id, { tier, kind: 'cold' })
  await new Promise((r) => setTimeout(r, 5))
  t.same(await clearStrays(meta, tiers, log), { removed: 0, owned: 0, kept: 1 })
  t.same(await meta.sysNames('job/'), ['job/deep/#inventory'], 'the inventory job is remembered in metadata')
  const waiting = logs.find((l) => /not removable yet/.test(l.msg))
  t.equal(waiting?.level, 'info', 'AGAIN is logged at info, not as a failure')
  t.notOk(logs.some((l) => l.level === 'warn'))
  await new Promise((r) => setTimeout(r, 400))
  t.same(await clearStrays(meta, tiers, log), { removed: 1, owned: 0, kept: 0 })
  t.equal((await server.stats()).vaults.v?.archives, 0, 'the orphaned archive is gone')
  t.same(await meta.sysNames('upl/'), [])
  t.same(await meta.sysNames('stray/'), [])
})
