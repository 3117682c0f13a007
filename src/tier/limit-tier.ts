import type { ObjectInfo, Range, Tier, Warmth } from './tier.js'

export interface LimitOptions {
  /** Operations in flight at most. Default `inner.capabilities.maxConnections`. */
  maxConcurrent?: number
  /** Keys a `list` fetches per slot it takes. Default 1000 (one S3 or Azure page). */
  listBatch?: number
}

/**
 * Bounds the operations in flight on a tier (a FIFO semaphore), so a burst of reads and
 * uploads queues here instead of opening hundreds of connections. A `list` holds a slot only
 * while it fetches a batch of up to `listBatch` keys, not while its consumer works through
 * them. `ready`, `close`, `space` and `localPath` are not limited.
 */
export class LimitTier implements Tier {
  readonly maxConcurrent: number
  private active = 0
  private readonly waiting: Array<() => void> = []
  private readonly listBatch: number

  constructor(readonly inner: Tier, opts: LimitOptions = {}) {
    this.maxConcurrent = Math.max(1, opts.maxConcurrent ?? inner.capabilities.maxConnections)
    this.listBatch = Math.max(1, opts.listBatch ?? 1000)
  }

  get id(): Tier['id'] { return this.inner.id }
  get capabilities(): Tier['capabilities'] { return this.inner.capabilities }
  /** Operations running now. */
  get inFlight(): number { return this.active }
  /** Operations waiting for a slot. */
  get queued(): number { return this.waiting.length }

  ready(): Promise<void> { return this.inner.ready() }
  close(): Promise<void> { return this.inner.close() }

  get(key: string, range?: { offset: number; length: number }): Promise<Buffer> {
    return this.run(() => this.inner.get(key, range))
  }

  put(key: string, source: { file: string } | { data: Buffer }): Promise<void> {
    return this.run(() => this.inner.put(key, source))
  }

  head(key: string): Promise<ObjectInfo | undefined> { return this.run(() => this.inner.head(key)) }
  delete(key: string): Promise<void> { return this.run(() => this.inner.delete(key)) }
  warmth(key: string, range?: Range): Promise<Warmth> { return this.run(() => this.inner.warmth(key, range)) }
  warmup(key: string, range?: Range): Promise<void> { return this.run(() => this.inner.warmup(key, range)) }
  space(): Promise<{ free: number; total: number } | undefined> { return this.inner.space() }
  localPath(key: string): string | undefined { return this.inner.localPath(key) }

  async *list(prefix: string): AsyncIterable<ObjectInfo> {
    const it = this.inner.list(prefix)[Symbol.asyncIterator]()
    let finished = false
    try {
      while (!finished) {
        const batch = await this.run(async () => {
          const out: ObjectInfo[] = []
          while (out.length < this.listBatch) {
            const r = await it.next()
            if (r.done === true) {
              finished = true
              break
            }
            out.push(r.value)
          }
          return out
        })
        yield* batch
      }
    } finally {
      if (!finished) await it.return?.()
    }
  }

  private async run<T>(fn: () => Promise<T>): Promise<T> {
    if (this.active >= this.maxConcurrent) await new Promise<void>((resolve) => this.waiting.push(resolve))
    else this.active++
    try {
      return await fn()
    } finally {
      const next = this.waiting.shift()
      // The slot passes straight to the next waiter, so a newcomer cannot jump the queue.
      if (next !== undefined) next()
      else this.active--
    }
  }
}
