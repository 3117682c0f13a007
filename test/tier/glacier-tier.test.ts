import t, { type Test } from 'tap'
import { randomBytes } from 'node:crypto'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { TierfsError } from '../../src/errors.js'
import { asTierId } from '../../src/ids.js'
import { GlacierTier, type GlacierTierOptions } from '../../src/tier/glacier-tier.js'
import { makeTier, parseTarget } from '../../src/tier/targets.js'
import { fileLocators, FileRecordStore } from '../support/file-locator-store.js'
import { startGlacierServer, TEST_REGION, useTestCredentials, type GlacierServer } from '../support/glacier-server.js'
import { readBack, tierConformance, warmUp } from './conformance.js'

const MiB = 1024 * 1024
const VAULT = 'tierfs-test'

useTestCredentials()

interface Setup {
  server: GlacierServer
  dir: string
  make(extra?: Partial<GlacierTierOptions>): Promise<GlacierTier>
}

async function setup(t: Test, jobDelayMs = 300): Promise<Setup> {
  const server = await startGlacierServer({ jobDelayMs, vaults: [VAULT] })
  t.teardown(() => server.stop())
  const dir = await mkdtemp(join(tmpdir(), 'tierfs-glacier-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const make = async (extra: Partial<GlacierTierOptions> = {}): Promise<GlacierTier> => {
    const tier = new GlacierTier(asTierId('cold'), {
      vault: VAULT, region: TEST_REGION, endpoint: server.endpoint,
      locators: fileLocators(join(dir, 'locators.json')), jobs: new FileRecordStore(join(dir, 'jobs.json')),
      ...extra,
    })
    await tier.ready()
    t.teardown(() => tier.close())
    return tier
  }
  return { server, dir, make }
}

const codeOf = (p: Promise<unknown>): Promise<string> => p.then(() => 'ok', (e: unknown) => (e instanceof TierfsError ? e.code : `raw:${String(e)}`))
const errOf = (p: Promise<unknown>): Promise<TierfsError> => p.then(() => { throw new Error('expected a failure') }, (e: unknown) => e as TierfsError)

t.test('glacier tier passes the Tier conformance suite', async (t) => {
  const s = await setup(t)
  await tierConformance(t, () => s.make())
})

t.test('a file larger than the part size goes up in parts and reads back whole and in ranges', async (t) => {
  const s = await setup(t)
  const tier = await s.make({ partSize: MiB, partConcurrency: 2 })
  const data = randomBytes(5 * MiB + 12_345)
  const file = join(s.dir, 'big')
  await writeFile(file, data)
  const before = (await s.server.stats()).requests
  await tier.put('packs/big.pack', { file })
  const after = (await s.server.stats()).requests
  t.equal((after.InitiateMultipartUpload ?? 0) - (before.InitiateMultipartUpload ?? 0), 1)
  t.equal((after.UploadMultipartPart ?? 0) - (before.UploadMultipartPart ?? 0), 6, '6 parts of 1 MiB (the last shorter)')
  t.equal((after.CompleteMultipartUpload ?? 0) - (before.CompleteMultipartUpload ?? 0), 1)
  t.same(await tier.head('packs/big.pack'), { key: 'packs/big.pack', size: data.length })
  t.same(await readBack(tier, 'packs/big.pack'), data)
  t.same(await tier.get('packs/big.pack', { offset: 3 * MiB - 10, length: 2 * MiB }), data.subarray(3 * MiB - 10, 5 * MiB - 10))
  t.same(await tier.get('packs/big.pack', { offset: 5 * MiB, length: MiB }), data.subarray(5 * MiB), 'tail, clipped')

  const buf = randomBytes(3 * MiB + 1)
  await tier.put('packs/buf.pack', { data: buf })
  t.same(await readBack(tier, 'packs/buf.pack'), buf, 'a large buffer goes up in parts too')
  t.equal((await s.server.stats()).vaults[VAULT]?.uploads, 0, 'no multipart upload left open')
})

t.test('ranged warm-up retrieves only the MiB-aligned range', async (t) => {
  const s = await setup(t)
  const tier = await s.make()
  const data = randomBytes(4 * MiB + 500)
  await tier.put('packs/r.pack', { data })
  const range = { offset: 2 * MiB + 100, length: 300 }
  await tier.warmup('packs/r.pack', range)
  t.equal(await tier.warmth('packs/r.pack', range), 'warming')
  t.equal(await tier.warmth('packs/r.pack'), 'cold', 'the whole archive is not being recalled')
  const again = await errOf(tier.get('packs/r.pack', range))
  t.equal(again.code, 'AGAIN')
  t.equal(again.detail?.warmth, 'warming')
  for (let i = 0; i < 100 && (await tier.warmth('packs/r.pack', range)) !== 'warm'; i++) await new Promise((r) => setTimeout(r, 50))
  t.equal(await tier.warmth('packs/r.pack', range), 'warm')
  t.same(await tier.get('packs/r.pack', range), data.subarray(range.offset, range.offset + range.length))
  t.same(await tier.get('packs/r.pack', { offset: 2 * MiB, length: MiB }), data.subarray(2 * MiB, 3 * MiB), 'anything inside the retrieved MiB')
  t.equal(await codeOf(tier.get('packs/r.pack', { offset: 3 * MiB, length: 10 })), 'AGAIN', 'outside the retrieved range')
  await tier.warmup('packs/r.pack', { offset: 4 * MiB + 10, length: 1000 })
  await new Promise((r) => setTimeout(r, 600))
  t.same(await tier.get('packs/r.pack', { offset: 4 * MiB, length: 500 }), data.subarray(4 * MiB), 'a range ending at the archive end')
})

t.test('get fails with AGAIN until the job completes; warm-ups of one key join one job', async (t) => {
  const s = await setup(t, 1000)
  const tier = await s.make()
  const data = randomBytes(100_000)
  await tier.put('packs/j.pack', { data })
  const cold = await errOf(tier.get('packs/j.pack'))
  t.equal(cold.code, 'AGAIN')
  t.equal(cold.detail?.warmth, 'cold')
  const before = (await s.server.stats()).requests.InitiateJob ?? 0
  await Promise.all([tier.warmup('packs/j.pack'), tier.warmup('packs/j.pack'), tier.warmup('packs/j.pack', { offset: 10, length: 10 })])
  await tier.warmup('packs/j.pack')
  t.equal(((await s.server.stats()).requests.InitiateJob ?? 0) - before, 1, 'one retrieval job for four warm-ups')
  const warming = await errOf(tier.get('packs/j.pack'))
  t.equal(warming.code, 'AGAIN')
  t.equal(warming.detail?.warmth, 'warming')
  t.match(warming.message, /cold: .*being recalled/)
  await warmUp(tier, 'packs/j.pack')
  t.same(await tier.get('packs/j.pack'), data)
})

t.test('a restarted tier resumes polling its pending job instead of starting another', async (t) => {
  const s = await setup(t, 1000)
  const first = await s.make()
  const data = randomBytes(200_000)
  await first.put('packs/p.pack', { data })
  await first.warmup('packs/p.pack')
  await first.close()
  const jobs = (await s.server.stats()).requests.InitiateJob
  const second = await s.make()
  t.equal(await second.warmth('packs/p.pack'), 'warming', 'the new instance knows the job')
  await second.warmup('packs/p.pack')
  await warmUp(second, 'packs/p.pack')
  t.same(await second.get('packs/p.pack'), data)
  t.equal((await s.server.stats()).requests.InitiateJob, jobs, 'no second job')
  t.equal(await codeOf(first.get('packs/p.pack')), 'CLOSED', 'the closed instance refuses work')
})

t.test('replace and delete remove archives from the vault', async (t) => {
  const s = await setup(t)
  const tier = await s.make()
  const count = async (): Promise<number | undefined> => (await s.server.stats()).vaults[VAULT]?.archives
  await tier.put('packs/d.pack', { data: randomBytes(1000) })
  await tier.put('packs/d.pack', { data: randomBytes(2000) })
  t.equal(await count(), 1, 'the replaced archive is deleted')
  await tier.put('packs/empty.pack', { data: Buffer.alloc(0) })
  t.same(await tier.head('packs/empty.pack'), { key: 'packs/empty.pack', size: 0 })
  t.same(await tier.get('packs/empty.pack'), Buffer.alloc(0), 'an empty object needs no archive and no warm-up')
  t.equal(await count(), 1)
  await tier.delete('packs/d.pack')
  await tier.delete('packs/d.pack')
  await tier.delete('packs/empty.pack')
  t.equal(await count(), 0)
  t.equal(await tier.head('packs/d.pack'), undefined)
})

t.test('failures map to TierfsError: throttling is retried, then transient IO; a missing vault is named', async (t) => {
  const s = await setup(t)
  const tier = await s.make({ partSize: MiB, maxAttempts: 3 })
  await s.server.faults({ count: 2, status: 400, code: 'ThrottlingException' })
  await tier.put('f/a', { data: Buffer.from('throttled twice') })
  t.same(await readBack(tier, 'f/a'), Buffer.from('throttled twice'), 'the SDK retried the throttled upload')

  const file = join(s.dir, 'parts')
  const data = randomBytes(2 * MiB + 1)
  await writeFile(file, data)
  await s.server.faults({ count: 2, status: 503, code: 'ServiceUnavailableException', op: 'UploadMultipartPart' })
  await tier.put('f/parts', { file })
  t.same(await readBack(tier, 'f/parts'), data, 'streamed parts are retried by the tier')

  await s.server.faults({ count: 100, status: 500, code: 'InternalFailure' })
  const io = await errOf(tier.put('f/b', { data: Buffer.from('x') }))
  await s.server.faults({ count: 0 })
  t.equal(io.code, 'IO')
  t.equal(io.detail?.transient, true)
  t.match(io.message, /^cold: /)

  await s.server.faults({ count: 100, status: 503, code: 'ServiceUnavailableException', op: 'UploadMultipartPart' })
  t.equal(await codeOf(tier.put('f/c', { file })), 'IO')
  await s.server.faults({ count: 0 })
  t.equal((await s.server.stats()).vaults[VAULT]?.uploads, 0, 'the failed multipart upload was aborted')
  t.equal(await tier.head('f/c'), undefined)

  // A missing vault is named when the tier is made ready (the daemon's start), not at an upload.
  const e = await errOf(s.make({ vault: 'no-such-vault' }))
  t.equal(e.code, 'IO')
  t.match(e.message, /^cold: ready: vault no-such-vault of target cold does not exist/)
  t.notMatch(e.message + JSON.stringify(e.detail), /tierfs-glacier-test-secret/, 'no credentials in errors')
  t.equal(await codeOf(tier.put('f/missing', { file: join(s.dir, 'nope') })), 'NOT_FOUND', 'a missing source file')
})

t.test('a glacier target is parsed with defaults, validated, and built with its LocatorStore', async (t) => {
  t.same(parseTarget('deep', { type: 'glacier', vault: 'backups', region: 'eu-west-1' }), {
    type: 'glacier', name: 'deep', vault: 'backups', accountId: '-', region: 'eu-west-1', partSize: 8 * MiB, singleUploadMax: 8 * MiB,
    retrievalTier: 'Standard', maxAttempts: 3, partConcurrency: 2, maxConnections: 4,
  })
  const base = { type: 'glacier', vault: 'backups', region: 'eu-west-1' }
  const cases: Array<[Record<string, unknown>, RegExp]> = [
    [{ ...base, vault: undefined }, /targets\.deep\.vault is required/],
    [{ ...base, vault: 'a b' }, /targets\.deep\.vault is not a valid vault name/],
    [{ ...base, region: undefined }, /targets\.deep\.region is required/],
    [{ ...base, accountId: '12-34' }, /targets\.deep\.accountId must be/],
    [{ ...base, partSize: 3 * MiB }, /targets\.deep\.partSize must be a power-of-two number of MiB/],
    [{ ...base, partSize: 512 * 1024 }, /targets\.deep\.partSize must be an integer from/],
    [{ ...base, retrievalTier: 'Fast' }, /targets\.deep\.retrievalTier must be one of Expedited, Standard, Bulk/],
    [{ ...base, endpoint: 'glacier.local' }, /targets\.deep\.endpoint must be an http/],
    [{ ...base, secretAccessKey: 'hunter2' }, /targets\.deep\.secretAccessKey is not allowed: credentials never go in tierfs configuration/],
    [{ ...base, vualt: 'x' }, /targets\.deep\.vualt is not a known setting/],
  ]
  for (const [raw, re] of cases) {
    const e = await errOf(Promise.resolve().then(() => parseTarget('deep', raw)))
    t.equal(e.code, 'CONFIG')
    t.match(e.message, re)
    t.notMatch(e.message, /hunter2/)
  }

  const s = await setup(t)
  const target = parseTarget('deep', { type: 'glacier', vault: VAULT, region: TEST_REGION, endpoint: s.server.endpoint, partSize: MiB })
  t.equal(await codeOf(Promise.resolve().then(() => makeTier(asTierId('deep'), target))), 'INTERNAL', 'no LocatorStore')
  const tier = makeTier(asTierId('deep'), target, { locators: fileLocators(join(s.dir, 'made.json')), retrievalJobs: new FileRecordStore(join(s.dir, 'made-jobs.json')) })
  t.ok(tier instanceof GlacierTier)
  t.same(tier.capabilities, { rangeReads: true, needsWarmup: true, maxConnections: 4, localFiles: false })
  await tier.ready()
  t.teardown(() => tier.close())
  const data = randomBytes(MiB + 10)
  await tier.put('x/made', { data })
  t.same(await readBack(tier, 'x/made'), data)
})
