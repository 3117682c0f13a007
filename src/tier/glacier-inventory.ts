import {
  DeleteArchiveCommand, DescribeJobCommand, DescribeVaultCommand, GetJobOutputCommand, InitiateJobCommand, type GlacierClient,
} from '@aws-sdk/client-glacier'
import { TierfsError } from '../errors.js'
import type { Logger } from '../log.js'
import { csvRows } from './csv-rows.js'
import { isItemMissing } from './glacier-error.js'
import { needsInventory, type IntentBook, type UploadAttempt } from './glacier-intents.js'
import { KeyedLock } from './keyed-lock.js'
import type { LocatorStore } from './tier.js'
import type { RecordStore } from './record-store.js'

/** The job store name of the inventory record: '#' is in no tier key, so no retrieval job has it. */
export const INVENTORY_RECORD = '#inventory'

/** The inventory job a tier waits for, or the date of the last inventory it swept. */
export interface InventoryRecord {
  jobId?: string
  /** The vault's LastInventoryDate (ms) read just before the job was started (see `cutoff`). */
  cutoff?: number
  requestedAt?: number
  /** The cut-off of the last completed sweep: no new job until the vault has a newer inventory. */
  swept?: number
}

/** What a sweep step came to. */
export type SweepOutcome =
  | { state: 'no-inventory'; last: number | undefined }
  | { state: 'job'; jobId: string; requestedAt: number }
  | { state: 'swept'; deleted: number; resolved: number }

export interface SweepDeps {
  /** The tier's client (it changes when the tier is closed and made ready again). */
  sdk(): GlacierClient
  vault: string
  accountId: string
  target: string
  intents: IntentBook
  locators: Pick<LocatorStore, 'get'>
  /** Where the inventory record lives (the tier's retrieval-job store). */
  records: RecordStore
  /** The archive description of `key`'s uploads. */
  describeKey(key: string): string
  /** True while a put made attempt `id` in this process (its key is left alone). */
  inFlight(id: string): boolean
  /** A time (ms, this host's clock) by which every request of `a` had ended. */
  settledBy(a: UploadAttempt): number
  /** How far this host's clock may be from Glacier's. */
  clockSkewMs: number
  fail(err: unknown, op: string): TierfsError
  log: Logger
}

/**
 * Finds the archives of uploads that only an inventory can find (see `needsInventory`) and
 * deletes them, one step per call, remembering its job in `records` across restarts:
 * 1. No job: reads the vault's LastInventoryDate (DescribeVault). When some pending attempt began
 *    before it (so its archive may be listed) and the vault has an inventory newer than the last
 *    swept one, starts an `inventory-retrieval` job (CSV) and records it with that date as the
 *    cut-off. The inventory a job returns is the vault's latest, never older than that date.
 * 2. Job running: polls it (DescribeJob). Failed or unknown (expired) jobs are forgotten.
 * 3. Job done: streams its CSV (never held whole: a vault may hold millions of archives). Every
 *    archive described `tierfs:<key>` for a key with unresolved attempts, no put of it in flight
 *    here and not the key's locator, is deleted. Then every inventory attempt that had settled
 *    (all its requests ended) before the cut-off, less the clock skew, is dropped: its archive,
 *    had there been one, was listed and is gone. Newer ones wait for a newer inventory.
 * Archives with other descriptions (other tools, other keys) are never touched. One step at a
 * time per sweep.
 */
export class InventorySweep {
  private readonly lock = new KeyedLock()

  constructor(private readonly deps: SweepDeps) {}

  step(): Promise<SweepOutcome> {
    return this.lock.run('', () => this.stepNow())
  }

  private async stepNow(): Promise<SweepOutcome> {
    const rec = await this.load()
    if (rec.jobId !== undefined) {
      const state = await this.poll(rec.jobId)
      if (state === 'running') return { state: 'job', jobId: rec.jobId, requestedAt: rec.requestedAt ?? 0 }
      if (state === 'ready') {
        const cutoff = rec.cutoff ?? 0
        const outcome = await this.sweep(rec.jobId, cutoff)
        await this.save({ swept: cutoff })
        this.deps.log.info('glacier: vault inventory swept for archives of interrupted uploads', { target: this.deps.target, vault: this.deps.vault, jobId: rec.jobId, ...outcome })
        return { state: 'swept', ...outcome }
      }
      await this.save(rec.swept === undefined ? {} : { swept: rec.swept })
    }
    const last = await this.lastInventory()
    const pending = await this.pending()
    const useful = last !== undefined && (rec.swept === undefined || last > rec.swept) && pending.some((a) => a.since - this.deps.clockSkewMs < last)
    if (!useful) return { state: 'no-inventory', last }
    let jobId: string | undefined
    try {
      jobId = (await this.deps.sdk().send(new InitiateJobCommand({
        vaultName: this.deps.vault, accountId: this.deps.accountId,
        jobParameters: { Type: 'inventory-retrieval', Format: 'CSV', Description: 'tierfs: find archives of interrupted uploads' },
      }))).jobId
    } catch (err) {
      throw this.deps.fail(err, 'InitiateJob inventory-retrieval')
    }
    if (jobId === undefined) throw TierfsError.io(`${this.deps.target}: InitiateJob inventory-retrieval returned no job id`)
    const requestedAt = Date.now()
    await this.save({ jobId, cutoff: last, requestedAt, ...(rec.swept === undefined ? {} : { swept: rec.swept }) })
    this.deps.log.info('glacier: started a vault inventory to find archives of interrupted uploads (it takes hours)', { target: this.deps.target, vault: this.deps.vault, jobId, inventoryDate: new Date(last).toISOString(), uploads: pending.length })
    return { state: 'job', jobId, requestedAt }
  }

  /**
   * Unresolved inventory attempts of keys with no put in flight here. Each gets its `endedAt`
   * pinned (recorded) the first time it is seen without one, so that a restarted tier does not
   * take its own start as the end of uploads an earlier one already saw ended.
   */
  private async pending(): Promise<UploadAttempt[]> {
    const out: UploadAttempt[] = []
    for await (const key of this.deps.intents.keys()) {
      const all = await this.deps.intents.attempts(key)
      if (all.some((a) => this.deps.inFlight(a.id))) continue
      for (const a of all.filter(needsInventory)) {
        if (a.endedAt === undefined) {
          a.endedAt = this.deps.settledBy(a)
          await this.deps.intents.update(key, a)
        }
        out.push(a)
      }
    }
    return out
  }

  private async poll(jobId: string): Promise<'running' | 'ready' | 'gone'> {
    let out
    try {
      out = await this.deps.sdk().send(new DescribeJobCommand({ vaultName: this.deps.vault, accountId: this.deps.accountId, jobId }))
    } catch (err) {
      if (isItemMissing(err)) return 'gone'
      throw this.deps.fail(err, 'DescribeJob inventory-retrieval')
    }
    if (out.Completed === true && out.StatusCode === 'Succeeded') return 'ready'
    if (out.Completed === true || out.StatusCode === 'Failed') {
      this.deps.log.warn('glacier: vault inventory job failed; another is started when needed', { target: this.deps.target, jobId, status: out.StatusCode, message: out.StatusMessage })
      return 'gone'
    }
    return 'running'
  }

  private async sweep(jobId: string, cutoff: number): Promise<{ deleted: number; resolved: number }> {
    const { deps } = this
    const keys = new Map<string, string>()
    for await (const key of deps.intents.keys()) if (!key.startsWith('#')) keys.set(deps.describeKey(key), key)
    const busy = async (key: string): Promise<boolean> => (await deps.intents.attempts(key)).some((a) => deps.inFlight(a.id))
    let out
    try {
      out = await deps.sdk().send(new GetJobOutputCommand({ vaultName: deps.vault, accountId: deps.accountId, jobId }))
    } catch (err) {
      throw deps.fail(err, 'GetJobOutput inventory-retrieval')
    }
    let deleted = 0
    let columns: { id: number; description: number } | undefined
    try {
      for await (const row of csvRows(out.body as AsyncIterable<Uint8Array>)) {
        if (columns === undefined) {
          columns = { id: row.indexOf('ArchiveId'), description: row.indexOf('ArchiveDescription') }
          if (columns.id < 0 || columns.description < 0) throw TierfsError.corrupt(`${deps.target}: the vault inventory has no ArchiveId/ArchiveDescription header`)
          continue
        }
        const archiveId = row[columns.id]
        const key = keys.get(row[columns.description] ?? '')
        if (archiveId === undefined || archiveId === '' || key === undefined || (await busy(key))) continue
        if ((await deps.locators.get(key))?.locator === archiveId) continue
        await this.deleteArchive(archiveId, key)
        deleted++
      }
    } catch (err) {
      throw err instanceof TierfsError ? err : deps.fail(err, 'GetJobOutput inventory-retrieval')
    }
    let resolved = 0
    for (const key of keys.values()) {
      const all = await deps.intents.attempts(key)
      if (all.some((a) => deps.inFlight(a.id))) continue
      for (const a of all) {
        if (!needsInventory(a) || deps.settledBy(a) + deps.clockSkewMs >= cutoff) continue
        await deps.intents.drop(key, a.id)
        resolved++
      }
    }
    return { deleted, resolved }
  }

  private async deleteArchive(archiveId: string, key: string): Promise<void> {
    try {
      await this.deps.sdk().send(new DeleteArchiveCommand({ vaultName: this.deps.vault, accountId: this.deps.accountId, archiveId }))
      this.deps.log.info('glacier: deleted the archive of an interrupted upload', { target: this.deps.target, key, archiveId })
    } catch (err) {
      if (!isItemMissing(err)) throw this.deps.fail(err, `DeleteArchive ${key}`)
    }
  }

  private async lastInventory(): Promise<number | undefined> {
    let out
    try {
      out = await this.deps.sdk().send(new DescribeVaultCommand({ vaultName: this.deps.vault, accountId: this.deps.accountId }))
    } catch (err) {
      throw this.deps.fail(err, 'DescribeVault')
    }
    const ms = out.LastInventoryDate === undefined || out.LastInventoryDate === null ? NaN : Date.parse(out.LastInventoryDate)
    return Number.isFinite(ms) ? ms : undefined
  }

  private async load(): Promise<InventoryRecord> {
    const raw = await this.deps.records.get(INVENTORY_RECORD)
    if (raw === undefined) return {}
    try {
      return JSON.parse(raw) as InventoryRecord
    } catch (err) {
      throw new TierfsError('CORRUPT', `${this.deps.target}: the inventory job record is not valid JSON`, { cause: err })
    }
  }

  private async save(rec: InventoryRecord): Promise<void> {
    if (Object.keys(rec).length === 0) await this.deps.records.delete(INVENTORY_RECORD)
    else await this.deps.records.set(INVENTORY_RECORD, JSON.stringify(rec))
  }
}
