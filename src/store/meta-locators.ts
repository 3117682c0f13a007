import type { Meta } from '../meta/meta.js'
import { jsonLocators, type RecordStore } from '../tier/record-store.js'
import type { LocatorStore } from '../tier/tier.js'

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
  return jsonLocators(sysRecords(meta, `loc/${target}/`))
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
    async *keys(under = '') {
      for (const name of await meta.sysNames(prefix + under)) yield name.slice(prefix.length)
    },
  }
}

export function metaJobs(meta: Meta, target: string): RecordStore {
  return sysRecords(meta, `job/${target}/`)
}

export function metaIntents(meta: Meta, target: string): RecordStore {
  return sysRecords(meta, `upl/${target}/`)
}
