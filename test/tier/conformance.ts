import type { Test } from 'tap'
import { randomBytes } from 'node:crypto'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { TierfsError } from '../../src/errors.js'
import type { Tier } from '../../src/tier/tier.js'

/**
 * Warms `key` up and waits until the tier calls it 'warm' (bounded): what a caller of a tier
 * with `capabilities.needsWarmup` must do before `get`. Test tiers make recalls take seconds.
 */
export async function warmUp(tier: Tier, key: string, timeoutMs = 30_000): Promise<void> {
  await tier.warmup(key)
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const w = await tier.warmth(key)
    if (w === 'warm') return
    if (w === 'cold') throw new Error(`${key} went cold again while warming up`)
    if (Date.now() > deadline) throw new Error(`${key} still ${w} after ${timeoutMs} ms`)
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
}

/** Gets `key` as a caller must: a tier that needs warm-up is warmed (and waited for) first. */
export async function readBack(tier: Tier, key: string, range?: { offset: number; length: number }): Promise<Buffer> {
  if (tier.capabilities.needsWarmup) await warmUp(tier, key)
  return tier.get(key, range)
}

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
    t.same(await readBack(tier, 'packs/aa/one.pack'), data)
    t.same(await readBack(tier, 'packs/aa/one.pack', { offset: 1000, length: 5000 }), data.subarray(1000, 6000))
    t.same(await readBack(tier, 'packs/aa/one.pack', { offset: 299_990, length: 100 }), data.subarray(299_990), 'range past the end is clipped')
    t.same(await tier.head('packs/aa/one.pack'), { key: 'packs/aa/one.pack', size: data.length })
  })

  await t.test('put a file (streamed), replace atomically', async (t) => {
    const file = join(scratch, 'src')
    const data = randomBytes(2 * 1024 * 1024 + 3)
    await writeFile(file, data)
    await tier.put('packs/bb/two.pack', { file })
    t.same(await readBack(tier, 'packs/bb/two.pack'), data)
    await tier.put('packs/bb/two.pack', { data: Buffer.from('replaced') })
    t.equal((await readBack(tier, 'packs/bb/two.pack')).toString(), 'replaced')
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

  await t.test('cold tiers: get fails with AGAIN until a warm-up completes; warm-ups join', async (t) => {
    if (!tier.capabilities.needsWarmup) return
    const data = randomBytes(70_000)
    await tier.put('cold/c1', { data })
    t.equal(await tier.warmth('cold/c1'), 'cold', 'a fresh object is cold')
    t.equal(await code(tier.get('cold/c1')), 'AGAIN', 'get before any warm-up')
    await Promise.all([tier.warmup('cold/c1'), tier.warmup('cold/c1')])
    await tier.warmup('cold/c1')
    t.not(await tier.warmth('cold/c1'), 'cold', 'warming (or already warm) once requested')
    await warmUp(tier, 'cold/c1')
    t.same(await tier.get('cold/c1'), data)
    t.same(await tier.get('cold/c1', { offset: 69_000, length: 5000 }), data.subarray(69_000), 'ranged and clipped once warm')
  })
}
