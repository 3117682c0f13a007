import type { ByteRange } from './glacier-range.js'
import { KeyedLock } from './keyed-lock.js'
import { parseRecordList, saveRecordList, type RecordStore } from './record-store.js'

export type RetrievalTier = 'Expedited' | 'Standard' | 'Bulk'

/** One archive-retrieval job of a key, as remembered between calls and across restarts. */
export interface RetrievalJob {
  jobId: string
  /** The archive the job reads; a job of a replaced archive is stale and dropped. */
  archiveId: string
  /** The archive bytes the job retrieves, inclusive (the whole archive or a MiB-aligned range). */
  start: number
  end: number
  tier: RetrievalTier
  requestedAt: number
  /** When Glacier reported the job Succeeded (ms); absent while in progress. */
  completedAt?: number
}

/** Glacier keeps a job's output at least 24 hours after completion; stop trusting it an hour early. */
export const OUTPUT_LIFETIME_MS = 23 * 3600 * 1000

export const covers = (job: RetrievalJob, r: ByteRange): boolean => job.start <= r.start && r.end <= job.end
export const usable = (job: RetrievalJob, now: number): boolean => job.completedAt !== undefined && now - job.completedAt < OUTPUT_LIFETIME_MS

/**
 * The jobs of every key: cached in memory, written through to the store (so that a restarted
 * daemon resumes polling instead of paying for a second retrieval), with one critical
 * section per key so that concurrent warm-ups of a key join one job instead of starting two.
 */
export class JobBook {
  private readonly cache = new Map<string, RetrievalJob[]>()
  private readonly lock = new KeyedLock()

  constructor(private readonly store: RecordStore) {}

  /**
   * The live jobs of `key` for `archiveId`: jobs of other archives and expired outputs are left
   * out (and leave the store with the next `save`, which callers make inside `exclusive`).
   */
  async jobs(key: string, archiveId: string, now = Date.now()): Promise<RetrievalJob[]> {
    let all = this.cache.get(key)
    if (all === undefined) {
      const raw = await this.store.get(key)
      all = raw === undefined ? [] : parseRecordList<RetrievalJob>(raw, 'retrieval job', key)
      this.cache.set(key, all)
    }
    return all.filter((j) => j.archiveId === archiveId && (j.completedAt === undefined || usable(j, now)))
  }

  /** Replaces the jobs of `key`; call inside `exclusive(key)` so updates do not interleave. */
  async save(key: string, jobs: RetrievalJob[]): Promise<void> {
    this.cache.set(key, jobs)
    await saveRecordList(this.store, key, jobs)
  }

  async forget(key: string): Promise<void> {
    await this.save(key, [])
  }

  /** Runs `fn` after every earlier `exclusive` call for the same key has settled. */
  exclusive<T>(key: string, fn: () => Promise<T>): Promise<T> {
    return this.lock.run(key, fn)
  }
}
