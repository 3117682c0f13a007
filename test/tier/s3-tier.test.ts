import t from 'tap'
import { createHash, randomBytes } from 'node:crypto'
import { createWriteStream } from 'node:fs'
import { mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { TierfsError } from '../../src/errors.js'
import { asTierId } from '../../src/ids.js'
import { S3Tier, type S3TierOptions } from '../../src/tier/s3-tier.js'
import { makeTier, parseTarget } from '../../src/tier/targets.js'
import { FaultProxy } from '../support/fault-proxy.js'
import { S3rverProcess, useS3rverCredentials } from '../support/s3rver-process.js'
import { tierConformance } from './conformance.js'

const MiB = 1024 * 1024
useS3rverCredentials()

const s3 = await S3rverProcess.start({ buckets: ['tierfs', 'other'] })
t.teardown(() => s3.destroy())
const scratch = await mkdtemp(join(tmpdir(), 'tierfs-s3-test-'))
t.teardown(() => rm(scratch, { recursive: true, force: true }))

function tier(opts: Partial<S3TierOptions> = {}, endpoint = s3.endpoint): S3Tier {
  return new S3Tier(asTierId('object'), { name: 's3-test', bucket: 'tierfs', endpoint, region: 'us-east-1', ...opts })
}

const failure = async (p: Promise<unknown>): Promise<TierfsError> => {
  try {
    await p
  } catch (err) {
    if (err instanceof TierfsError) return err
    throw err
  }
  throw new Error('expected a failure')
}

/** Writes `bytes` of random data to a file in 1 MiB steps; returns its path and SHA-256. */
async function randomFile(name: string, bytes: number): Promise<{ file: string; sha: string }> {
  const file = join(scratch, name)
  const hash = createHash('sha256')
  const out = createWriteStream(file)
  for (let done = 0; done < bytes; done += MiB) {
    const chunk = randomBytes(Math.min(MiB, bytes - done))
    hash.update(chunk)
    if (!out.write(chunk)) await new Promise<void>((r) => out.once('drain', () => r()))
  }
  await new Promise<void>((resolve, reject) => out.end((err?: Error | null) => (err ? reject(err) : resolve())))
  return { file, sha: hash.digest('hex') }
}

t.test('S3 tier (STANDARD, with a key prefix) passes the Tier conformance suite on s3rver', async (t) => {
  await tierConformance(t, async () => tier({ prefix: 'conformance/' }))
})

t.test('the key prefix is where the objects live, and list strips it', async (t) => {
  const a = tier({ prefix: 'p1' })
  const b = tier({ prefix: 'p2/' })
  t.teardown(async () => { await a.close(); await b.close() })
  await a.put('k/one', { data: Buffer.from('a') })
  await b.put('k/one', { data: Buffer.from('bb') })
  t.same(await a.get('k/one'), Buffer.from('a'))
  t.same(await b.get('k/one'), Buffer.from('bb'))
  const bare = tier()
  t.teardown(() => bare.close())
  t.same(await bare.head('p1/k/one'), { key: 'p1/k/one', size: 1 })
  const listed = []
  for await (const o of b.list('k/')) listed.push(o)
  t.same(listed, [{ key: 'k/one', size: 2 }])
})

t.test('multipart upload of a file larger than the part size is byte-exact, with exact size', async (t) => {
  const proxy = await FaultProxy.start(s3.port)
  t.teardown(() => proxy.close())
  const s = tier({ partSize: 5 * MiB, multipartThreshold: 5 * MiB }, proxy.endpoint)
  t.teardown(() => s.close())
  const { file, sha } = await randomFile('big', 12 * MiB + 7)
  await s.put('packs/big.pack', { file })
  const parts = proxy.seen.filter((r) => r.method === 'PUT' && r.query.has('partNumber'))
  t.equal(parts.length, 3, 'three parts: 5 + 5 + 2 MiB')
  const data = await readFile(file)
  for (const [i, p] of parts.entries()) {
    const want = createHash('sha256').update(data.subarray(i * 5 * MiB, Math.min(data.length, (i + 1) * 5 * MiB))).digest('hex')
    t.equal(p.headers['x-amz-content-sha256'], want, `part ${i + 1} goes with its SHA-256 signed (S3 checks it), not unsigned`)
  }
  t.ok(proxy.seen.some((r) => r.method === 'POST' && r.query.has('uploads')), 'a multipart upload was created')
  t.same(await s.head('packs/big.pack'), { key: 'packs/big.pack', size: 12 * MiB + 7 }, 'size is exact: no checksum framing stored')
  const back = await s.get('packs/big.pack')
  t.equal(createHash('sha256').update(back).digest('hex'), sha, 'reads back byte-exact')
  const mid = await s.get('packs/big.pack', { offset: 5 * MiB - 10, length: 20 })
  t.same(mid, back.subarray(5 * MiB - 10, 5 * MiB + 10), 'a range across a part boundary')
  const stored = await stat(join(s3.dir, 'tierfs', 'packs', 'big.pack._S3rver_object'))
  t.equal(stored.size, 12 * MiB + 7, 'the bytes s3rver stored on disk are exactly the file')
})

t.test('a file below the threshold is one PutObject with its SHA-256 signed, stored without framing', async (t) => {
  const proxy = await FaultProxy.start(s3.port)
  t.teardown(() => proxy.close())
  const s = tier({ partSize: 5 * MiB, multipartThreshold: 5 * MiB }, proxy.endpoint)
  t.teardown(() => s.close())
  const { file, sha } = await randomFile('small', 3 * MiB + 1)
  await s.put('packs/small.pack', { file })
  t.same(proxy.seen.map((r) => r.method), ['PUT'])
  t.equal(proxy.seen[0]?.headers['x-amz-content-sha256'], createHash('sha256').update(await readFile(file)).digest('hex'), 'the body hash is signed')
  t.equal((await stat(join(s3.dir, 'tierfs', 'packs', 'small.pack._S3rver_object'))).size, 3 * MiB + 1)
  t.equal(createHash('sha256').update(await s.get('packs/small.pack')).digest('hex'), sha)
  await s.put('packs/empty', { file: (await randomFile('empty', 0)).file })
  t.same(await s.head('packs/empty'), { key: 'packs/empty', size: 0 })
})

t.test('a failed multipart upload is aborted and leaves no object', async (t) => {
  const proxy = await FaultProxy.start(s3.port)
  t.teardown(() => proxy.close())
  const s = tier({ partSize: 5 * MiB, multipartThreshold: 5 * MiB }, proxy.endpoint)
  t.teardown(() => s.close())
  const { file } = await randomFile('big2', 11 * MiB)
  proxy.inject({ error: { status: 500, code: 'InternalError' } }, { match: (r) => r.query.get('partNumber') === '2' })
  const err = await failure(s.put('packs/aborted.pack', { file }))
  t.equal(err.code, 'IO')
  t.equal(err.detail?.transient, true, 'a 500 is transient')
  t.ok(proxy.seen.some((r) => r.method === 'DELETE' && r.query.has('uploadId')), 'AbortMultipartUpload was sent')
  t.equal(await s.head('packs/aborted.pack'), undefined)
})

t.test('ranges: clipped past the end, empty from past the end, servers that widen ranges', async (t) => {
  const s = tier()
  t.teardown(() => s.close())
  const data = randomBytes(1000)
  await s.put('r/obj', { data })
  t.same(await s.get('r/obj', { offset: 0, length: 1 }), data.subarray(0, 1), 's3rver answers bytes=0-0 with the whole object; we clip')
  t.same(await s.get('r/obj', { offset: 990, length: 100 }), data.subarray(990))
  t.same(await s.get('r/obj', { offset: 1000, length: 10 }), Buffer.alloc(0), '416 from the server is an empty range')
  t.same(await s.get('r/obj', { offset: 5000, length: 10 }), Buffer.alloc(0))
  t.same(await s.get('r/obj', { offset: 10, length: 0 }), Buffer.alloc(0))
  t.equal((await failure(s.get('r/none', { offset: 0, length: 0 }))).code, 'NOT_FOUND')
  t.equal((await failure(s.get('r/none', { offset: 5, length: 10 }))).code, 'NOT_FOUND')
})

t.test('list pages through more than one ListObjectsV2 page', async (t) => {
  const proxy = await FaultProxy.start(s3.port)
  t.teardown(() => proxy.close())
  const s = tier({ prefix: 'paged', listPageSize: 10 }, proxy.endpoint)
  t.teardown(() => s.close())
  const keys = Array.from({ length: 25 }, (_, i) => `k/${i % 3}/${String(i).padStart(4, '0')}`).sort()
  await Promise.all(keys.map((k) => s.put(k, { data: Buffer.from('x') })))
  proxy.reset()
  const seen = []
  for await (const o of s.list('k/')) seen.push(o.key)
  t.same(seen.sort(), keys)
  const pages = proxy.seen.filter((r) => r.method === 'GET' && r.query.get('list-type') === '2')
  t.equal(pages.length, 3, 'three pages of at most 10 keys')
  t.ok(pages[1]?.query.has('continuation-token'), 'continued with the token')
  t.notOk(pages.some((r) => r.query.has('delimiter')), 'no delimiter')
})

t.test('a missing bucket is IO naming the target and the bucket', async (t) => {
  const s = new S3Tier(asTierId('object'), { name: 's3-missing', bucket: 'no-such-bucket', endpoint: s3.endpoint, region: 'us-east-1' })
  t.teardown(() => s.close())
  for (const [what, op] of [
    ['ready', () => s.ready()], ['get', () => s.get('a')], ['put', () => s.put('a', { data: Buffer.from('x') })], ['delete', () => s.delete('a')],
    ['list', async () => { for await (const _ of s.list('')) break }],
  ] as const) {
    const err = await failure(op())
    t.equal(err.code, 'IO', what)
    t.match(err.message, /s3-missing.*bucket no-such-bucket does not exist/, what)
    t.not(err.detail?.transient, true, `${what}: not transient`)
  }
})

t.test('an unknown access key id is IO "access denied", naming the target, never the key', async (t) => {
  // s3rver knows one account (S3RVER) and checks the access key id, but not V4 signatures:
  // a wrong secret key is accepted by it. The bad key comes through the SDK's chain, as a profile.
  const dir = await mkdtemp(join(tmpdir(), 'tierfs-aws-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const { writeFile } = await import('node:fs/promises')
  await writeFile(join(dir, 'credentials'), '[wrong]\naws_access_key_id = AKIAWRONGKEYID000000\naws_secret_access_key = wrongsecretvalue0000\n')
  const saved = process.env.AWS_SHARED_CREDENTIALS_FILE
  process.env.AWS_SHARED_CREDENTIALS_FILE = join(dir, 'credentials')
  t.teardown(() => { process.env.AWS_SHARED_CREDENTIALS_FILE = saved })
  const s = tier({ name: 's3-badkey', profile: 'wrong' })
  t.teardown(() => s.close())
  for (const [what, op] of [['ready', () => s.ready()], ['put', () => s.put('a', { data: Buffer.from('x') })], ['get', () => s.get('a')]] as const) {
    const err = await failure(op())
    t.equal(err.code, 'IO', what)
    t.match(err.message, /access denied for target s3-badkey \(check the AWS credential chain\)/, what)
    const everything = JSON.stringify({ m: err.message, d: err.detail, c: String(err.cause), s: err.stack })
    t.notMatch(everything, /AKIAWRONGKEYID|wrongsecretvalue/, `${what}: no credential in the error`)
    t.not(err.detail?.transient, true)
  }
})

t.test('no credentials anywhere in the chain is IO naming the target', async (t) => {
  const s = tier({ name: 's3-nocreds', profile: 'absent' })
  t.teardown(() => s.close())
  const err = await failure(s.put('a', { data: Buffer.from('x') }))
  t.equal(err.code, 'IO')
  t.match(err.message, /no credentials for target s3-nocreds \(check the AWS credential chain\)/)
  t.not(err.detail?.transient, true)
})

t.test('an unreachable endpoint is transient IO naming the target', async (t) => {
  const s = tier({ name: 's3-down' }, 'http://127.0.0.1:9')
  t.teardown(() => s.close())
  for (const [what, op] of [['ready', () => s.ready()], ['head', () => s.head('a')], ['get', () => s.get('a')], ['put', () => s.put('a', { data: Buffer.from('x') })]] as const) {
    const err = await failure(op())
    t.equal(err.code, 'IO', what)
    t.match(err.message, /^s3-down: /, what)
    t.equal(err.detail?.transient, true, `${what}: transient`)
  }
})

t.test('storage classes: archive classes need warm-up; warmth and warmup speak the restore protocol', async (t) => {
  // s3rver stores the storage class but implements neither RestoreObject nor the Restore
  // header; the proxy plays S3's side of those two (documented headers and error codes).
  const proxy = await FaultProxy.start(s3.port)
  t.teardown(() => proxy.close())
  const ia = tier({ storageClass: 'STANDARD_IA' }, proxy.endpoint)
  const deep = tier({ storageClass: 'DEEP_ARCHIVE', restoreTier: 'Bulk', restoreDays: 2 }, proxy.endpoint)
  t.teardown(async () => { await ia.close(); await deep.close() })
  t.equal(ia.capabilities.needsWarmup, false)
  t.equal(deep.capabilities.needsWarmup, true)
  await ia.put('sc/ia', { data: Buffer.from('ia') })
  await deep.put('sc/deep', { data: Buffer.from('deep') })
  const meta = JSON.parse(await (await import('node:fs/promises')).readFile(join(s3.dir, 'tierfs', 'sc', 'deep._S3rver_metadata.json'), 'utf8')) as Record<string, string>
  t.equal(meta['x-amz-storage-class'], 'DEEP_ARCHIVE', 'the storage class reached the server')
  t.equal(await ia.warmth('sc/ia'), 'warm')
  t.equal(await deep.warmth('sc/deep'), 'cold', 'archived, no Restore header')
  const isHead = (r: { method: string; path: string }): boolean => r.method === 'HEAD' && r.path.endsWith('/sc/deep')
  proxy.inject({ addHeaders: { 'x-amz-restore': 'ongoing-request="true"' } }, { match: isHead })
  t.equal(await deep.warmth('sc/deep'), 'warming')
  proxy.inject({ addHeaders: { 'x-amz-restore': 'ongoing-request="false", expiry-date="Fri, 21 Dec 2012 00:00:00 GMT"' } }, { match: isHead })
  t.equal(await deep.warmth('sc/deep'), 'warm')
  t.equal((await failure(deep.warmth('sc/none'))).code, 'NOT_FOUND')

  const isRestore = (r: { method: string; query: URLSearchParams }): boolean => r.method === 'POST' && r.query.has('restore')
  proxy.inject({ reply: { status: 202 } }, { match: isRestore })
  await deep.warmup('sc/deep')
  proxy.inject({ error: { status: 409, code: 'RestoreAlreadyInProgress' } }, { match: isRestore })
  await deep.warmup('sc/deep')
  proxy.inject({ error: { status: 404, code: 'NoSuchKey' } }, { match: isRestore })
  t.equal((await failure(deep.warmup('sc/none'))).code, 'NOT_FOUND')
  t.equal(proxy.seen.filter(isRestore).length, 3)
  proxy.inject({ error: { status: 403, code: 'InvalidObjectState', message: 'The operation is not valid for the object storage class' } }, { match: (r) => r.method === 'GET' })
  t.equal((await failure(deep.get('sc/deep'))).code, 'AGAIN', 'reading an archived object asks to come back later')
  proxy.reset()
  await ia.warmup('sc/ia')
  t.equal(proxy.seen.length, 0, 'warm classes do not call RestoreObject')
})

t.test('checksumMode: when-required sends no checksum, when-supported sends CRC32', async (t) => {
  const proxy = await FaultProxy.start(s3.port)
  t.teardown(() => proxy.close())
  const required = tier({}, proxy.endpoint)
  const supported = tier({ checksumMode: 'when-supported' }, proxy.endpoint)
  t.teardown(async () => { await required.close(); await supported.close() })
  const data = randomBytes(4096)
  await required.put('cs/a', { data })
  await supported.put('cs/b', { data })
  const [a, b] = proxy.seen.filter((r) => r.method === 'PUT')
  t.notOk(Object.keys(a?.headers ?? {}).some((h) => h.startsWith('x-amz-checksum-')), 'when-required: no checksum header')
  t.ok(b?.headers['x-amz-checksum-crc32'] !== undefined, 'when-supported: CRC32 header')
  t.same(await supported.get('cs/b'), data)
})

t.test('targets: parseTarget validates, makeTier builds an S3 tier that works', async (t) => {
  const cfg = parseTarget('s3-primary', { type: 's3', bucket: 'tierfs', endpoint: s3.endpoint, region: 'us-east-1', prefix: '/via-config/' })
  t.match(cfg, { type: 's3', name: 's3-primary', prefix: 'via-config', forcePathStyle: true, storageClass: 'STANDARD', checksumMode: 'when-required', partSize: 16 * MiB })
  const s = makeTier(asTierId('object'), cfg)
  t.teardown(() => s.close())
  await s.ready()
  await s.put('x', { data: Buffer.from('via config') })
  t.equal((await s.get('x')).toString(), 'via config')
  t.ok((await readdir(join(s3.dir, 'tierfs', 'via-config'))).length > 0)
})
