import type { Test } from 'tap'
import { randomBytes } from 'node:crypto'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { TierfsError } from '../../src/errors.js'
import type { Tier } from '../../src/tier/tier.js'

/**
 * The Tier contract (src/tier/tier.ts), checked against a live implementation. Every backend's
 * test file is: make a tier, call this.
 */
export async function tierConformance(t: Test, make: () => Promise<Tier>): Promise<void> {
  const tier = await make()
  await tier.ready()
  await tier.ready()
  t.teardown(() => tier.close())
  const scratch = await mkdtemp(join(tmpdir(), 'tierfs-conf-'))
  t.teardown(() => rm(scratch, { recursive: true, force: true }))
  const code = (p: Promise<unknown>): Promise<string> => p.then(() => 'ok', (e: unknown) => (e instanceof TierfsError ? e.code : `raw:${String(e)}`))

  await t.test('put a buffer, get it whole and in ranges, head', async (t) => {
    const data = randomBytes(300_000)
    await tier.put('packs/aa/one.pack', { data })
    t.same(await tier.get('packs/aa/one.pack'), data)
    t.same(await tier.get('packs/aa/one.pack', { offset: 1000, length: 5000 }), data.subarray(1000, 6000))
    t.same(await tier.get('packs/aa/one.pack', { offset: 299_990, length: 100 }), data.subarray(299_990), 'range past the end is clipped')
    t.same(await tier.head('packs/aa/one.pack'), { key: 'packs/aa/one.pack', size: data.length })
  })

  await t.test('put a file (streamed), replace atomically', async (t) => {
    const file = join(scratch, 'src')
    const data = randomBytes(2 * 1024 * 1024 + 3)
    await writeFile(file, data)
    await tier.put('packs/bb/two.pack', { file })
    t.same(await tier.get('packs/bb/two.pack'), data)
    await tier.put('packs/bb/two.pack', { data: Buffer.from('replaced') })
    t.equal((await tier.get('packs/bb/two.pack')).toString(), 'replaced')
  })

  await t.test('missing keys, idempotent delete', async (t) => {
    t.equal(await code(tier.get('packs/none.pack')), 'NOT_FOUND')
    t.equal(await tier.head('packs/none.pack'), undefined)
    await tier.delete('packs/none.pack')
    await tier.put('x/y', { data: Buffer.from('1') })
    await tier.delete('x/y')
    await tier.delete('x/y')
    t.equal(await tier.head('x/y'), undefined)
  })

  await t.test('list is flat and complete under a prefix', async (t) => {
    await tier.put('l/a/1', { data: Buffer.from('1') })
    await tier.put('l/a/b/2', { data: Buffer.from('22') })
    await tier.put('l/c', { data: Buffer.from('333') })
    await tier.put('m/other', { data: Buffer.from('4') })
    const seen = []
    for await (const o of tier.list('l/')) seen.push(o)
    seen.sort((a, b) => a.key.localeCompare(b.key))
    t.same(seen, [{ key: 'l/a/1', size: 1 }, { key: 'l/a/b/2', size: 2 }, { key: 'l/c', size: 3 }])
  })

  await t.test('bad keys are refused', async (t) => {
    for (const key of ['../escape', '/abs', 'a//b', 'a/../b', 'sp ace', '']) {
      t.equal(await code(tier.put(key, { data: Buffer.from('x') })), 'INVALID', JSON.stringify(key))
    }
  })

  await t.test('warmth answers for warm tiers', async (t) => {
    if (tier.capabilities.needsWarmup) return
    t.equal(await tier.warmth('l/c'), 'warm')
  })
}
