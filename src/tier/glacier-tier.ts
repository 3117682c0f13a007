import { stat } from 'node:fs/promises'
import {
  DeleteArchiveCommand, DescribeJobCommand, DescribeVaultCommand, GetJobOutputCommand, GlacierClient, InitiateJobCommand,
} from '@aws-sdk/client-glacier'
import { crashPoint } from '../crash-point.js'
import { TierfsError } from '../errors.js'
import type { TierId } from '../ids.js'
import { silentLogger, type Logger } from '../log.js'
import { isItemMissing, mapGlacierError } from './glacier-error.js'
import { IntentBook, type UploadAttempt } from './glacier-intents.js'
import { InventorySweep } from './glacier-inventory.js'
import { JobBook, covers, usable, type RetrievalJob, type RetrievalTier } from './glacier-jobs.js'
import { describeKey, settleAttempt, settleKey, waitsForInventory, type SettleContext } from './glacier-orphans.js'
import { alignRetrievalRange, checkPartSize, partSizeFor, type ByteRange } from './glacier-range.js'
import { uploadMultipart, uploadSingle, type UploadContext } from './glacier-upload.js'
import type { LocatorEntry, LocatorStore, ObjectInfo, Tier, TierCapabilities, Warmth } from './tier.js'
import { checkKey } from './tier-key.js'
import { readFileHead } from './file-part.js'
import { memoryRecordStore, type RecordStore } from './record-store.js'
import { MiB, treeHash } from './tree-hash.js'

/** The configurable part of a Glacier tier (what a `targets.<name>` entry holds). */
export interface GlacierSettings {
  vault: string
  /** '-' (the credentials' account) unless the vault belongs to another account. */
  accountId?: string
  region: string
  /** Endpoint override (the Glacier test server); the SDK's regional endpoint otherwise. */
  endpoint?: string
  /** Multipart part size: a power-of-two number of MiB, 1 MiB..4 GiB. Default 8 MiB. */
  partSize?: number
  /** Archives up to this size go up in one UploadArchive (read into memory, so keep it small). Default: the part size, at most 64 MiB. */
  singleUploadMax?: number
  /** Retrieval speed (and price) of warm-ups. Default 'Standard'. */
  retrievalTier?: RetrievalTier
  /** SDK attempts per request (retries of throttling and 5xx). Default 3. */
  maxAttempts?: number
  /** Parts uploaded at once. Default 2. */
  partConcurrency?: number
  /** Default 4. */
  maxConnections?: number
}

export interface GlacierTierOptions extends GlacierSettings {
  /** Where archive ids and sizes live (Glacier has no keys). */
  locators: LocatorStore
  /** Where retrieval jobs (and the vault inventory job) are remembered across restarts; in memory only when absent. */
  jobs?: RecordStore
  /** Where unresolved uploads are recorded (see UploadAttempt); in memory only when absent. */
  intents?: RecordStore
  /**
   * How far this host's clock may be from Glacier's, allowed for when an inventory's date is
   * compared with an upload's. Default 15 minutes: SigV4 refuses requests signed further off.
   */
  clockSkewMs?: number
  log?: Logger
}

export const GLACIER_RETRIEVAL_TIERS: readonly RetrievalTier[] = ['Expedited', 'Standard', 'Bulk']

/** The locator of an empty object: Glacier refuses empty archives, so none is stored. */
const EMPTY = ''

/**
 * A tier in an S3 Glacier vault (the 2012 REST API). Glacier assigns archive ids at upload and
 * has no keys, so key -> (archive id, size) lives in a LocatorStore; `head` and `list` answer
 * from it without a request. Reads are cold: `warmup` starts an archive-retrieval job (whole
 * archive, or a MiB-aligned byte range), `warmth` polls it, and `get` downloads from a completed
 * job's output; before that `get` fails with AGAIN. `warmth`/`warmup` of a missing key fail
 * NOT_FOUND; an empty object needs no archive and is always warm. Replacing a key uploads a new
 * archive, records the old one as an intent, moves the locator, then deletes the old archive (a
 * failure there is logged: the put has succeeded, and a later `delete(key)` removes it).
 *
 * No archive is leaked by a crash or a failed put: every upload is described `tierfs:<key>`
 * and recorded as an intent (UploadAttempt, synced) before its first request, then dropped once
 * the locator is set. `delete(key)` of a key with no locator resolves its intents (see
 * `settleKey`): a multipart upload is aborted, or, if Complete may have been sent, completed
 * again for its archive id and that archive deleted. A single upload's archive (or a completion
 * too old to repeat) can only be found in a vault inventory: `delete` then fails with AGAIN
 * while an inventory-retrieval job is started, polled and its CSV swept (InventorySweep); the
 * caller (clearStrays, the migrator) retries later, and Glacier takes hours.
 */
export class GlacierTier implements Tier {
  readonly capabilities: TierCapabilities
  private client: GlacierClient | undefined
  private closed = false
  private readonly book: JobBook
  private readonly accountId: string
  private vaultChecked = false
  private readonly partSize: number
  private readonly singleMax: number
  private readonly log: Logger
  private readonly intents: IntentBook
  private readonly sweep: InventorySweep
  /** Attempts whose put runs in this process. */
  private readonly running = new Set<string>()
  /** Attempts recorded before this instance existed ended by now: their process has stopped. */
  private readonly startedAt = Date.now()
  private readonly clockSkewMs: number

  constructor(readonly id: TierId, private readonly opts: GlacierTierOptions) {
    this.accountId = opts.accountId ?? '-'
    this.partSize = checkPartSize(opts.partSize ?? 8 * MiB)
    this.singleMax = opts.singleUploadMax ?? Math.min(this.partSize, 64 * MiB)
    this.log = opts.log ?? silentLogger
    const jobs = opts.jobs ?? memoryRecordStore()
    this.book = new JobBook(jobs)
    this.intents = new IntentBook(opts.intents ?? memoryRecordStore())
    this.clockSkewMs = opts.clockSkewMs ?? 15 * 60_000
    this.sweep = new InventorySweep({
      sdk: () => this.sdk(), vault: opts.vault, accountId: this.accountId, target: id, intents: this.intents,
      locators: opts.locators, records: jobs, describeKey, inFlight: (a) => this.running.has(a),
      settledBy: (a) => this.settledBy(a), clockSkewMs: this.clockSkewMs, fail: (err, op) => this.fail(err, op), log: this.log,
    })
    this.capabilities = { rangeReads: true, needsWarmup: true, maxConnections: opts.maxConnections ?? 4, localFiles: false }
  }

  async ready(): Promise<void> {
    if (this.closed) throw new TierfsError('CLOSED', `${this.id}: tier is closed`)
    this.client ??= new GlacierClient({
      region: this.opts.region,
      ...(this.opts.endpoint === undefined ? {} : { endpoint: this.opts.endpoint }),
      maxAttempts: this.opts.maxAttempts ?? 3,
      logger: { trace: () => {}, debug: () => {}, info: () => {}, warn: (...a: unknown[]) => this.log.debug('glacier sdk', { msg: a.map(String).join(' ') }), error: () => {} },
    })
    if (this.vaultChecked) return
    // A missing vault or refused credentials show now, naming the target, not at the first upload.
    try {
      await this.client.send(new DescribeVaultCommand({ vaultName: this.opts.vault, accountId: this.accountId }))
    } catch (err) {
      throw this.fail(err, 'ready')
    }
    this.vaultChecked = true
  }

  async close(): Promise<void> {
    this.closed = true
    this.client?.destroy()
    this.client = undefined
  }

  localPath(): undefined {
    return undefined
  }

  async space(): Promise<undefined> {
    return undefined
  }

  async head(key: string): Promise<ObjectInfo | undefined> {
    const e = await this.opts.locators.get(checkKey(key))
    return e === undefined ? undefined : { key, size: e.size }
  }

  async *list(prefix: string): AsyncIterable<ObjectInfo> {
    for await (const e of this.opts.locators.keys(prefix)) yield { key: e.key, size: e.size }
  }

  async put(key: string, source: { file: string } | { data: Buffer }): Promise<void> {
    checkKey(key)
    const client = this.sdk()
    const context = `${this.id}: put ${key}`
    let size: number
    try {
      size = 'data' in source ? source.data.length : (await stat(source.file)).size
    } catch (err) {
      throw TierfsError.from(err, context)
    }
    const description = describeKey(key)
    if (description.length > 1024) throw new TierfsError('INVALID', `${context}: key too long for a Glacier archive description (1024 characters)`)
    const ctx: UploadContext = {
      client, vault: this.opts.vault, accountId: this.accountId, partAttempts: this.opts.maxAttempts ?? 3,
      concurrency: this.opts.partConcurrency ?? 2, log: this.log, fail: (err, op) => this.fail(err, op, key),
    }
    let archiveId = EMPTY
    if (size > 0) {
      const multipart = size > this.singleMax
      // Read before the intent is recorded: a local failure then leaves nothing to resolve.
      const body = multipart ? undefined : 'data' in source ? source.data : await readFileHead(source.file, size).catch((err: unknown) => { throw TierfsError.from(err, context) })
      const attempt = await this.intents.begin(key, multipart ? 'multipart' : 'archive')
      this.running.add(attempt.id)
      try {
        archiveId = body === undefined
          ? await uploadMultipart(ctx, source, size, partSizeFor(size, this.partSize), {
            description,
            initiated: async (uploadId) => {
              attempt.uploadId = uploadId
              await this.intents.update(key, attempt)
            },
            // Only once durable: an attempt with a tree hash is one whose Complete may have been sent.
            completing: async (total, treeHash) => {
              await this.intents.update(key, { ...attempt, size: total, treeHash })
              Object.assign(attempt, { size: total, treeHash })
            },
          })
          : await uploadSingle(ctx, body, description)
      } catch (err) {
        this.running.delete(attempt.id)
        await this.abandon(key, attempt)
        throw err
      }
      crashPoint('glacier:archived')
      try {
        await this.record(key, archiveId, size, attempt)
      } finally {
        this.running.delete(attempt.id)
      }
    } else {
      await this.record(key, archiveId, size, undefined)
    }
  }

  /**
   * Sets the locator of a finished upload, then drops its intent and deletes the archive it
   * replaces. That one is recorded as an intent first, so that neither a crash nor a failed
   * delete leaves it unknown: the next `delete(key)` removes it.
   */
  private async record(key: string, archiveId: string, size: number, attempt: UploadAttempt | undefined): Promise<void> {
    const previous = await this.opts.locators.get(key)
    const old = previous !== undefined && previous.locator !== archiveId && previous.locator !== EMPTY ? previous.locator : undefined
    const replaced = old === undefined ? undefined : await this.intents.begin(key, 'archive', { archiveId: old })
    try {
      await this.opts.locators.set(key, { locator: archiveId, size })
    } catch (err) {
      if (attempt !== undefined) {
        attempt.archiveId = archiveId
        await this.abandon(key, attempt)
      }
      if (replaced !== undefined) await this.intents.drop(key, replaced.id).catch(() => undefined)
      throw err
    }
    if (attempt !== undefined) {
      // Left behind, the intent is harmless: resolving it finds its archive is the locator's.
      await this.intents.drop(key, attempt.id).catch((err: unknown) => {
        this.log.warn('glacier: the intent of a finished upload could not be dropped', { tier: this.id, key, err })
      })
    }
    await this.book.exclusive(key, () => this.book.forget(key))
    if (old !== undefined && replaced !== undefined) {
      try {
        await this.deleteArchive(old, key)
        await this.intents.drop(key, replaced.id)
      } catch (err) {
        this.log.warn('glacier: the replaced archive could not be deleted now; a later delete of the key removes it', { tier: this.id, key, err })
      }
    }
  }

  /**
   * After a failed put: notes when its requests had all ended and resolves its intent now where
   * that needs no inventory (an abort, a known archive id). Best effort: what is left is
   * resolved by a later `delete(key)`.
   */
  private async abandon(key: string, attempt: UploadAttempt): Promise<void> {
    attempt.endedAt = Date.now()
    try {
      if (await settleAttempt(this.settleContext(), key, attempt)) return
    } catch (err) {
      this.log.warn('glacier: a failed upload is left to be resolved by a later delete', { tier: this.id, key, err })
    }
    await this.intents.update(key, attempt).catch((err: unknown) => {
      this.log.warn('glacier: what is known of a failed upload could not be recorded', { tier: this.id, key, err })
    })
  }

  /**
   * Deletes the key's archive and locator, then resolves its unresolved uploads. When one needs
   * a vault inventory, this advances the inventory sweep and fails with AGAIN until the sweep
   * has resolved it (hours on Glacier): the caller keeps its note and calls again later.
   */
  async delete(key: string): Promise<void> {
    const e = await this.opts.locators.get(checkKey(key))
    if (e !== undefined) {
      await this.deleteArchive(e.locator, key)
      await this.opts.locators.delete(key)
      await this.book.exclusive(key, () => this.book.forget(key))
    }
    const ctx = this.settleContext()
    if (!waitsForInventory(ctx, await settleKey(ctx, key))) return
    const outcome = await this.sweep.step()
    if (outcome.state === 'swept' && !waitsForInventory(ctx, await this.intents.attempts(key))) return
    const why = outcome.state === 'job'
      ? `vault inventory job ${outcome.jobId}, started ${new Date(outcome.requestedAt).toISOString()}, has not completed`
      : outcome.state === 'no-inventory' && outcome.last !== undefined
        ? `waiting for a vault inventory newer than ${new Date(outcome.last).toISOString()}`
        : 'waiting for a newer vault inventory'
    throw new TierfsError('AGAIN', `${this.id}: ${key}: an interrupted upload may have left an archive that only a vault inventory can find; ${why}`, {
      detail: { target: this.id, key, inventory: outcome.state },
    })
  }

  private settleContext(): SettleContext {
    return {
      client: this.sdk(), vault: this.opts.vault, accountId: this.accountId, intents: this.intents, locators: this.opts.locators,
      inFlight: (id) => this.running.has(id), fail: (err, op, key) => this.fail(err, op, key),
    }
  }

  /** A time by which every request of `a` had ended (see InventorySweep). */
  private settledBy(a: UploadAttempt): number {
    return a.endedAt ?? (a.since < this.startedAt ? this.startedAt : Date.now())
  }

  /**
   * Starts an archive-retrieval job for `key` (all of it, or the MiB-aligned range covering
   * `range`), unless a live job of its archive already covers that: then it joins that job.
   * The job id is recorded before this resolves, so a restart resumes polling it.
   */
  async warmup(key: string, range?: { offset: number; length: number }): Promise<void> {
    const e = await this.entry(key)
    const want = this.wanted(e, range)
    if (want === undefined) return
    await this.book.exclusive(key, async () => {
      const jobs = await this.book.jobs(key, e.locator)
      if (jobs.some((j) => covers(j, want))) return
      const whole = want.start === 0 && want.end === e.size - 1
      const tier = this.opts.retrievalTier ?? 'Standard'
      let jobId: string | undefined
      try {
        const out = await this.sdk().send(new InitiateJobCommand({
          vaultName: this.opts.vault, accountId: this.accountId,
          jobParameters: { Type: 'archive-retrieval', ArchiveId: e.locator, Tier: tier, ...(whole ? {} : { RetrievalByteRange: `${want.start}-${want.end}` }) },
        }))
        jobId = out.jobId
      } catch (err) {
        throw this.fail(err, 'InitiateJob', key)
      }
      if (jobId === undefined) throw TierfsError.io(`${this.id}: InitiateJob ${key} returned no job id`)
      await this.book.save(key, [...jobs, { jobId, archiveId: e.locator, start: want.start, end: want.end, tier, requestedAt: Date.now() }])
    })
  }

  /** 'warm' when a completed job covers `range` (default: the whole object), 'warming' while one runs. */
  async warmth(key: string, range?: { offset: number; length: number }): Promise<Warmth> {
    const e = await this.entry(key)
    const want = this.wanted(e, range)
    if (want === undefined) return 'warm'
    const { ready, pending } = await this.findJob(key, e, want)
    return ready !== undefined ? 'warm' : pending ? 'warming' : 'cold'
  }

  async get(key: string, range?: { offset: number; length: number }): Promise<Buffer> {
    const e = await this.entry(key)
    const offset = range?.offset ?? 0
    const length = Math.max(0, Math.min(range?.length ?? e.size, e.size - offset))
    if (length === 0) return Buffer.alloc(0)
    const want = { start: offset, end: offset + length - 1 }
    const { ready, pending } = await this.findJob(key, e, want)
    if (ready === undefined) {
      throw new TierfsError('AGAIN', `${this.id}: ${key} is ${pending ? 'being recalled' : 'cold: warm it up first'}`, { detail: { target: this.id, key, warmth: pending ? 'warming' : 'cold' } })
    }
    // Ask for MiB-aligned bytes so that Glacier returns their tree hash, then cut out the range.
    const fetch = alignRetrievalRange(offset, length, e.size)
    const from = Math.max(fetch.start, ready.start)
    const to = Math.min(fetch.end, ready.end)
    const data = await this.download(key, ready, from, to)
    return data.subarray(offset - from, offset - from + length)
  }

  private async download(key: string, job: RetrievalJob, from: number, to: number): Promise<Buffer> {
    let out
    try {
      out = await this.sdk().send(new GetJobOutputCommand({
        vaultName: this.opts.vault, accountId: this.accountId, jobId: job.jobId, range: `bytes=${from - job.start}-${to - job.start}`,
      }))
    } catch (err) {
      if (isItemMissing(err)) {
        await this.dropJob(key, job.jobId)
        throw new TierfsError('AGAIN', `${this.id}: the recall of ${key} expired: warm it up again`, { cause: err, detail: { target: this.id, key, warmth: 'cold' } })
      }
      throw this.fail(err, 'GetJobOutput', key)
    }
    const expected = to - from + 1
    const parts: Buffer[] = []
    let got = 0
    try {
      for await (const chunk of out.body as AsyncIterable<Uint8Array>) {
        got += chunk.length
        if (got > expected) break
        parts.push(Buffer.from(chunk))
      }
    } catch (err) {
      throw this.fail(err, 'GetJobOutput', key)
    }
    if (got !== expected) throw TierfsError.io(`${this.id}: GetJobOutput ${key}: expected ${expected} bytes, received ${got}`)
    const data = Buffer.concat(parts, expected)
    if (out.checksum !== undefined && treeHash(data).toString('hex') !== out.checksum) {
      throw TierfsError.corrupt(`${this.id}: ${key}: bytes ${from}-${to} do not match the tree hash Glacier returned`, { target: this.id, key, jobId: job.jobId })
    }
    return data
  }

  /** A completed job covering `want`, polling in-progress ones; `pending` if one still runs. */
  private async findJob(key: string, e: LocatorEntry, want: ByteRange): Promise<{ ready?: RetrievalJob; pending: boolean }> {
    const now = Date.now()
    const jobs = (await this.book.jobs(key, e.locator, now)).filter((j) => covers(j, want))
    const ready = jobs.find((j) => usable(j, now))
    if (ready !== undefined) return { ready, pending: false }
    let pending = false
    for (const job of jobs) {
      const state = await this.describe(key, job)
      if (state === 'ready') return { ready: job, pending: false }
      if (state === 'running') pending = true
    }
    return { pending }
  }

  /** Polls one job; records completion, forgets failed and unknown (expired) jobs. */
  private async describe(key: string, job: RetrievalJob): Promise<'ready' | 'running' | 'gone'> {
    let out
    try {
      out = await this.sdk().send(new DescribeJobCommand({ vaultName: this.opts.vault, accountId: this.accountId, jobId: job.jobId }))
    } catch (err) {
      if (!isItemMissing(err)) throw this.fail(err, 'DescribeJob', key)
      await this.dropJob(key, job.jobId)
      return 'gone'
    }
    if (out.Completed === true && out.StatusCode === 'Succeeded') {
      const completedAt = out.CompletionDate === undefined ? Date.now() : Date.parse(out.CompletionDate)
      await this.book.exclusive(key, async () => {
        const jobs = await this.book.jobs(key, job.archiveId)
        await this.book.save(key, jobs.map((j) => (j.jobId === job.jobId ? { ...j, completedAt } : j)))
      })
      job.completedAt = completedAt
      return 'ready'
    }
    if (out.Completed === true || out.StatusCode === 'Failed') {
      this.log.warn('glacier: retrieval job failed', { tier: this.id, key, jobId: job.jobId, status: out.StatusCode })
      await this.dropJob(key, job.jobId)
      return 'gone'
    }
    return 'running'
  }

  private async dropJob(key: string, jobId: string): Promise<void> {
    await this.book.exclusive(key, async () => {
      const e = await this.opts.locators.get(key)
      if (e === undefined) return this.book.forget(key)
      await this.book.save(key, (await this.book.jobs(key, e.locator)).filter((j) => j.jobId !== jobId))
    })
  }

  private async deleteArchive(archiveId: string, key: string): Promise<void> {
    if (archiveId === EMPTY) return
    try {
      await this.sdk().send(new DeleteArchiveCommand({ vaultName: this.opts.vault, accountId: this.accountId, archiveId }))
    } catch (err) {
      if (isItemMissing(err)) return
      throw this.fail(err, 'DeleteArchive', key)
    }
  }

  private async entry(key: string): Promise<LocatorEntry> {
    const e = await this.opts.locators.get(checkKey(key))
    if (e === undefined) throw new TierfsError('NOT_FOUND', `${this.id}: ${key}: no such object`)
    return e
  }

  /** The archive range a warm-up or warmth of `range` concerns; undefined when nothing is to read. */
  private wanted(e: LocatorEntry, range?: { offset: number; length: number }): ByteRange | undefined {
    if (e.size === 0) return undefined
    if (range === undefined) return { start: 0, end: e.size - 1 }
    const length = Math.min(range.length, e.size - range.offset)
    if (length <= 0) return undefined
    return alignRetrievalRange(range.offset, length, e.size)
  }

  private sdk(): GlacierClient {
    if (this.client === undefined) throw new TierfsError('CLOSED', `${this.id}: tier is ${this.closed ? 'closed' : 'not ready'}`)
    return this.client
  }

  private fail(err: unknown, op: string, key?: string): TierfsError {
    return mapGlacierError(err, { target: this.id, vault: this.opts.vault, op, ...(key === undefined ? {} : { key }) })
  }
}
