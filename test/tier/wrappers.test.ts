import t, { type Test } from 'tap'
import { randomBytes } from 'node:crypto'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { TierfsError } from '../../src/errors.js'
import { asTierId } from '../../src/ids.js'
import { LimitTier } from '../../src/tier/limit-tier.js'
import { LocalTier } from '../../src/tier/local-tier.js'
import { MetricsTier } from '../../src/tier/metrics-tier.js'
import { RetryTier, type RetryOptions } from '../../src/tier/retry-tier.js'
import { S3Tier, type S3TierOptions } from '../../src/tier/s3-tier.js'
import { FaultProxy, type SeenRequest } from '../support/fault-proxy.js'
import { S3rverProcess, useS3rverCredentials } from '../support/s3rver-process.js'

useS3rverCredentials()
const s3 = await S3rverProcess.start({ buckets: ['tierfs'] })
t.teardown(() => s3.destroy())
const scratch = await mkdtemp(join(tmpdir(), 'tierfs-wrappers-'))
t.teardown(() => rm(scratch, { recursive: true, force: true }))

let prefixes = 0
/** A fresh S3Tier (own key prefix) through `endpoint`, closed at the end of `t`. */
function s3Tier(t: Test, endpoint: string, opts: Partial<S3TierOptions> = {}): S3Tier {
  const tier = new S3Tier(asTierId('object'), { name: 's3-wrapped', bucket: 'tierfs', endpoint, region: 'us-east-1', prefix: `w${++prefixes}`, ...opts })
  t.teardown(() => tier.close())
  return tier
}

async function proxyFor(t: Test): Promise<FaultProxy> {
  const proxy = await FaultProxy.start(s3.port)
  t.teardown(() => proxy.close())
  return proxy
}

const fast: RetryOptions = { attempts: 5, baseDelayMs: 5, maxDelayMs: 40 }

async function failure(p: Promise<unknown>): Promise<TierfsError> {
  try {
    await p
  } catch (err) {
    if (err instanceof TierfsError) return err
    throw err
  }
  throw new Error('expected a failure')
}

const puts = (key: string) => (r: SeenRequest): boolean => r.method === 'PUT' && r.path.endsWith(`/${key}`)
const gets = (key: string) => (r: SeenRequest): boolean => r.method === 'GET' && r.path.endsWith(`/${key}`)

t.test('retry: an S3 tier behind RetryTier succeeds through injected faults', async (t) => {
  const proxy = await proxyFor(t)
  const retries: string[] = []
  const tier = new RetryTier(s3Tier(t, proxy.endpoint, { idleTimeoutMs: 600 }), { ...fast, onRetry: (i) => retries.push(`${i.op}:${i.error.detail?.s3Code ?? i.error.message}`) })
  const data = randomBytes(200_000)
  proxy.inject({ error: { status: 500, code: 'InternalError' } }, { match: puts('obj') })
  proxy.inject({ error: { status: 503, code: 'SlowDown', message: 'Please reduce your request rate.' } }, { match: puts('obj') })
  proxy.inject({ reset: true }, { match: puts('obj') })
  await tier.put('obj', { data })
  t.equal(proxy.seen.filter(puts('obj')).length, 4, 'three faults, then the fourth attempt went through')

  proxy.inject({ cutAfterBytes: 70_000 }, { match: gets('obj') })
  proxy.inject({ delayMs: 3000 }, { match: gets('obj') })
  proxy.inject({ error: { status: 502, code: 'BadGateway' } }, { match: gets('obj') })
  t.same(await tier.get('obj'), data, 'a body cut mid-response, a silent server (idle timeout) and a 502 were retried')
  t.equal(proxy.seen.filter(gets('obj')).length, 4)
  t.equal(retries.length, 6)
  t.match(retries, ['put:InternalError', 'put:SlowDown', /^put:.*transport error/, /^get:.*transport error/, /^get:.*transport error/, 'get:BadGateway'])
  t.equal(proxy.pending(), 0)
})

t.test('retry: gives up with the last transient IO error after the attempt budget', async (t) => {
  const proxy = await proxyFor(t)
  const tier = new RetryTier(s3Tier(t, proxy.endpoint), { ...fast, attempts: 3 })
  proxy.inject({ error: { status: 503, code: 'SlowDown' } }, { times: 10, match: puts('obj') })
  const err = await failure(tier.put('obj', { data: Buffer.from('x') }))
  t.equal(err.code, 'IO')
  t.equal(err.detail?.transient, true)
  t.match(err.message, /s3-wrapped: put obj: HTTP 503 SlowDown/)
  t.equal(proxy.seen.filter(puts('obj')).length, 3, 'exactly the budget')
})

t.test('retry: final failures are not retried', async (t) => {
  const proxy = await proxyFor(t)
  let retried = 0
  const tier = new RetryTier(s3Tier(t, proxy.endpoint), { ...fast, onRetry: () => retried++ })
  t.equal((await failure(tier.get('missing'))).code, 'NOT_FOUND')
  t.equal(proxy.seen.length, 1)
  proxy.inject({ error: { status: 403, code: 'AccessDenied' } })
  const denied = await failure(tier.put('x', { data: Buffer.from('x') }))
  t.match(denied.message, /access denied for target s3-wrapped/)
  t.equal(proxy.seen.length, 2)
  proxy.inject({ error: { status: 400, code: 'InvalidArgument' } })
  t.equal((await failure(tier.head('x'))).code, 'IO')
  t.equal(proxy.seen.length, 3)
  t.equal((await failure(tier.put('../bad', { data: Buffer.from('x') }))).code, 'INVALID')
  t.equal(proxy.seen.length, 3, 'a bad key never reaches the wire')
  t.equal(retried, 0)
})

t.test('retry: a list that fails part-way resumes without repeating keys', async (t) => {
  const proxy = await proxyFor(t)
  const inner = s3Tier(t, proxy.endpoint, { listPageSize: 4 })
  const keys = Array.from({ length: 11 }, (_, i) => `l/${String(i).padStart(2, '0')}`)
  await Promise.all(keys.map((k) => inner.put(k, { data: Buffer.from(k) })))
  const tier = new RetryTier(inner, fast)
  proxy.inject({ error: { status: 503, code: 'SlowDown' } }, { match: (r) => r.query.has('continuation-token') })
  const seen: string[] = []
  for await (const o of tier.list('l/')) seen.push(o.key)
  t.same(seen.sort(), keys)
  t.equal(proxy.pending(), 0, 'the fault was hit')
})

t.test('retry: close wakes a pending backoff, which fails with CLOSED', async (t) => {
  const proxy = await proxyFor(t)
  let onRetry: () => void = () => {}
  const retrying = new Promise<void>((resolve) => { onRetry = resolve })
  const tier = new RetryTier(s3Tier(t, proxy.endpoint), { attempts: 5, baseDelayMs: 60_000, maxDelayMs: 60_000, random: () => 0.99, onRetry: () => onRetry() })
  proxy.inject({ error: { status: 503, code: 'SlowDown' } })
  const put = failure(tier.put('obj', { data: Buffer.from('x') }))
  await retrying
  const t0 = Date.now()
  await tier.close()
  t.equal((await put).code, 'CLOSED')
  t.ok(Date.now() - t0 < 2000, 'did not sleep out the backoff')
})

t.test('retry: s3rver killed during a put loop and restarted; nothing is lost', async (t) => {
  let retries = 0
  const inner = s3Tier(t, s3.endpoint, { connectTimeoutMs: 1000, idleTimeoutMs: 2000 })
  const tier = new RetryTier(inner, { attempts: 40, baseDelayMs: 20, maxDelayMs: 250, onRetry: () => retries++ })
  const objects = Array.from({ length: 40 }, (_, i) => ({ key: `loop/${i}`, data: randomBytes(64 * 1024 + i) }))
  let done = 0
  const loop = (async () => {
    for (const o of objects) {
      await tier.put(o.key, { data: o.data })
      done++
    }
  })()
  while (done < 8) await new Promise((r) => setTimeout(r, 5))
  await s3.kill()
  const killedAt = done
  await new Promise((r) => setTimeout(r, 700))
  t.equal(done, killedAt, 'no put completed while s3rver was down')
  await s3.start()
  await loop
  t.ok(retries > 0, `the outage was hit (${retries} retries)`)
  for (const o of objects) t.same(await tier.get(o.key), o.data, o.key)
})

t.test('limit: at most K operations reach the server at once', async (t) => {
  const proxy = await proxyFor(t)
  const inner = s3Tier(t, proxy.endpoint)
  const keys = Array.from({ length: 12 }, (_, i) => `k${i}`)
  await Promise.all(keys.map((k) => inner.put(k, { data: Buffer.from(k) })))
  proxy.reset()
  const tier = new LimitTier(inner, { maxConcurrent: 3 })
  t.equal(tier.capabilities, inner.capabilities, 'capabilities pass through')
  proxy.inject({ delayMs: 80 }, { times: 24 })
  let maxQueued = 0
  const results = await Promise.all(keys.map(async (k, i) => {
    const r = i % 2 === 0 ? (await tier.get(k)).toString() : (await tier.head(k))?.key
    maxQueued = Math.max(maxQueued, tier.queued)
    return r
  }))
  t.same(results, keys)
  t.equal(proxy.seen.length, 12)
  t.equal(proxy.maxInFlight, 3, 'three in flight at the server, never more')
  t.ok(maxQueued > 0, 'the rest waited')
  t.equal(tier.inFlight, 0)

  const unlimited = proxy.maxInFlight
  proxy.reset()
  proxy.inject({ delayMs: 80 }, { times: 12 })
  await Promise.all(keys.map((k) => inner.head(k)))
  t.ok(proxy.maxInFlight > unlimited, `without the limit more are in flight (${proxy.maxInFlight})`)
})

t.test('limit: a list holds its slot only while fetching a batch', async (t) => {
  const proxy = await proxyFor(t)
  const inner = s3Tier(t, proxy.endpoint, { listPageSize: 5 })
  const keys = Array.from({ length: 12 }, (_, i) => `l/${String(i).padStart(2, '0')}`)
  await Promise.all(keys.map((k) => inner.put(k, { data: Buffer.from('x') })))
  const tier = new LimitTier(inner, { maxConcurrent: 1, listBatch: 5 })
  const seen: string[] = []
  for await (const o of tier.list('l/')) {
    seen.push(o.key)
    if (seen.length === 1) {
      // With the only slot held by the paused listing this would wait forever.
      const head = tier.head('l/00')
      const timeout = new Promise((r) => setTimeout(() => r('blocked'), 2000))
      t.same(await Promise.race([head, timeout]), { key: 'l/00', size: 1 }, 'another operation ran while the list consumer worked')
    }
  }
  t.same(seen.sort(), keys)
})

t.test('metrics: counts, bytes, errors and latency match what reached the server', async (t) => {
  const proxy = await proxyFor(t)
  const tier = new MetricsTier(s3Tier(t, proxy.endpoint))
  t.equal(tier.capabilities.needsWarmup, false)
  const file = join(scratch, 'm-file')
  await writeFile(file, randomBytes(1000))
  await tier.put('m/a', { data: randomBytes(100) })
  await tier.put('m/b', { data: randomBytes(200) })
  await tier.put('m/c', { file })
  t.equal((await tier.get('m/a')).length, 100)
  t.equal((await tier.get('m/c', { offset: 950, length: 100 })).length, 50)
  t.equal((await failure(tier.get('m/none'))).code, 'NOT_FOUND')
  t.same(await tier.head('m/b'), { key: 'm/b', size: 200 })
  t.equal(await tier.head('m/none'), undefined)
  const listed = []
  for await (const o of tier.list('m/')) listed.push(o.key)
  await tier.delete('m/b')
  t.equal(await tier.warmth('m/a'), 'warm')

  const s = tier.snapshot()
  t.match(s, {
    tier: 'object',
    bytesOut: 1300,
    bytesIn: 150,
    listed: 3,
    inFlight: 0,
    errorsByCode: { NOT_FOUND: 1 },
    ops: {
      put: { count: 3, errors: 0 },
      get: { count: 3, errors: 1 },
      head: { count: 2, errors: 0 },
      list: { count: 1, errors: 0 },
      delete: { count: 1, errors: 0 },
      warmth: { count: 1, errors: 0 },
      warmup: { count: 0, errors: 0 },
    },
  })
  const requests = s.ops.put.count + s.ops.get.count + s.ops.head.count + s.ops.list.count + s.ops.delete.count
  t.equal(proxy.seen.length, requests, 'one request per counted operation (a warm tier answers warmth itself)')
  for (const op of ['put', 'get', 'head', 'list', 'delete'] as const) {
    t.ok(s.ops[op].seconds > 0 && s.ops[op].maxSeconds <= s.ops[op].seconds, `${op} latency recorded`)
  }
  t.same(JSON.parse(JSON.stringify(s)), s, 'a snapshot is plain data')
  await tier.put('m/d', { data: Buffer.alloc(7) })
  t.equal(s.bytesOut, 1300, 'a snapshot is a copy')
})

t.test('composed: metrics outside retry outside limit count logical operations', async (t) => {
  const proxy = await proxyFor(t)
  const limit = new LimitTier(s3Tier(t, proxy.endpoint), { maxConcurrent: 2 })
  const tier = new MetricsTier(new RetryTier(limit, fast))
  await tier.ready()
  proxy.reset()
  proxy.inject({ error: { status: 503, code: 'SlowDown' } }, { times: 2, match: puts('c') })
  await tier.put('c', { data: Buffer.from('composed') })
  t.equal((await tier.get('c')).toString(), 'composed')
  const s = tier.snapshot()
  t.equal(s.ops.put.count, 1, 'one logical put')
  t.equal(s.ops.put.errors, 0)
  t.equal(proxy.seen.filter(puts('c')).length, 3, 'three attempts on the wire')
  t.equal(limit.inFlight, 0)
})

t.test('composed: a warm-up range reaches the tier through every wrapper', async (t) => {
  // The recording tier is a local one whose warm-up calls are noted (a range-recalling tier,
  // Glacier, recalls only that range; see glacier-tier.test.ts).
  const seen: unknown[][] = []
  const inner = Object.assign(new LocalTier(asTierId('cold'), scratch), {
    warmup: async (key: string, range?: unknown) => { seen.push(['warmup', key, range]) },
    warmth: async (key: string, range?: unknown) => { seen.push(['warmth', key, range]); return 'warming' as const },
  })
  const tier = new MetricsTier(new RetryTier(new LimitTier(inner, { maxConcurrent: 2 }), fast))
  const range = { offset: 1024 * 1024, length: 4096 }
  await tier.warmup('packs/x.pack', range)
  t.equal(await tier.warmth('packs/x.pack', range), 'warming')
  await tier.warmup('packs/y.pack')
  t.same(seen, [['warmup', 'packs/x.pack', range], ['warmth', 'packs/x.pack', range], ['warmup', 'packs/y.pack', undefined]])
})
