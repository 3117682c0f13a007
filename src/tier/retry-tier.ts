import { TierfsError } from '../errors.js'
import type { ObjectInfo, Range, Tier, Warmth } from './tier.js'
import { isTransient } from './transient.js'

export interface RetryOptions {
  /** Attempts per operation, the first included. Default 6. */
  attempts?: number
  /** Backoff before the second attempt; doubles per attempt. Default 200 ms. */
  baseDelayMs?: number
  /** Ceiling of one backoff. Default 20 s. */
  maxDelayMs?: number
  /** Told about each retry (for logs); never about the final failure, which is thrown. */
  onRetry?: (info: { op: string; key: string; attempt: number; delayMs: number; error: TierfsError }) => void
  /** Keys a `list` remembers so it can resume after a failure (see RetryTier). Default 100 000. */
  listMemory?: number
  /** Source of jitter in [0, 1). Default Math.random. */
  random?: () => number
}

/**
 * Retries a tier's transient failures (`detail.transient`, see the Tier contract) with
 * exponential backoff and full jitter: before attempt n+1 it sleeps a uniform random time in
 * [0, min(maxDelay, base * 2^(n-1))), so clients that failed together do not retry together.
 * Final failures (NOT_FOUND, access denied, bad keys, ...) pass through at once; when the
 * budget is spent the last error is thrown. Every Tier operation is safe to repeat: puts
 * replace whole objects and deletes are idempotent.
 *
 * A `list` that fails part-way is restarted and skips the keys it already yielded (the listing
 * order is unspecified, so a resume token is not portable). To keep memory bounded it
 * remembers at most `listMemory` keys; past that, a failure ends the listing with the error.
 *
 * Put it outside LimitTier, so a backoff does not hold a connection slot.
 * `close()` wakes pending backoffs, which then fail with CLOSED.
 */
export class RetryTier implements Tier {
  private readonly attempts: number
  private readonly baseDelayMs: number
  private readonly maxDelayMs: number
  private readonly closing = new AbortController()

  constructor(readonly inner: Tier, private readonly opts: RetryOptions = {}) {
    this.attempts = Math.max(1, opts.attempts ?? 6)
    this.baseDelayMs = opts.baseDelayMs ?? 200
    this.maxDelayMs = opts.maxDelayMs ?? 20_000
  }

  get id(): Tier['id'] { return this.inner.id }
  get capabilities(): Tier['capabilities'] { return this.inner.capabilities }

  ready(): Promise<void> { return this.retry('ready', '', () => this.inner.ready()) }

  async close(): Promise<void> {
    this.closing.abort()
    await this.inner.close()
  }

  get(key: string, range?: { offset: number; length: number }): Promise<Buffer> {
    return this.retry('get', key, () => this.inner.get(key, range))
  }

  put(key: string, source: { file: string } | { data: Buffer }): Promise<void> {
    return this.retry('put', key, () => this.inner.put(key, source))
  }

  head(key: string): Promise<ObjectInfo | undefined> { return this.retry('head', key, () => this.inner.head(key)) }
  delete(key: string): Promise<void> { return this.retry('delete', key, () => this.inner.delete(key)) }
  warmth(key: string, range?: Range): Promise<Warmth> { return this.retry('warmth', key, () => this.inner.warmth(key, range)) }
  warmup(key: string, range?: Range): Promise<void> { return this.retry('warmup', key, () => this.inner.warmup(key, range)) }
  space(): Promise<{ free: number; total: number } | undefined> { return this.inner.space() }
  localPath(key: string): string | undefined { return this.inner.localPath(key) }

  async *list(prefix: string): AsyncIterable<ObjectInfo> {
    const memory = this.opts.listMemory ?? 100_000
    const seen = new Set<string>()
    let forgot = false
    for (let attempt = 1; ; attempt++) {
      let progressed = false
      try {
        for await (const o of this.inner.list(prefix)) {
          if (seen.has(o.key)) continue
          if (seen.size < memory) seen.add(o.key)
          else forgot = true
          progressed = true
          yield o
        }
        return
      } catch (err) {
        if (forgot) throw err
        // A listing that got further before failing earns a fresh budget.
        if (progressed) attempt = 1
        await this.backoff('list', prefix, attempt, err)
      }
    }
  }

  private async retry<T>(op: string, key: string, fn: () => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await fn()
      } catch (err) {
        await this.backoff(op, key, attempt, err)
      }
    }
  }

  /** Sleeps before the next attempt, or rethrows when `err` is final or the budget is spent. */
  private async backoff(op: string, key: string, attempt: number, err: unknown): Promise<void> {
    if (!isTransient(err) || attempt >= this.attempts || this.closing.signal.aborted) throw err
    const ceiling = Math.min(this.maxDelayMs, this.baseDelayMs * 2 ** (attempt - 1))
    const delayMs = Math.floor((this.opts.random ?? Math.random)() * ceiling)
    this.opts.onRetry?.({ op, key, attempt, delayMs, error: err as TierfsError })
    await sleep(delayMs, this.closing.signal)
    if (this.closing.signal.aborted) throw new TierfsError('CLOSED', `${this.inner.id}: ${op} ${key}: tier closed while retrying`, { cause: err })
  }
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      clearTimeout(timer)
      signal.removeEventListener('abort', done)
      resolve()
    }
    const timer = setTimeout(done, ms)
    signal.addEventListener('abort', done, { once: true })
  })
}
