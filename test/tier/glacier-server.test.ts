import t, { type Test } from 'tap'
import { createHash, randomBytes } from 'node:crypto'
import {
  AbortMultipartUploadCommand, CompleteMultipartUploadCommand, CreateVaultCommand, DeleteArchiveCommand, DescribeJobCommand,
  DescribeVaultCommand, GetJobOutputCommand, GlacierClient, InitiateJobCommand, InitiateMultipartUploadCommand,
  ListMultipartUploadsCommand, UploadArchiveCommand, UploadMultipartPartCommand,
} from '@aws-sdk/client-glacier'
import { combineTreeHashes, treeHash } from '../../src/tier/tree-hash.js'
import { startGlacierServer, TEST_REGION, useTestCredentials, type GlacierServer } from '../support/glacier-server.js'

const MiB = 1024 * 1024
const V = 'v1'

useTestCredentials()

const hex = (b: Buffer): string => treeHash(b).toString('hex')
const sha256 = (b: Buffer): string => createHash('sha256').update(b).digest('hex')
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))

interface Failure { name: string; status: number | undefined; message: string }
async function failure(p: Promise<unknown>): Promise<Failure> {
  try {
    await p
  } catch (err) {
    const e = err as { name: string; message: string; $metadata?: { httpStatusCode?: number } }
    return { name: e.name, status: e.$metadata?.httpStatusCode, message: e.message }
  }
  throw new Error('expected the request to be rejected')
}

async function start(t: Test, jobDelayMs = 300): Promise<{ server: GlacierServer; client: GlacierClient }> {
  const server = await startGlacierServer({ jobDelayMs })
  t.teardown(() => server.stop())
  const client = new GlacierClient({ region: TEST_REGION, endpoint: server.endpoint, maxAttempts: 1 })
  t.teardown(() => client.destroy())
  await client.send(new CreateVaultCommand({ accountId: '-', vaultName: V }))
  return { server, client }
}

async function upload(client: GlacierClient, body: Buffer): Promise<string> {
  const out = await client.send(new UploadArchiveCommand({ accountId: '-', vaultName: V, body }))
  return out.archiveId as string
}

t.test('accepts the SDK\'s well-formed requests, end to end', async (t) => {
  const { client } = await start(t)
  const data = randomBytes(3 * MiB + 1000)
  const up = await client.send(new UploadArchiveCommand({ accountId: '-', vaultName: V, body: data }))
  t.equal(up.checksum, hex(data), 'returns the archive tree hash')
  t.match(up.archiveId, /^[A-Za-z0-9_-]{138}$/)
  t.match(up.location, new RegExp(`^/111122223333/vaults/${V}/archives/`))
  const vault = await client.send(new DescribeVaultCommand({ accountId: '-', vaultName: V }))
  t.equal(vault.NumberOfArchives, 1)
  t.equal(vault.SizeInBytes, data.length)

  const job = await client.send(new InitiateJobCommand({ accountId: '-', vaultName: V, jobParameters: { Type: 'archive-retrieval', ArchiveId: up.archiveId, Tier: 'Bulk' } }))
  const d1 = await client.send(new DescribeJobCommand({ accountId: '-', vaultName: V, jobId: job.jobId }))
  t.equal(d1.StatusCode, 'InProgress')
  t.equal(d1.Completed, false)
  t.equal(d1.Tier, 'Bulk')
  const early = await failure(client.send(new GetJobOutputCommand({ accountId: '-', vaultName: V, jobId: job.jobId })))
  t.same([early.name, early.status], ['InvalidParameterValueException', 400], 'output before the job completes')
  t.match(early.message, /not currently available/)
  await sleep(350)
  const d2 = await client.send(new DescribeJobCommand({ accountId: '-', vaultName: V, jobId: job.jobId }))
  t.same([d2.StatusCode, d2.Completed, d2.SHA256TreeHash, d2.ArchiveSizeInBytes, d2.RetrievalByteRange], ['Succeeded', true, hex(data), data.length, `0-${data.length - 1}`])

  const whole = await client.send(new GetJobOutputCommand({ accountId: '-', vaultName: V, jobId: job.jobId }))
  t.equal(whole.status, 200)
  t.equal(whole.checksum, hex(data))
  t.same(Buffer.from(await whole.body!.transformToByteArray()), data)
  const aligned = await client.send(new GetJobOutputCommand({ accountId: '-', vaultName: V, jobId: job.jobId, range: `bytes=${MiB}-${3 * MiB - 1}` }))
  t.equal(aligned.status, 206)
  t.equal(aligned.contentRange, `bytes ${MiB}-${3 * MiB - 1}/${data.length}`)
  t.equal(aligned.checksum, hex(data.subarray(MiB, 3 * MiB)), 'tree hash of a MiB-aligned range')
  t.same(Buffer.from(await aligned.body!.transformToByteArray()), data.subarray(MiB, 3 * MiB))
  const tail = await client.send(new GetJobOutputCommand({ accountId: '-', vaultName: V, jobId: job.jobId, range: `bytes=${3 * MiB}-${data.length - 1}` }))
  t.equal(tail.checksum, hex(data.subarray(3 * MiB)), 'tree hash of a range up to the archive end')
  await tail.body!.transformToByteArray()
  const odd = await client.send(new GetJobOutputCommand({ accountId: '-', vaultName: V, jobId: job.jobId, range: 'bytes=10-99' }))
  t.equal(odd.checksum, undefined, 'no tree hash for an unaligned range')
  t.same(Buffer.from(await odd.body!.transformToByteArray()), data.subarray(10, 100))

  const ranged = await client.send(new InitiateJobCommand({ accountId: '-', vaultName: V, jobParameters: { Type: 'archive-retrieval', ArchiveId: up.archiveId, RetrievalByteRange: `${2 * MiB}-${3 * MiB - 1}` } }))
  await sleep(350)
  const d3 = await client.send(new DescribeJobCommand({ accountId: '-', vaultName: V, jobId: ranged.jobId }))
  t.equal(d3.SHA256TreeHash, hex(data.subarray(2 * MiB, 3 * MiB)), 'a tree-hash-aligned retrieval range has its hash')
  const part = await client.send(new GetJobOutputCommand({ accountId: '-', vaultName: V, jobId: ranged.jobId, range: 'bytes=5-9' }))
  t.same(Buffer.from(await part.body!.transformToByteArray()), data.subarray(2 * MiB + 5, 2 * MiB + 10), 'output ranges are relative to the job range')

  await client.send(new DeleteArchiveCommand({ accountId: '-', vaultName: V, archiveId: up.archiveId }))
  const gone = await failure(client.send(new DeleteArchiveCommand({ accountId: '-', vaultName: V, archiveId: up.archiveId })))
  t.same([gone.name, gone.status], ['ResourceNotFoundException', 404])
})

t.test('multipart: accepts contiguous parts, rejects what Glacier rejects', async (t) => {
  const { client, server } = await start(t)
  const data = randomBytes(2 * MiB + 77)
  const init = async (partSize = MiB): Promise<string> =>
    (await client.send(new InitiateMultipartUploadCommand({ accountId: '-', vaultName: V, partSize: String(partSize) }))).uploadId as string
  const part = (uploadId: string, start: number, end: number, checksum?: string): Promise<unknown> => client.send(new UploadMultipartPartCommand({
    accountId: '-', vaultName: V, uploadId, range: `bytes ${start}-${end}/*`, body: data.subarray(start, end + 1), ...(checksum === undefined ? {} : { checksum }),
  }))
  const complete = (uploadId: string, size = data.length, checksum = hex(data)): Promise<{ archiveId?: string; checksum?: string }> =>
    client.send(new CompleteMultipartUploadCommand({ accountId: '-', vaultName: V, uploadId, archiveSize: String(size), checksum }))

  const good = await init()
  await part(good, 2 * MiB, data.length - 1)
  await part(good, 0, MiB - 1)
  await part(good, MiB, 2 * MiB - 1)
  const done = await complete(good)
  t.equal(done.checksum, hex(data))
  t.equal(done.checksum, combineTreeHashes([data.subarray(0, MiB), data.subarray(MiB, 2 * MiB), data.subarray(2 * MiB)].map((b) => treeHash(b))).toString('hex'))

  const bad = await failure(client.send(new InitiateMultipartUploadCommand({ accountId: '-', vaultName: V, partSize: String(3 * MiB) })))
  t.same([bad.name, bad.status], ['InvalidParameterValueException', 400], 'part size not a power of two MiB')

  const gap = await init()
  await part(gap, 0, MiB - 1)
  await part(gap, 2 * MiB, data.length - 1)
  const g = await failure(complete(gap))
  t.same([g.name, g.status], ['InvalidParameterValueException', 400], 'non-contiguous parts')
  t.match(g.message, /not contiguous/)

  const misaligned = await init()
  const m = await failure(part(misaligned, 1000, MiB + 999))
  t.same([m.name, m.status], ['InvalidParameterValueException', 400], 'Content-Range not on a part boundary')
  const big = await failure(part(misaligned, 0, 2 * MiB - 1))
  t.same([big.name, big.status], ['InvalidParameterValueException', 400], 'a part larger than the declared part size')
  const wrongHash = await failure(part(misaligned, 0, MiB - 1, 'ab'.repeat(32)))
  t.same([wrongHash.name, wrongHash.status], ['InvalidParameterValueException', 400], 'a part with a wrong tree hash')

  const single = await init(2 * MiB)
  await part(single, 0, MiB - 1)
  t.ok((await complete(single, MiB, hex(data.subarray(0, MiB)))).archiveId, 'one part shorter than the part size is a whole archive')
  const sized = await init()
  await part(sized, 0, MiB - 1)
  await part(sized, MiB, 2 * MiB - 1)
  await part(sized, 2 * MiB, data.length - 1)
  t.same((await failure(complete(sized, data.length + 1))).name, 'InvalidParameterValueException', 'wrong archive size')
  t.same((await failure(complete(sized, data.length, 'cd'.repeat(32)))).name, 'InvalidParameterValueException', 'wrong final tree hash')
  t.ok((await complete(sized)).archiveId, 'the upload stays open after a refused completion')

  const open = await client.send(new ListMultipartUploadsCommand({ accountId: '-', vaultName: V }))
  t.equal(open.UploadsList?.length, 2, 'the refused ones stay open')
  for (const u of open.UploadsList ?? []) await client.send(new AbortMultipartUploadCommand({ accountId: '-', vaultName: V, uploadId: u.MultipartUploadId }))
  t.equal((await server.stats()).vaults[V]?.uploads, 0)
  t.equal((await failure(complete(gap))).name, 'ResourceNotFoundException', 'an aborted upload is gone')
})

t.test('rejects bad checksums, ranges and missing vaults', async (t) => {
  const { client, server } = await start(t)
  const data = randomBytes(1000)
  const tree = await failure(client.send(new UploadArchiveCommand({ accountId: '-', vaultName: V, body: data, checksum: 'ab'.repeat(32) })))
  t.same([tree.name, tree.status], ['InvalidParameterValueException', 400], 'wrong x-amz-sha256-tree-hash')

  // Clients that change a request after the SDK computed its checksums and before it signs it:
  // the signature stays valid, so the server must catch the lie from the body itself.
  const tampering = (name: string, change: (req: { headers: Record<string, string>; body: unknown }) => void): GlacierClient => {
    const c = new GlacierClient({ region: TEST_REGION, endpoint: server.endpoint, maxAttempts: 1 })
    t.teardown(() => c.destroy())
    c.middlewareStack.addRelativeTo((next: (a: unknown) => Promise<unknown>) => async (args: unknown) => {
      change((args as { request: { headers: Record<string, string>; body: unknown } }).request)
      return next(args)
    }, { relation: 'after', toMiddleware: 'addChecksumHeadersMiddleware', name })
    return c
  }
  const lying = tampering('lieAboutContent', (req) => { req.headers['x-amz-content-sha256'] = sha256(Buffer.from('something else')) })
  const content = await failure(lying.send(new UploadArchiveCommand({ accountId: '-', vaultName: V, body: data })))
  t.same([content.name, content.status], ['InvalidParameterValueException', 400], 'x-amz-content-sha256 not the hash of the body (signed consistently)')
  t.match(content.message, /x-amz-content-sha256/)
  const emptying = tampering('emptyBody', (req) => {
    req.body = Buffer.alloc(0)
    req.headers['content-length'] = '0'
    req.headers['x-amz-content-sha256'] = sha256(Buffer.alloc(0))
    req.headers['x-amz-sha256-tree-hash'] = sha256(Buffer.alloc(0))
  })
  const empty = await failure(emptying.send(new UploadArchiveCommand({ accountId: '-', vaultName: V, body: data })))
  t.same([empty.name, empty.status], ['InvalidParameterValueException', 400], 'an empty archive')
  t.match(empty.message, /Content-Length: 0/)

  const id = await upload(client, randomBytes(3 * MiB + 5))
  for (const r of ['1-1048575', `0-${MiB}`, `${MiB}-${4 * MiB}`, 'x-y']) {
    const e = await failure(client.send(new InitiateJobCommand({ accountId: '-', vaultName: V, jobParameters: { Type: 'archive-retrieval', ArchiveId: id, RetrievalByteRange: r } })))
    t.same([e.name, e.status], ['InvalidParameterValueException', 400], `RetrievalByteRange ${r}`)
  }
  const tier = await failure(client.send(new InitiateJobCommand({ accountId: '-', vaultName: V, jobParameters: { Type: 'archive-retrieval', ArchiveId: id, Tier: 'Fast' } })))
  t.equal(tier.status, 400, 'unknown retrieval tier')
  const noArchive = await failure(client.send(new InitiateJobCommand({ accountId: '-', vaultName: V, jobParameters: { Type: 'archive-retrieval', ArchiveId: 'nope' } })))
  t.same([noArchive.name, noArchive.status], ['ResourceNotFoundException', 404])
  const noJob = await failure(client.send(new DescribeJobCommand({ accountId: '-', vaultName: V, jobId: 'nope' })))
  t.same([noJob.name, noJob.status], ['ResourceNotFoundException', 404])
  const noVault = await failure(client.send(new UploadArchiveCommand({ accountId: '-', vaultName: 'nope', body: data })))
  t.same([noVault.name, noVault.status], ['ResourceNotFoundException', 404])
  t.match(noVault.message, /Vault not found for ARN: arn:aws:glacier:us-east-1:111122223333:vaults\/nope/)
  const account = await failure(client.send(new DescribeVaultCommand({ accountId: '999988887777', vaultName: V })))
  t.same([account.name, account.status], ['AccessDeniedException', 403], 'another account')
})

t.test('authentication: missing, malformed, wrong key, wrong signature', async (t) => {
  const { server, client } = await start(t)
  const url = `${server.endpoint}/-/vaults/${V}`
  const raw = async (headers: Record<string, string>): Promise<{ status: number; body: { code: string; message: string; type: string } }> => {
    const res = await fetch(url, { headers })
    return { status: res.status, body: await res.json() as { code: string; message: string; type: string } }
  }
  const none = await raw({ 'x-amz-glacier-version': '2012-06-01' })
  t.same([none.status, none.body.code, none.body.type], [400, 'MissingAuthenticationTokenException', 'Client'], 'no Authorization header')
  t.type(none.body.message, 'string')
  const junk = await raw({ authorization: 'Basic dXNlcjpwYXNz', 'x-amz-glacier-version': '2012-06-01' })
  t.equal(junk.status, 400)
  t.equal(junk.body.code, 'IncompleteSignatureException', 'not a SigV4 header')
  const now = new Date().toISOString().replace(/[-:]/g, '').replace(/\.\d{3}/, '')
  const shaped = `AWS4-HMAC-SHA256 Credential=AKIDTIERFSGLACIER01/${now.slice(0, 8)}/${TEST_REGION}/glacier/aws4_request, SignedHeaders=host;x-amz-date, Signature=${'0'.repeat(64)}`
  const noDate = await raw({ authorization: shaped, 'x-amz-glacier-version': '2012-06-01' })
  t.same([noDate.status, noDate.body.code], [400, 'MissingParameterValueException'], 'no x-amz-date')
  const noVersion = await raw({ authorization: shaped, 'x-amz-date': now })
  t.same([noVersion.status, noVersion.body.code], [400, 'MissingParameterValueException'], 'no x-amz-glacier-version')
  t.match(noVersion.body.message, /x-amz-glacier-version/)
  const forged = await raw({ authorization: shaped, 'x-amz-date': now, 'x-amz-glacier-version': '2012-06-01' })
  t.same([forged.status, forged.body.code], [403, 'InvalidSignatureException'], 'a signature that does not verify')
  const stale = await raw({ authorization: shaped.replace(now.slice(0, 8), '20200101'), 'x-amz-date': '20200101T000000Z', 'x-amz-glacier-version': '2012-06-01' })
  t.same([stale.status, stale.body.code], [403, 'InvalidSignatureException'], 'a date too far from now')
  t.match(stale.body.message, /expired/)

  const endpoint = server.endpoint
  const stranger = new GlacierClient({ region: TEST_REGION, endpoint, maxAttempts: 1, credentials: { accessKeyId: 'AKIDSOMEONEELSE', secretAccessKey: 'x' } })
  t.teardown(() => stranger.destroy())
  const s = await failure(stranger.send(new DescribeVaultCommand({ accountId: '-', vaultName: V })))
  t.same([s.name, s.status], ['UnrecognizedClientException', 403], 'an unknown access key')
  const wrongSecret = new GlacierClient({ region: TEST_REGION, endpoint, maxAttempts: 1, credentials: { accessKeyId: 'AKIDTIERFSGLACIER01', secretAccessKey: 'wrong' } })
  t.teardown(() => wrongSecret.destroy())
  const w = await failure(wrongSecret.send(new DescribeVaultCommand({ accountId: '-', vaultName: V })))
  t.same([w.name, w.status], ['InvalidSignatureException', 403], 'the right key id with a wrong secret')
  const elsewhere = new GlacierClient({ region: 'eu-west-1', endpoint, maxAttempts: 1 })
  t.teardown(() => elsewhere.destroy())
  const r = await failure(elsewhere.send(new DescribeVaultCommand({ accountId: '-', vaultName: V })))
  t.same([r.name, r.status], ['InvalidSignatureException', 403], 'a signature scoped to another region')
  t.ok((await client.send(new DescribeVaultCommand({ accountId: '-', vaultName: V }))).VaultARN, 'the test key from the environment verifies')
})

t.test('fault injection: the next N requests fail with the configured error', async (t) => {
  const { server, client } = await start(t)
  await server.faults({ count: 2, status: 400, code: 'ThrottlingException' })
  const a = await failure(client.send(new DescribeVaultCommand({ accountId: '-', vaultName: V })))
  t.same([a.name, a.status], ['ThrottlingException', 400])
  await server.faults({ count: 1, status: 503, code: 'ServiceUnavailableException' })
  const b = await failure(client.send(new DescribeVaultCommand({ accountId: '-', vaultName: V })))
  t.same([b.name, b.status], ['ServiceUnavailableException', 503])
  t.ok(await client.send(new DescribeVaultCommand({ accountId: '-', vaultName: V })), 'then requests succeed again')
  const retrying = new GlacierClient({ region: TEST_REGION, endpoint: server.endpoint, maxAttempts: 3 })
  t.teardown(() => retrying.destroy())
  await server.faults({ count: 2, status: 500, code: 'InternalFailure' })
  const before = (await server.stats()).requests.DescribeVault ?? 0
  t.ok(await retrying.send(new DescribeVaultCommand({ accountId: '-', vaultName: V })), 'the SDK retries 5xx')
  t.equal(((await server.stats()).requests.DescribeVault ?? 0) - before, 3)
})

t.test('archive descriptions are checked, kept and shown; vault inventories in CSV and JSON', async (t) => {
  const { client, server } = await start(t)
  const withDescription = async (body: Buffer, archiveDescription?: string): Promise<string> =>
    (await client.send(new UploadArchiveCommand({ accountId: '-', vaultName: V, body, ...(archiveDescription === undefined ? {} : { archiveDescription }) }))).archiveId as string
  const a = await withDescription(randomBytes(100), 'tierfs:packs/ab/a.pack')
  const b = await withDescription(randomBytes(200), 'other tool, "daily"')
  const c = await withDescription(randomBytes(300))
  const long = await failure(withDescription(randomBytes(10), 'x'.repeat(1025)))
  t.same([long.name, long.status], ['InvalidParameterValueException', 400], 'a description over 1024 characters')
  const up = await client.send(new InitiateMultipartUploadCommand({ accountId: '-', vaultName: V, partSize: String(MiB), archiveDescription: 'tierfs:packs/cd/m.pack' }))
  const listed = await client.send(new ListMultipartUploadsCommand({ accountId: '-', vaultName: V }))
  t.same(listed.UploadsList?.map((u) => [u.MultipartUploadId, u.ArchiveDescription]), [[up.uploadId, 'tierfs:packs/cd/m.pack']])

  const vault = await client.send(new DescribeVaultCommand({ accountId: '-', vaultName: V }))
  t.type(vault.LastInventoryDate, 'string', 'the vault has an inventory')
  t.ok(Date.parse(vault.LastInventoryDate as string) <= Date.now())

  const csvJob = await client.send(new InitiateJobCommand({ accountId: '-', vaultName: V, jobParameters: { Type: 'inventory-retrieval', Format: 'CSV' } }))
  const jsonJob = await client.send(new InitiateJobCommand({ accountId: '-', vaultName: V, jobParameters: { Type: 'inventory-retrieval' } }))
  await client.send(new DeleteArchiveCommand({ accountId: '-', vaultName: V, archiveId: c }))
  const running = await client.send(new DescribeJobCommand({ accountId: '-', vaultName: V, jobId: csvJob.jobId }))
  t.same([running.Action, running.StatusCode, running.Completed, running.InventoryRetrievalParameters?.Format], ['InventoryRetrieval', 'InProgress', false, 'CSV'])
  t.same((await failure(client.send(new GetJobOutputCommand({ accountId: '-', vaultName: V, jobId: csvJob.jobId })))).name, 'InvalidParameterValueException', 'no output before the job delay')
  await sleep(350)
  const done = await client.send(new DescribeJobCommand({ accountId: '-', vaultName: V, jobId: csvJob.jobId }))
  t.same([done.StatusCode, done.Completed, done.ArchiveId, done.SHA256TreeHash], ['Succeeded', true, undefined, undefined])
  const csv = await client.send(new GetJobOutputCommand({ accountId: '-', vaultName: V, jobId: csvJob.jobId }))
  t.equal(csv.checksum, undefined, 'no tree hash for inventory output')
  const lines = (await csv.body!.transformToString()).trim().split('\n')
  t.equal(lines[0], 'ArchiveId,ArchiveDescription,CreationDate,Size,SHA256TreeHash')
  t.equal(done.InventorySizeInBytes, Buffer.byteLength(`${lines.join('\n')}\n`))
  t.equal(lines.length, 4, 'three archives: the one deleted after the inventory date is still listed')
  t.match(lines[1], new RegExp(`^${a},tierfs:packs/ab/a\\.pack,\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\dZ,100,[0-9a-f]{64}$`))
  t.ok(lines[2]?.startsWith(`${b},"other tool, ""daily""",`), 'a description with a comma and quotes is quoted')
  t.ok(lines[3]?.startsWith(`${c},,`), 'an archive without a description')
  const json = JSON.parse(await (await client.send(new GetJobOutputCommand({ accountId: '-', vaultName: V, jobId: jsonJob.jobId }))).body!.transformToString()) as {
    InventoryDate: string; ArchiveList: Array<{ ArchiveId: string; ArchiveDescription: string; Size: number }>
  }
  t.match(json.InventoryDate, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/)
  t.same(json.ArchiveList.map((x) => [x.ArchiveId, x.ArchiveDescription, x.Size]), [[a, 'tierfs:packs/ab/a.pack', 100], [b, 'other tool, "daily"', 200], [c, '', 300]])

  // An inventory an hour old lists none of these archives: they are newer.
  await server.configure({ inventoryLagMs: 3600_000 })
  const old = await client.send(new DescribeVaultCommand({ accountId: '-', vaultName: V }))
  t.equal(old.LastInventoryDate, undefined, 'the vault is younger than an hour: no inventory yet')
  const none = await failure(client.send(new InitiateJobCommand({ accountId: '-', vaultName: V, jobParameters: { Type: 'inventory-retrieval', Format: 'CSV' } })))
  t.equal(none.status, 404, 'no inventory to retrieve')
  const bad = await failure(client.send(new InitiateJobCommand({ accountId: '-', vaultName: V, jobParameters: { Type: 'inventory-retrieval', Format: 'XML' } })))
  t.same([bad.name, bad.status], ['InvalidParameterValueException', 400])
})

t.test('CompleteMultipartUpload repeated returns the same archive for a while, then the upload is unknown', async (t) => {
  const { client, server } = await start(t)
  const data = randomBytes(MiB + 10)
  const init = await client.send(new InitiateMultipartUploadCommand({ accountId: '-', vaultName: V, partSize: String(MiB) }))
  for (const [s, e] of [[0, MiB - 1], [MiB, data.length - 1]] as const) {
    await client.send(new UploadMultipartPartCommand({ accountId: '-', vaultName: V, uploadId: init.uploadId, range: `bytes ${s}-${e}/*`, body: data.subarray(s, e + 1) }))
  }
  const complete = (size = data.length, checksum = hex(data)): Promise<{ archiveId?: string; checksum?: string }> =>
    client.send(new CompleteMultipartUploadCommand({ accountId: '-', vaultName: V, uploadId: init.uploadId, archiveSize: String(size), checksum }))
  const first = await complete()
  const again = await complete()
  t.equal(again.archiveId, first.archiveId, 'the same archive id')
  t.equal(again.checksum, hex(data))
  t.equal((await server.stats()).vaults[V]?.archives, 1, 'no second archive')
  t.same((await failure(complete(data.length, 'ab'.repeat(32)))).name, 'InvalidParameterValueException', 'a different tree hash is refused')
  const abort = await failure(client.send(new AbortMultipartUploadCommand({ accountId: '-', vaultName: V, uploadId: init.uploadId })))
  t.same([abort.name, abort.status], ['ResourceNotFoundException', 404], 'a completed upload cannot be aborted')
  await client.send(new DeleteArchiveCommand({ accountId: '-', vaultName: V, archiveId: first.archiveId }))
  t.equal((await complete()).archiveId, first.archiveId, 'still answered after the archive is deleted')
  await server.configure({ completionMemoryMs: 0 })
  const gone = await failure(complete())
  t.same([gone.name, gone.status], ['ResourceNotFoundException', 404], 'forgotten after the completion memory')
  const res = await fetch(`${server.endpoint}/-/vaults/${V}/multipart-uploads/nope`, { method: 'DELETE' })
  t.equal(res.status, 400, 'unsigned requests are refused before anything else')
  const noUpload = await failure(client.send(new AbortMultipartUploadCommand({ accountId: '-', vaultName: V, uploadId: 'nope' })))
  t.same([noUpload.name, noUpload.status], ['ResourceNotFoundException', 404], 'an unknown upload')
  const noJob = await failure(client.send(new GetJobOutputCommand({ accountId: '-', vaultName: V, jobId: 'nope' })))
  t.same([noJob.name, noJob.status], ['ResourceNotFoundException', 404], 'an unknown job')
})
