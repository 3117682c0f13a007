import t from 'tap'
import { RestError, StorageSharedKeyCredential } from '@azure/storage-blob'
import { TierfsError } from '../../src/errors.js'
import { resolveAzureCredential, type AzureCredential } from '../../src/tier/azure-credential.js'
import { mapAzureError } from '../../src/tier/azure-error.js'
import { warmthOf } from '../../src/tier/azure-tier.js'
import { parseTarget } from '../../src/tier/targets.js'
import { isTransient } from '../../src/tier/transient.js'

const KEY = Buffer.alloc(64, 9).toString('base64')
const noIdentity = async (): Promise<undefined> => undefined

const failure = async (p: Promise<unknown> | (() => unknown)): Promise<TierfsError> => {
  try {
    await (typeof p === 'function' ? p() : p)
  } catch (err) {
    if (err instanceof TierfsError) return err
    throw err
  }
  throw new Error('expected a failure')
}

t.test('an azure target is parsed with every default filled in', async (t) => {
  t.same(parseTarget('blob', { type: 'azure', endpoint: 'https://acct.blob.core.windows.net', container: 'packs', prefix: '/site-a/' }), {
    type: 'azure', name: 'blob', endpoint: 'https://acct.blob.core.windows.net', container: 'packs', prefix: 'site-a',
    accessTier: 'Hot', rehydrateTo: 'Hot', rehydratePriority: 'Standard', blockSize: 8 * 1024 * 1024, uploadConcurrency: 4, maxConnections: 16,
  })
  const arch = parseTarget('cold', { type: 'azure', endpoint: 'http://127.0.0.1:10000/devstoreaccount1', container: 'c-01', accessTier: 'Archive', rehydrateTo: 'Cool', rehydratePriority: 'High' })
  t.match(arch, { accessTier: 'Archive', rehydrateTo: 'Cool', rehydratePriority: 'High' })
})

t.test('bad azure targets fail CONFIG naming the field, never echoing secrets', async (t) => {
  const base = { type: 'azure', endpoint: 'https://acct.blob.core.windows.net', container: 'packs' }
  const cases: Array<[Record<string, unknown>, RegExp]> = [
    [{ ...base, endpoint: undefined }, /targets\.blob\.endpoint is required/],
    [{ ...base, endpoint: 'acct.blob.core.windows.net' }, /targets\.blob\.endpoint must be the account URL/],
    [{ ...base, container: 'Packs' }, /targets\.blob\.container is not a valid container name/],
    [{ ...base, container: 'a--b' }, /targets\.blob\.container is not a valid container name/],
    [{ ...base, accessTier: 'Glacier' }, /targets\.blob\.accessTier must be one of Hot, Cool, Cold, Archive/],
    [{ ...base, rehydrateTo: 'Archive' }, /targets\.blob\.rehydrateTo must be one of Hot, Cool/],
    [{ ...base, blockSize: 1000 }, /targets\.blob\.blockSize must be an integer/],
    [{ ...base, prefix: 'a/../b' }, /targets\.blob\.prefix may hold only/],
    [{ ...base, accessTeir: 'Cool' }, /targets\.blob\.accessTeir is not a known setting/],
    [{ ...base, accountKey: KEY }, /targets\.blob\.accountKey is not allowed: credentials never go in tierfs configuration \(set AZURE_STORAGE_CONNECTION_STRING/],
    [{ ...base, connectionString: `AccountName=a;AccountKey=${KEY}` }, /targets\.blob\.connectionString is not allowed/],
  ]
  for (const [raw, re] of cases) {
    const e = await failure(() => parseTarget('blob', raw))
    t.equal(e.code, 'CONFIG')
    t.match(e.message, re)
    t.notOk(e.message.includes(KEY))
  }
})

t.test('credentials come from the environment in the documented order', async (t) => {
  const identity = new StorageSharedKeyCredential('from-identity', KEY) as AzureCredential
  const name = async (env: NodeJS.ProcessEnv, load = noIdentity as () => Promise<AzureCredential | undefined>): Promise<string> => {
    const c = await resolveAzureCredential('blob', env, load)
    return c instanceof StorageSharedKeyCredential ? c.accountName : 'token'
  }
  t.equal(await name({ AZURE_STORAGE_CONNECTION_STRING: `DefaultEndpointsProtocol=https;AccountName=cs;AccountKey=${KEY};EndpointSuffix=core.windows.net`, AZURE_STORAGE_ACCOUNT: 'env', AZURE_STORAGE_KEY: KEY }), 'cs')
  t.equal(await name({ AZURE_STORAGE_ACCOUNT: 'env', AZURE_STORAGE_KEY: KEY }), 'env')
  t.equal(await name({ AZURE_STORAGE_ACCOUNT: 'env' }, async () => identity), 'from-identity', 'an account without a key falls through to identity')
  t.equal(await name({}, async () => identity), 'from-identity')

  const none = await failure(resolveAzureCredential('blob', {}, noIdentity))
  t.equal(none.code, 'CONFIG')
  t.equal(none.message, 'target blob: no Azure credentials: set AZURE_STORAGE_CONNECTION_STRING, or AZURE_STORAGE_ACCOUNT and AZURE_STORAGE_KEY')
  const sas = await failure(resolveAzureCredential('blob', { AZURE_STORAGE_CONNECTION_STRING: 'BlobEndpoint=https://a.blob.core.windows.net;SharedAccessSignature=sv=2020&sig=SECRET' }, noIdentity))
  t.match(sas.message, /must contain AccountName and AccountKey \(SAS connection strings are not supported\)/)
  t.notOk(sas.message.includes('SECRET'))
  const notBase64 = await failure(resolveAzureCredential('blob', { AZURE_STORAGE_ACCOUNT: 'a', AZURE_STORAGE_KEY: 'not a key!' }, noIdentity))
  t.equal(notBase64.message, 'target blob: the account key from AZURE_STORAGE_KEY is not base64')
})

t.test('warmth follows the blob tier and archive status', async (t) => {
  t.equal(warmthOf({ accessTier: 'Archive' }), 'cold')
  t.equal(warmthOf({ accessTier: 'Archive', archiveStatus: 'rehydrate-pending-to-hot' }), 'warming')
  t.equal(warmthOf({ accessTier: 'Archive', archiveStatus: 'rehydrate-pending-to-cool' }), 'warming')
  t.equal(warmthOf({ accessTier: 'Hot' }), 'warm')
  t.equal(warmthOf({ accessTier: 'Cool' }), 'warm')
  t.equal(warmthOf({}), 'warm')
})

t.test('service failures azurite cannot produce map as the Tier contract says', async (t) => {
  const ctx = { target: 'blob', container: 'packs', op: 'get', key: 'k' }
  const http = (statusCode: number, code: string): RestError => new RestError('service says no', { statusCode, code })
  for (const [err, transient] of [
    [http(503, 'ServerBusy'), true],
    [http(500, 'InternalError'), true],
    [http(429, 'TooManyRequests'), true],
    [http(408, 'OperationTimedOut'), true],
    [new RestError('socket hang up', { code: 'ECONNRESET' }), true],
    [new RestError('request failed', { code: 'REQUEST_SEND_ERROR' }), true],
    [Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' }), true],
    [http(400, 'InvalidHeaderValue'), false],
    [http(400, 'InvalidBlockList'), true],
    [http(412, 'ConditionNotMet'), false],
  ] as const) {
    const e = mapAzureError(err, ctx)
    t.equal(e.code, 'IO', e.message)
    t.equal(isTransient(e), transient, e.message)
  }
  t.equal(mapAzureError(http(409, 'BlobBeingRehydrated'), ctx).code, 'AGAIN')
  t.equal(mapAzureError(http(401, 'InvalidAuthenticationInfo'), ctx).message, 'blob: get k: access denied for target blob (check AZURE_STORAGE_* environment)')
  const unavailable = Object.assign(new Error('DefaultAzureCredential failed'), { name: 'CredentialUnavailableError' })
  t.match(mapAzureError(unavailable, ctx), { code: 'IO', message: 'blob: get k: no usable Azure identity for target blob (check AZURE_STORAGE_* environment)' })
  t.equal(mapAzureError(Object.assign(new Error('ENOENT: no such file'), { code: 'ENOENT' }), { ...ctx, op: 'put' }).code, 'NOT_FOUND', 'a missing source file')
})
