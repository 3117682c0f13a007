/**
 * A least-recently-used map bounded by a total weight (bytes, entries, ...).
 * Map iteration order is insertion order, so re-inserting on access keeps the oldest first.
 */
export class Lru<K, V> {
  private readonly map = new Map<K, { value: V; weight: number }>()
  private total = 0

  constructor(private readonly capacity: number, private readonly weigh: (v: V) => number = () => 1) {}

  get(key: K): V | undefined {
    const e = this.map.get(key)
    if (e === undefined) return undefined
    this.map.delete(key)
    this.map.set(key, e)
    return e.value
  }

  has(key: K): boolean {
    return this.map.has(key)
  }

  /** `weight`: this entry's, when it depends on more than the value (default: weigh(value)). */
  set(key: K, value: V, weight = this.weigh(value)): void {
    this.delete(key)
    if (weight > this.capacity) return
    this.map.set(key, { value, weight })
    this.total += weight
    while (this.total > this.capacity) {
      const oldest = this.map.keys().next()
      if (oldest.done === true) break
      this.delete(oldest.value)
    }
  }

  delete(key: K): V | undefined {
    const e = this.map.get(key)
    if (e === undefined) return undefined
    this.map.delete(key)
    this.total -= e.weight
    this.onEvict?.(key, e.value)
    return e.value
  }

  /** Called whenever an entry leaves the map (eviction or delete). */
  onEvict: ((key: K, value: V) => void) | undefined

  values(): IterableIterator<V> {
    const it = this.map.values()
    return (function* () { for (const e of it) yield e.value })()
  }

  clear(): void {
    for (const k of [...this.map.keys()]) this.delete(k)
  }

  get size(): number {
    return this.map.size
  }

  get weight(): number {
    return this.total
  }
}
