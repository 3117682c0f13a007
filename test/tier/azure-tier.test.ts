import t from 'tap'
import { createHash, randomBytes } from 'node:crypto'
import { createReadStream } from 'node:fs'
import { mkdtemp, open, rm } from 'node:fs/promises'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { BlobServiceClient, StorageSharedKeyCredential } from '@azure/storage-blob'
import { TierfsError } from '../../src/errors.js'
import { asTierId } from '../../src/ids.js'
import { AzureTier, type AzureTierOptions } from '../../src/tier/azure-tier.js'
import { makeTier, parseTarget } from '../../src/tier/targets.js'
import { DEV_ACCOUNT, DEV_KEY, startAzurite } from '../support/azurite-process.js'
import { tierConformance } from './conformance.js'
import { gc } from '../support/gc.js'
import { FaultProxy } from '../support/fault-proxy.js'

const MiB = 1024 * 1024
const az = await startAzurite()
t.teardown(() => az.stop())
await az.createContainer('tierfs')
const service = new BlobServiceClient(az.accountUrl, new StorageSharedKeyCredential(DEV_ACCOUNT, DEV_KEY))
const raw = service.getContainerClient('tierfs')
const scratch = await mkdtemp(join(tmpdir(), 'tierfs-azure-'))
t.teardown(() => rm(scratch, { recursive: true, force: true }))

const tier = (over: Partial<AzureTierOptions> = {}, env = az.env): AzureTier =>
  new AzureTier(asTierId('object'), { name: 'azurite', endpoint: az.accountUrl, container: 'tierfs', ...over }, { env, loadIdentity: async () => undefined })

const failure = async (p: Promise<unknown>): Promise<TierfsError> => {
  try {
    await p
  } catch (err) {
    if (err instanceof TierfsError) return err
    throw err
  }
  throw new Error('expected a failure')
}

t.test('azure tier (Hot) passes the Tier conformance suite', async (t) => {
  await tierConformance(t, async () => tier())
})

t.test('the conformance suite passes under a key prefix, and list strips it', async (t) => {
  await tierConformance(t, async () => tier({ prefix: 'site-a/packs/' }))
  const names = []
  for await (const b of raw.listBlobsFlat({ prefix: 'site-a/' })) names.push(b.name)
  t.ok(names.length > 0 && names.every((n) => n.startsWith('site-a/packs/')), 'blobs live under the prefix')
})

t.test('azure tier (Archive) passes the suite too: its cold-tier cases included', async (t) => {
  await tierConformance(t, async () => tier({ prefix: 'archived', accessTier: 'Archive' }))
})

t.test('a 20 MiB file is staged in blocks with bounded memory and reads back byte-exact', async (t) => {
  const file = join(scratch, 'big')
  const fh = await open(file, 'w')
  const hash = createHash('sha256')
  for (let i = 0; i < 20; i++) {
    const block = randomBytes(MiB)
    hash.update(block)
    await fh.write(block)
  }
  await fh.close()
  const digest = hash.digest('hex')
  const az1 = tier({ blockSize: MiB, uploadConcurrency: 4 })
  t.teardown(() => az1.close())

  // Each sample follows a full collection, so it counts live buffers only: the blocks in flight.
  gc()
  const base = process.memoryUsage()
  let peak = 0
  const sampler = setInterval(() => {
    gc()
    const m = process.memoryUsage()
    peak = Math.max(peak, m.arrayBuffers + m.heapUsed - base.arrayBuffers - base.heapUsed)
  }, 20)
  const started = performance.now()
  await az1.put('big/pack', { file })
  const ms = performance.now() - started
  clearInterval(sampler)
  t.comment(`put 20 MiB in 1 MiB blocks: ${ms.toFixed(0)} ms, peak live heap+buffers growth ${(peak / MiB).toFixed(1)} MiB`)
  t.ok(peak < 20 * MiB, 'the file is never held in memory whole')

  const blocks = await raw.getBlockBlobClient('big/pack').getBlockList('committed')
  t.equal(blocks.committedBlocks?.length, 20, 'committed as 20 staged blocks')
  t.same(await az1.head('big/pack'), { key: 'big/pack', size: 20 * MiB })
  t.equal(createHash('sha256').update(await az1.get('big/pack')).digest('hex'), digest, 'whole read is byte-exact')

  const off = 3 * MiB - 100
  const want = Buffer.alloc(2 * MiB + 200)
  const rfh = await open(file, 'r')
  await rfh.read(want, 0, want.length, off)
  await rfh.close()
  t.same(await az1.get('big/pack', { offset: off, length: want.length }), want, 'a range across block boundaries')
  t.same(await az1.get('big/pack', { offset: 20 * MiB - 10, length: MiB }), (await tail(file, 10)), 'a range past the end is clipped')
  t.same(await az1.get('big/pack', { offset: 20 * MiB + 5, length: 10 }), Buffer.alloc(0), 'a range starting past the end is empty')
})

t.test('uploads set the configured access tier', async (t) => {
  for (const accessTier of ['Hot', 'Cool', 'Cold'] as const) {
    const az1 = tier({ accessTier })
    t.equal(az1.capabilities.needsWarmup, false)
    await az1.put(`tiers/${accessTier}`, { data: Buffer.from(accessTier) })
    t.equal((await raw.getBlobClient(`tiers/${accessTier}`).getProperties()).accessTier, accessTier)
    t.equal((await az1.get(`tiers/${accessTier}`)).toString(), accessTier)
    t.equal(await az1.warmth(`tiers/${accessTier}`), 'warm')
  }
})

t.test('archive tier: get fails AGAIN until warm-up; azurite rehydrates at once', async (t) => {
  const arch = tier({ accessTier: 'Archive', rehydrateTo: 'Cool', rehydratePriority: 'High' })
  t.equal(arch.capabilities.needsWarmup, true)
  const data = randomBytes(100_000)
  await arch.put('cold/one.pack', { data })
  const props = await raw.getBlobClient('cold/one.pack').getProperties()
  t.equal(props.accessTier, 'Archive', 'uploaded straight into Archive')
  t.same(await arch.head('cold/one.pack'), { key: 'cold/one.pack', size: data.length }, 'head works on archived blobs')
  const seen = []
  for await (const o of arch.list('cold/')) seen.push(o)
  t.same(seen, [{ key: 'cold/one.pack', size: data.length }], 'list works on archived blobs')

  const e = await failure(arch.get('cold/one.pack', { offset: 0, length: 10 }))
  t.equal(e.code, 'AGAIN')
  t.match(e.message, /azurite: get cold\/one\.pack: the object is archived/)
  t.equal(await arch.warmth('cold/one.pack'), 'cold')

  await arch.warmup('cold/one.pack')
  // Azure would report 'warming' (archiveStatus rehydrate-pending-to-cool) for hours; azurite
  // switches the tier immediately and never sets an archive status.
  const after = await raw.getBlobClient('cold/one.pack').getProperties()
  t.equal(after.accessTier, 'Cool', 'rehydrated to the configured tier')
  t.equal(after.archiveStatus, undefined, 'azurite sets no archive status')
  t.equal(await arch.warmth('cold/one.pack'), 'warm')
  t.same(await arch.get('cold/one.pack'), data)
  await arch.warmup('cold/one.pack')
  t.equal((await raw.getBlobClient('cold/one.pack').getProperties()).accessTier, 'Cool', 'warm-up of a warm blob changes nothing')

  t.equal((await failure(arch.warmth('cold/none'))).code, 'NOT_FOUND')
  t.equal((await failure(arch.warmup('cold/none'))).code, 'NOT_FOUND')
})

t.test('a missing container fails IO naming the target and the container', async (t) => {
  const az1 = tier({ container: 'no-such-container' })
  for (const p of [az1.ready(), az1.get('x'), az1.put('x', { data: Buffer.from('x') }), az1.head('x')]) {
    const e = await failure(p)
    t.equal(e.code, 'IO')
    t.match(e.message, /container no-such-container of target azurite does not exist/)
    t.notOk(e.detail?.transient, 'not worth retrying')
  }
})

t.test('a wrong key fails IO access denied, and the key never shows', async (t) => {
  const wrongKey = Buffer.alloc(64, 7).toString('base64')
  const az1 = tier({}, { AZURE_STORAGE_ACCOUNT: DEV_ACCOUNT, AZURE_STORAGE_KEY: wrongKey })
  for (const p of [az1.ready(), az1.get('x'), az1.put('x', { data: Buffer.from('x') })]) {
    const e = await failure(p)
    t.equal(e.code, 'IO')
    t.equal(e.message.endsWith('access denied for target azurite (check AZURE_STORAGE_* environment)'), true, e.message)
    t.equal(e.cause, undefined, 'the service text (which echoes the signed string) is dropped')
    t.notOk(JSON.stringify({ m: e.message, d: e.detail, s: e.stack }).includes(wrongKey.slice(0, 20)))
    t.notOk(e.detail?.transient)
  }
})

t.test('a connection string from the environment is accepted', async (t) => {
  const cs = `DefaultEndpointsProtocol=http;AccountName=${DEV_ACCOUNT};AccountKey=${DEV_KEY};BlobEndpoint=${az.accountUrl};`
  const az1 = tier({}, { AZURE_STORAGE_CONNECTION_STRING: cs })
  await az1.put('cs/one', { data: Buffer.from('via connection string') })
  t.equal((await az1.get('cs/one')).toString(), 'via connection string')
})

t.test('an unreachable endpoint fails IO marked transient', async (t) => {
  const port = await closedPort()
  const az1 = new AzureTier(asTierId('object'), { name: 'gone', endpoint: `http://127.0.0.1:${port}/${DEV_ACCOUNT}`, container: 'tierfs' }, { env: az.env })
  const e = await failure(az1.get('x'))
  t.equal(e.code, 'IO')
  t.match(e.message, /^gone: open: transport error/)
  t.equal(e.detail?.transient, true)
})

t.test('close is idempotent and later calls fail CLOSED', async (t) => {
  const az1 = tier()
  await az1.ready()
  await az1.close()
  await az1.close()
  t.equal((await failure(az1.head('x'))).code, 'CLOSED')
})

t.test('makeTier builds an AzureTier from a parsed target', async (t) => {
  const target = parseTarget('azurite', { type: 'azure', endpoint: az.accountUrl, container: 'tierfs', prefix: 'made', accessTier: 'Cool' })
  const made = makeTier(asTierId('object'), target)
  t.ok(made instanceof AzureTier)
  t.same(made.capabilities, { rangeReads: true, needsWarmup: false, maxConnections: 16, localFiles: false })
  t.equal(await made.space(), undefined)
  t.equal(made.localPath('a'), undefined)
  // makeTier reads the credentials from process.env, as the daemon does.
  const saved = { a: process.env['AZURE_STORAGE_ACCOUNT'], k: process.env['AZURE_STORAGE_KEY'] }
  process.env['AZURE_STORAGE_ACCOUNT'] = DEV_ACCOUNT
  process.env['AZURE_STORAGE_KEY'] = DEV_KEY
  t.teardown(() => {
    for (const [name, v] of [['AZURE_STORAGE_ACCOUNT', saved.a], ['AZURE_STORAGE_KEY', saved.k]] as const) {
      if (v === undefined) delete process.env[name]
      else process.env[name] = v
    }
  })
  await made.put('x/y', { data: Buffer.from('made') })
  t.equal((await raw.getBlobClient('made/x/y').getProperties()).accessTier, 'Cool')
  await made.close()
})

async function tail(file: string, n: number): Promise<Buffer> {
  const parts: Buffer[] = []
  for await (const c of createReadStream(file, { start: 20 * MiB - n })) parts.push(c as Buffer)
  return Buffer.concat(parts)
}

function closedPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer()
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address()
      srv.close(() => (typeof addr === 'object' && addr !== null ? resolve(addr.port) : reject(new Error('no port'))))
    })
  })
}

t.test('every block goes up with its MD5, which azurite checks; a damaged block is refused', async (t) => {
  const port = Number(new URL(az.accountUrl).port)
  const proxy = await FaultProxy.start(port)
  t.teardown(() => proxy.close())
  const az2 = new AzureTier(asTierId('object'), { name: 'azurite', endpoint: `http://127.0.0.1:${proxy.port}/${DEV_ACCOUNT}`, container: 'tierfs', blockSize: MiB }, { env: az.env, loadIdentity: async () => undefined })
  t.teardown(() => az2.close())
  const data = randomBytes(3 * MiB + 5)
  await az2.put('md5/buffer', { data })
  const file = join(scratch, 'md5-file')
  await (await import('node:fs/promises')).writeFile(file, data)
  await az2.put('md5/file', { file })
  await az2.put('md5/empty', { data: Buffer.alloc(0) })
  const blocks = proxy.seen.filter((r) => r.method === 'PUT' && r.query.get('comp') === 'block')
  t.equal(blocks.length, 8, 'four blocks per upload of 3 MiB + 5 bytes in 1 MiB blocks, none for the empty blob')
  for (const b of blocks) t.match(b.headers['content-md5'], /^[A-Za-z0-9+/]{22}==$/, 'with a Content-MD5')
  t.same(await az2.get('md5/buffer'), data)
  t.same(await az2.get('md5/file'), data)
  t.same(await az2.head('md5/empty'), { key: 'md5/empty', size: 0 })

  // What the MD5 is for: a block whose bytes do not match it is refused by the service.
  const direct = raw.getBlockBlobClient('md5/damaged')
  const body = randomBytes(1000)
  const wrong = createHash('md5').update(Buffer.concat([body.subarray(1), Buffer.from([body[0] as number ^ 1])])).digest()
  await t.rejects(direct.stageBlock(Buffer.from('block-0').toString('base64'), body, body.length, { transactionalContentMD5: wrong }), /md5|MD5/)
})
