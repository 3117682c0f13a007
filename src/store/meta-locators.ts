import type { Meta } from '../meta/meta.js'
import type { RecordStore } from '../tier/record-store.js'
import type { LocatorEntry, LocatorStore } from '../tier/tier.js'

/**
 * Backend-assigned ids (Glacier archive ids), retrieval-job records and upload intents kept in
 * the store's metadata (sys space, next to the pack records they belong to), so they are
 * checkpointed and recovered with it. Sys names:
 * - `loc/<target>/<key>`   LocatorEntry JSON: the key's archive id and size
 * - `job/<target>/<key>`   RetrievalJob[] JSON: the key's archive-retrieval jobs
 * - `job/<target>/#inventory`  InventoryRecord JSON: the vault inventory job ('#' is in no key)
 * - `upl/<target>/<key>`   UploadAttempt[] JSON: uploads of the key not yet resolved
 * Every write is synced.
 */
export function metaLocators(meta: Meta, target: string): LocatorStore {
  const prefix = `loc/${target}/`
  return {
    async get(key) {
      const v = await meta.getSys(prefix + key)
      return v === undefined ? undefined : (JSON.parse(v.toString('utf8')) as LocatorEntry)
    },
    async set(key, entry) {
      await meta.begin().putSys(prefix + key, Buffer.from(JSON.stringify(entry))).commit({ sync: true })
    },
    async delete(key) {
      await meta.begin().deleteSys(prefix + key).commit({ sync: true })
    },
    async *keys(p) {
      for (const name of await meta.sysNames(prefix + p)) {
        const v = await meta.getSys(name)
        if (v !== undefined) yield { key: name.slice(prefix.length), ...(JSON.parse(v.toString('utf8')) as LocatorEntry) }
      }
    },
  }
}

/** Text records under one sys prefix, written synced. */
function sysRecords(meta: Meta, prefix: string): RecordStore {
  return {
    async get(key) {
      return (await meta.getSys(prefix + key))?.toString('utf8')
    },
    async set(key, record) {
      await meta.begin().putSys(prefix + key, Buffer.from(record)).commit({ sync: true })
    },
    async delete(key) {
      await meta.begin().deleteSys(prefix + key).commit({ sync: true })
    },
    async *keys() {
      for (const name of await meta.sysNames(prefix)) yield name.slice(prefix.length)
    },
  }
}

export function metaJobs(meta: Meta, target: string): RecordStore {
  return sysRecords(meta, `job/${target}/`)
}

export function metaIntents(meta: Meta, target: string): RecordStore {
  return sysRecords(meta, `upl/${target}/`)
}
