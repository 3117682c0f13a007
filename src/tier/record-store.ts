import { TierfsError } from '../errors.js'
import type { LocatorEntry, LocatorStore } from './tier.js'

/**
 * Durable per-key text records a tier keeps beside its objects (a Glacier tier's locators,
 * retrieval jobs and upload intents; the store keeps them in its metadata, see
 * store/meta-locators.ts).
 *
 * Contract:
 * - `set` is durable (synced) when it resolves and replaces the record of the key; `delete` of a
 *   missing key succeeds.
 * - `get` sees every `set`/`delete` that resolved before it was called.
 * - `keys` streams every key with a record (those starting with `prefix` when given), in no
 *   particular order; records changed during the walk may or may not appear.
 * - Keys are tier keys, or reserved names starting with '#' (which no tier key can).
 * - Failures are TierfsError.
 */
export interface RecordStore {
  get(key: string): Promise<string | undefined>
  set(key: string, record: string): Promise<void>
  delete(key: string): Promise<void>
  keys(prefix?: string): AsyncIterable<string>
}

/** A RecordStore in memory only (a restart forgets it). */
export function memoryRecordStore(): RecordStore {
  const m = new Map<string, string>()
  return {
    async get(key) { return m.get(key) },
    async set(key, record) { m.set(key, record) },
    async delete(key) { m.delete(key) },
    async *keys(prefix = '') { yield* [...m.keys()].filter((k) => k.startsWith(prefix)) },
  }
}

/** The JSON list a record holds; CORRUPT naming `what` and the key if it is not one. */
export function parseRecordList<T>(raw: string, what: string, key: string): T[] {
  try {
    const v = JSON.parse(raw) as unknown
    if (!Array.isArray(v)) throw new Error('not an array')
    return v as T[]
  } catch (err) {
    throw new TierfsError('CORRUPT', `${what} record of ${key} is not valid JSON`, { cause: err })
  }
}

/** Stores a JSON list as the key's record; an empty list deletes it. */
export async function saveRecordList(store: RecordStore, key: string, list: readonly unknown[]): Promise<void> {
  if (list.length === 0) await store.delete(key)
  else await store.set(key, JSON.stringify(list))
}

/** A LocatorStore keeping each entry as a JSON record of `records`. */
export function jsonLocators(records: RecordStore): LocatorStore {
  const parse = (raw: string): LocatorEntry => JSON.parse(raw) as LocatorEntry
  return {
    async get(key) {
      const raw = await records.get(key)
      return raw === undefined ? undefined : parse(raw)
    },
    set: (key, entry) => records.set(key, JSON.stringify({ locator: entry.locator, size: entry.size })),
    delete: (key) => records.delete(key),
    async *keys(prefix) {
      for await (const key of records.keys(prefix)) {
        const raw = await records.get(key)
        if (raw !== undefined) yield { key, ...parse(raw) }
      }
    },
  }
}
