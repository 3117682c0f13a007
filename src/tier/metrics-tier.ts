import { stat } from 'node:fs/promises'
import { performance } from 'node:perf_hooks'
import { TierfsError } from '../errors.js'
import type { ObjectInfo, Range, Tier, Warmth } from './tier.js'

export const TIER_OPS = ['get', 'put', 'head', 'delete', 'list', 'warmth', 'warmup'] as const
export type TierOp = (typeof TIER_OPS)[number]

/** Counters of one operation kind. */
export interface OpMetrics {
  /** Calls finished (successes and failures). */
  count: number
  errors: number
  /** Sum and maximum of call durations, seconds. For `list`: time spent fetching, not consuming. */
  seconds: number
  maxSeconds: number
}

/** A point-in-time copy of a MetricsTier's counters: plain numbers, ready for JSON or Prometheus. */
export interface TierMetricsSnapshot {
  tier: string
  ops: Record<TierOp, OpMetrics>
  /** Bytes read from the tier (`get` results). */
  bytesIn: number
  /** Bytes written to the tier (successful `put`s). */
  bytesOut: number
  /** Keys yielded by `list`. */
  listed: number
  /** Failures by TierfsError code ('IO', 'NOT_FOUND', ...; 'RAW' for anything else). */
  errorsByCode: Record<string, number>
  inFlight: number
}

/**
 * Counts what passes through to a tier: calls, failures and latency per operation, bytes in
 * and out. Put it outermost to measure what callers experience (retries and queueing
 * included), or innermost to measure the backend's own calls. `snapshot()` copies the
 * counters; they only grow, as Prometheus counters expect.
 */
export class MetricsTier implements Tier {
  private readonly ops = Object.fromEntries(TIER_OPS.map((op) => [op, { count: 0, errors: 0, seconds: 0, maxSeconds: 0 }])) as Record<TierOp, OpMetrics>
  private bytesIn = 0
  private bytesOut = 0
  private listed = 0
  private inFlight = 0
  private readonly errorsByCode: Record<string, number> = {}

  constructor(readonly inner: Tier) {}

  get id(): Tier['id'] { return this.inner.id }
  get capabilities(): Tier['capabilities'] { return this.inner.capabilities }

  ready(): Promise<void> { return this.inner.ready() }
  close(): Promise<void> { return this.inner.close() }

  async get(key: string, range?: { offset: number; length: number }): Promise<Buffer> {
    const buf = await this.measure('get', () => this.inner.get(key, range))
    this.bytesIn += buf.length
    return buf
  }

  async put(key: string, source: { file: string } | { data: Buffer }): Promise<void> {
    await this.measure('put', () => this.inner.put(key, source))
    // The file is not ours to hold open; a stat after the upload is cheap next to it.
    this.bytesOut += 'data' in source ? source.data.length : await stat(source.file).then((s) => s.size, () => 0)
  }

  head(key: string): Promise<ObjectInfo | undefined> { return this.measure('head', () => this.inner.head(key)) }
  delete(key: string): Promise<void> { return this.measure('delete', () => this.inner.delete(key)) }
  warmth(key: string, range?: Range): Promise<Warmth> { return this.measure('warmth', () => this.inner.warmth(key, range)) }
  warmup(key: string, range?: Range): Promise<void> { return this.measure('warmup', () => this.inner.warmup(key, range)) }
  space(): Promise<{ free: number; total: number } | undefined> { return this.inner.space() }
  localPath(key: string): string | undefined { return this.inner.localPath(key) }

  async *list(prefix: string): AsyncIterable<ObjectInfo> {
    const m = this.ops.list
    const it = this.inner.list(prefix)[Symbol.asyncIterator]()
    let seconds = 0
    let failed = false
    this.inFlight++
    try {
      for (;;) {
        const t0 = performance.now()
        let r: IteratorResult<ObjectInfo>
        try {
          r = await it.next()
        } catch (err) {
          failed = true
          this.countError(err)
          throw err
        } finally {
          seconds += (performance.now() - t0) / 1000
        }
        if (r.done === true) return
        this.listed++
        yield r.value
      }
    } finally {
      this.inFlight--
      m.count++
      if (failed) m.errors++
      m.seconds += seconds
      m.maxSeconds = Math.max(m.maxSeconds, seconds)
      await it.return?.()
    }
  }

  snapshot(): TierMetricsSnapshot {
    const ops = Object.fromEntries(TIER_OPS.map((op) => [op, { ...this.ops[op] }])) as Record<TierOp, OpMetrics>
    return {
      tier: this.inner.id, ops, bytesIn: this.bytesIn, bytesOut: this.bytesOut, listed: this.listed,
      errorsByCode: { ...this.errorsByCode }, inFlight: this.inFlight,
    }
  }

  private async measure<T>(op: TierOp, fn: () => Promise<T>): Promise<T> {
    const m = this.ops[op]
    const t0 = performance.now()
    this.inFlight++
    try {
      return await fn()
    } catch (err) {
      m.errors++
      this.countError(err)
      throw err
    } finally {
      this.inFlight--
      const s = (performance.now() - t0) / 1000
      m.count++
      m.seconds += s
      m.maxSeconds = Math.max(m.maxSeconds, s)
    }
  }

  private countError(err: unknown): void {
    const code = err instanceof TierfsError ? err.code : 'RAW'
    this.errorsByCode[code] = (this.errorsByCode[code] ?? 0) + 1
  }
}
