/**
 * One critical section per key: `run(key, fn)` starts `fn` after every earlier `run` for the
 * same key has settled (fulfilled or rejected); different keys do not wait for each other.
 * Memory: one entry per key with work queued.
 */
export class KeyedLock {
  private readonly tails = new Map<string, Promise<unknown>>()

  run<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.tails.get(key) ?? Promise.resolve()
    const run = prev.then(fn)
    const tail = run.catch(() => undefined)
    this.tails.set(key, tail)
    void tail.then(() => {
      if (this.tails.get(key) === tail) this.tails.delete(key)
    })
    return run
  }
}
