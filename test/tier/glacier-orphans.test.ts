import t, { type Test } from 'tap'
import { randomBytes } from 'node:crypto'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { GlacierClient, UploadArchiveCommand } from '@aws-sdk/client-glacier'
import { TierfsError } from '../../src/errors.js'
import { asTierId } from '../../src/ids.js'
import { jsonLogger } from '../../src/log.js'
import type { RecordStore } from '../../src/tier/record-store.js'
import { GlacierTier, type GlacierTierOptions } from '../../src/tier/glacier-tier.js'
import type { LocatorEntry, LocatorStore } from '../../src/tier/tier.js'
import { fileLocators, FileRecordStore } from '../support/file-locator-store.js'
import { startGlacierServer, TEST_REGION, useTestCredentials, type GlacierServer } from '../support/glacier-server.js'
import { readBack } from './conformance.js'

// A crash is simulated the way a killed process looks from outside: one store write never
// returns (the put stops there, nothing after it happens), the tier is closed and a new one is
// made on the same files, as a restarted daemon would.

const MiB = 1024 * 1024
const VAULT = 'tierfs-orphans'

useTestCredentials()

interface Setup {
  server: GlacierServer
  dir: string
  /** A tier on the shared files; `hang` makes one store write stop forever (a crash there). */
  make(opts?: { hang?: Hang; extra?: Partial<GlacierTierOptions> }): Promise<GlacierTier>
  counts(): Promise<{ archives: number; uploads: number }>
  requests(op: string): Promise<number>
  intentKeys(): Promise<string[]>
  /** What the tiers logged, one JSON object per line. */
  logs: Array<{ level: string; msg: string } & Record<string, unknown>>
}

type Hang = { locatorOf?: string; intentWhen?: (key: string, record: string) => boolean; entered?: () => void }

async function setup(t: Test, jobDelayMs = 300): Promise<Setup> {
  const server = await startGlacierServer({ jobDelayMs, vaults: [VAULT] })
  t.teardown(() => server.stop())
  const dir = await mkdtemp(join(tmpdir(), 'tierfs-orphans-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const logs: Setup['logs'] = []
  const log = jsonLogger((line) => { logs.push(JSON.parse(line) as Setup['logs'][number]) }, 'debug')
  const make = async (opts: { hang?: Hang; extra?: Partial<GlacierTierOptions> } = {}): Promise<GlacierTier> => {
    const tier = new GlacierTier(asTierId('cold'), {
      vault: VAULT, region: TEST_REGION, endpoint: server.endpoint, partSize: MiB, maxAttempts: 1, clockSkewMs: 0, log,
      locators: hangingLocators(fileLocators(join(dir, 'locators.json')), opts.hang),
      jobs: new FileRecordStore(join(dir, 'jobs.json')),
      intents: hangingIntents(new FileRecordStore(join(dir, 'intents.json')), opts.hang),
      ...opts.extra,
    })
    await tier.ready()
    t.teardown(() => tier.close())
    return tier
  }
  const stats = async (): Promise<{ archives: number; uploads: number; jobs: number }> => (await server.stats()).vaults[VAULT] ?? { archives: -1, uploads: -1, jobs: -1 }
  return {
    server, dir, make, logs,
    counts: async () => { const s = await stats(); return { archives: s.archives, uploads: s.uploads } },
    requests: async (op) => (await server.stats()).requests[op] ?? 0,
    intentKeys: async () => {
      try {
        return Object.keys(JSON.parse(await readFile(join(dir, 'intents.json'), 'utf8')) as object).sort()
      } catch {
        return []
      }
    },
  }
}

const never = (entered?: () => void): Promise<never> => {
  entered?.()
  return new Promise<never>(() => {})
}

function hangingLocators(inner: LocatorStore, hang: Hang | undefined): LocatorStore {
  return {
    get: (key) => inner.get(key),
    set: (key: string, e: LocatorEntry) => (hang?.locatorOf === key ? never(hang.entered) : inner.set(key, e)),
    delete: (key) => inner.delete(key),
    keys: (p) => inner.keys(p),
  }
}

function hangingIntents(inner: RecordStore, hang: Hang | undefined): RecordStore {
  return {
    get: (key) => inner.get(key),
    set: (key, record) => (hang?.intentWhen?.(key, record) === true ? never(hang.entered) : inner.set(key, record)),
    delete: (key) => inner.delete(key),
    keys: () => inner.keys(),
  }
}

/** Starts a put that stops for good at the hang; resolves once it has got there. */
async function crashDuring(s: Setup, hang: Omit<Hang, 'entered'>, key: string, data: Buffer): Promise<void> {
  let entered!: () => void
  const there = new Promise<void>((resolve) => { entered = resolve })
  const tier = await s.make({ hang: { ...hang, entered } })
  void tier.put(key, { data }).catch(() => undefined)
  await there
  await tier.close()
}

const errOf = (p: Promise<unknown>): Promise<TierfsError> => p.then(() => { throw new Error('expected a failure') }, (e: unknown) => e as TierfsError)
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))

t.test('a crash between a multipart Complete and the locator: delete completes again and deletes that archive', async (t) => {
  const s = await setup(t)
  const key = 'packs/aa/crashed.pack'
  await crashDuring(s, { locatorOf: key }, key, randomBytes(2 * MiB + 5))
  t.same(await s.counts(), { archives: 1, uploads: 0 }, 'the archive exists, its id is recorded nowhere')
  t.same(await s.intentKeys(), [key], 'but its intent is')
  const tier = await s.make()
  t.equal(await tier.head(key), undefined)
  await tier.delete(key)
  t.same(await s.counts(), { archives: 0, uploads: 0 }, 'gone')
  t.equal(await s.requests('CompleteMultipartUpload'), 2, 'completed once more, for its archive id')
  t.equal(await s.requests('InitiateJob'), 0, 'no inventory needed')
  t.same(await s.intentKeys(), [])

  // Once the completion is too old to repeat, only an inventory can find the archive.
  await crashDuring(s, { locatorOf: 'packs/aa/late.pack' }, 'packs/aa/late.pack', randomBytes(MiB + 1))
  await s.server.configure({ completionMemoryMs: 0 })
  const late = await s.make()
  t.equal((await errOf(late.delete('packs/aa/late.pack'))).code, 'AGAIN')
  await sleep(400)
  await late.delete('packs/aa/late.pack')
  t.same(await s.counts(), { archives: 0, uploads: 0 }, 'found in the inventory and deleted')
  t.same(await s.intentKeys(), [])
})

t.test('a single upload orphaned by a crash is found by the inventory sweep; other archives are not touched', async (t) => {
  const s = await setup(t)
  const first = await s.make()
  const kept = randomBytes(5000)
  await first.put('packs/kk/kept.pack', { data: kept })
  await first.close()
  // Another tool's archives in the same vault, and one of another store (a tierfs description, no intent here).
  const sdk = new GlacierClient({ region: TEST_REGION, endpoint: s.server.endpoint, maxAttempts: 1 })
  t.teardown(() => sdk.destroy())
  for (const archiveDescription of ['other tool, "nightly"', 'tierfs:packs/zz/not-ours.pack']) {
    await sdk.send(new UploadArchiveCommand({ accountId: '-', vaultName: VAULT, body: randomBytes(100), archiveDescription }))
  }
  const key = 'packs/ab/orphan.pack'
  await crashDuring(s, { locatorOf: key }, key, randomBytes(3000))
  t.same(await s.counts(), { archives: 4, uploads: 0 })

  const second = await s.make()
  await sleep(5) // the restarted tier's clock has moved on from the crash
  const again = await errOf(second.delete(key))
  t.equal(again.code, 'AGAIN')
  t.equal(again.detail?.inventory, 'job')
  t.match(again.message, /^cold: packs\/ab\/orphan\.pack: an interrupted upload may have left an archive that only a vault inventory can find; vault inventory job \S+, started .* has not completed/)
  t.equal((await errOf(second.delete(key))).code, 'AGAIN', 'still waiting')
  await second.close()

  const third = await s.make()
  t.equal((await errOf(third.delete(key))).detail?.inventory, 'job', 'a restarted tier polls the same job')
  await sleep(400)
  await third.delete(key)
  t.equal(await s.requests('InitiateJob'), 1, 'one inventory job in all')
  t.same(await s.counts(), { archives: 3, uploads: 0 }, 'the orphan is deleted: the recorded archive and the two others remain')
  t.same(await s.intentKeys(), [])
  const said = s.logs.filter((l) => l.level === 'info').map((l) => l.msg)
  t.match(said, [/started a vault inventory to find archives of interrupted uploads/, /deleted the archive of an interrupted upload/, /vault inventory swept/], 'what an operator sees')
  t.same(s.logs.find((l) => /swept/.test(l.msg)), { ...s.logs.find((l) => /swept/.test(l.msg)), deleted: 1, resolved: 1 })
  t.notMatch(JSON.stringify(s.logs), /tierfs-glacier-test-secret/, 'no credentials in the log')
  t.same(await readBack(third, 'packs/kk/kept.pack'), kept, 'the recorded archive is intact')
  await third.delete(key)
  t.equal(await s.requests('InitiateJob'), 2, 'one more for the read-back, none for a resolved delete')
})

t.test('a crash in the middle of a multipart upload: delete aborts it, recorded or not', async (t) => {
  const s = await setup(t)
  const data = randomBytes(3 * MiB)
  // Parts up, Complete not sent (the intent's size and tree hash never saved).
  await crashDuring(s, { intentWhen: (_k, r) => r.includes('treeHash') }, 'packs/cc/parts.pack', data)
  t.same(await s.counts(), { archives: 0, uploads: 1 })
  const tier = await s.make()
  await tier.delete('packs/cc/parts.pack')
  t.same(await s.counts(), { archives: 0, uploads: 0 }, 'aborted by its recorded upload id')
  t.equal(await s.requests('AbortMultipartUpload'), 1)

  // Initiated, but the upload id never recorded: found by its description.
  await crashDuring(s, { intentWhen: (_k, r) => r.includes('uploadId') }, 'packs/cc/init.pack', data)
  const other = await s.make()
  await other.put('packs/cc/busy.pack', { data: randomBytes(10) })
  t.same(await s.counts(), { archives: 1, uploads: 1 })
  await other.delete('packs/cc/init.pack')
  t.same(await s.counts(), { archives: 1, uploads: 0 }, 'aborted after listing the uploads')
  t.equal(await s.requests('ListMultipartUploads'), 1)
  t.equal(await s.requests('InitiateJob'), 0, 'no archive can exist: no inventory')
  t.same(await s.intentKeys(), [])
})

t.test('a failed put leaves its intent to delete; intents newer than the inventory wait for the next one', async (t) => {
  const s = await setup(t)
  const orphan = 'packs/dd/orphan.pack'
  await crashDuring(s, { locatorOf: orphan }, orphan, randomBytes(2000))
  const tier = await s.make()
  await sleep(5)
  t.equal((await errOf(tier.delete(orphan))).code, 'AGAIN', 'an inventory job is started')

  // Fails after the inventory job began: whether it made an archive, that inventory cannot tell.
  await s.server.faults({ count: 1, status: 500, code: 'InternalFailure', op: 'UploadArchive' })
  const fresh = 'packs/ee/fresh.pack'
  t.equal((await errOf(tier.put(fresh, { data: randomBytes(1000) }))).code, 'IO')
  // A failed multipart put resolves itself: aborted at once.
  await s.server.faults({ count: 1, status: 500, code: 'InternalFailure', op: 'UploadMultipartPart' })
  t.equal((await errOf(tier.put('packs/ee/parts.pack', { data: randomBytes(2 * MiB) }))).code, 'IO')
  t.same(await s.counts(), { archives: 1, uploads: 0 }, 'the failed multipart upload is aborted')
  t.same(await s.intentKeys(), [orphan, fresh])

  await sleep(400)
  await tier.delete(orphan)
  t.same(await s.counts(), { archives: 0, uploads: 0 })
  t.same(await s.intentKeys(), [fresh], 'the newer intent survives the sweep')

  await s.server.configure({ inventoryLagMs: 3600_000 })
  const wait = await errOf(tier.delete(fresh))
  t.equal(wait.code, 'AGAIN')
  t.equal(wait.detail?.inventory, 'no-inventory', 'no inventory covers it yet: no job is started')
  t.equal(await s.requests('InitiateJob'), 1)
  await s.server.configure({ inventoryLagMs: 0 })
  t.equal((await errOf(tier.delete(fresh))).code, 'AGAIN', 'a newer inventory: a second job')
  await sleep(400)
  await tier.delete(fresh)
  t.equal(await s.requests('InitiateJob'), 2)
  t.same(await s.intentKeys(), [], 'not listed in an inventory newer than its failure: it made no archive')
  t.same(await s.counts(), { archives: 0, uploads: 0 })
})

t.test('a locator store that refuses the record: the new archive is deleted, the put fails, no intent is left', async (t) => {
  const s = await setup(t)
  const tier = await s.make()
  const failing = new GlacierTier(asTierId('cold'), {
    vault: VAULT, region: TEST_REGION, endpoint: s.server.endpoint, maxAttempts: 1, clockSkewMs: 0,
    locators: { ...fileLocators(join(s.dir, 'locators.json')), get: async () => undefined, set: async () => { throw new TierfsError('IO', 'disk full') }, delete: async () => undefined, keys: async function* () {} },
    intents: new FileRecordStore(join(s.dir, 'intents.json')),
  })
  await failing.ready()
  t.teardown(() => failing.close())
  t.equal((await errOf(failing.put('packs/ff/refused.pack', { data: randomBytes(100) }))).code, 'IO')
  t.same(await s.counts(), { archives: 0, uploads: 0 })
  t.same(await s.intentKeys(), [])
  await tier.put('packs/ff/ok.pack', { data: randomBytes(100) })
  t.same(await s.intentKeys(), [], 'a finished put leaves no intent')
})

t.test('a replaced archive that cannot be deleted at once is recorded, and removed by the next delete of the key', async (t) => {
  const s = await setup(t)
  const tier = await s.make()
  const key = 'packs/rr/replaced.pack'
  await tier.put(key, { data: randomBytes(100) })
  await s.server.faults({ count: 1, status: 500, code: 'InternalFailure', op: 'DeleteArchive' })
  const now = randomBytes(200)
  await tier.put(key, { data: now })
  t.same(await s.counts(), { archives: 2, uploads: 0 }, 'the old archive is still there')
  t.same(await s.intentKeys(), [key], 'and recorded')
  t.same(await readBack(tier, key), now, 'the put succeeded')
  await tier.delete(key)
  t.same(await s.counts(), { archives: 0, uploads: 0 }, 'both gone')
  t.same(await s.intentKeys(), [])
  t.equal(await s.requests('InitiateJob'), 1, 'only the read-back: its id was known')
})
