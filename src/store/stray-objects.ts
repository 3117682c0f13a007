import { isCode } from '../errors.js'
import type { TierId } from '../ids.js'
import type { Logger } from '../log.js'
import type { Meta, Txn } from '../meta/meta.js'
import type { TierSet } from '../tier/tier-set.js'

/**
 * Objects that may sit on a tier with no pack record owning them, noted in metadata (sys space,
 * `stray/<tier>/<key>`) before they can exist, so a crash or a failed pass never leaks them:
 * - the migrator notes a pack (synced) before uploading it; the commit that records the pack
 *   drops the note;
 * - the commit that deletes a freed pack's record notes its object; deleting the object drops it.
 * A note left behind names an object to delete, unless a pack record owns its key by then.
 * Objects nobody noted are never touched: a bucket may hold other things, and an unknown object
 * is for fsck to report, not for start-up to guess about.
 */
const PREFIX = 'stray/'

/** The sys name of the note for `key` on `tier` (tier ids hold no '/'). */
export function strayName(tier: TierId, key: string): string {
  return `${PREFIX}${tier}/${key}`
}

/** Notes, synced, that `key` on `tier` may exist without a record (before uploading it). */
export async function noteStray(meta: Meta, tier: TierId, key: string): Promise<void> {
  await meta.begin().putSys(strayName(tier, key), Buffer.alloc(0)).commit({ sync: true })
}

/** Adds the note to a Txn (the one deleting a pack record whose object is removed next). */
export function noteStrayIn(txn: Txn, tier: TierId, key: string): Txn {
  return txn.putSys(strayName(tier, key), Buffer.alloc(0))
}

export async function dropStray(meta: Meta, tier: TierId, key: string): Promise<void> {
  await meta.begin().deleteSys(strayName(tier, key)).commit()
}

export interface StrayReport {
  /** Objects deleted (or found gone) and their notes dropped. */
  removed: number
  /** Notes dropped because a pack record owns the key. */
  owned: number
  /** Notes kept: the tier is not configured, or the delete failed or asked to be retried (AGAIN). */
  kept: number
}

/**
 * Resolves every note left behind: deletes the object unless a pack record owns its key, then
 * drops the note. Called at start-up and before each migration pass (one pass at a time, so no
 * note of an upload still under way is seen here). Failures keep the note for the next call.
 */
export async function clearStrays(meta: Meta, tiers: Pick<TierSet, 'has' | 'get'>, log: Logger): Promise<StrayReport> {
  const report: StrayReport = { removed: 0, owned: 0, kept: 0 }
  for (const name of await meta.sysNames(PREFIX)) {
    const rest = name.slice(PREFIX.length)
    const slash = rest.indexOf('/')
    const tierId = rest.slice(0, slash) as TierId
    const key = rest.slice(slash + 1)
    const packId = key.slice(key.lastIndexOf('/') + 1).replace(/\.pack$/, '')
    const rec = slash > 0 && packId !== '' ? await meta.getPack(packId as Parameters<Meta['getPack']>[0]) : undefined
    if (rec !== undefined && rec.tier === tierId && rec.key === key) {
      await meta.begin().deleteSys(name).commit()
      report.owned++
      continue
    }
    if (slash <= 0 || !tiers.has(tierId)) {
      log.warn('a stray object note names a tier that is not configured; kept', { tier: tierId, key })
      report.kept++
      continue
    }
    try {
      await tiers.get(tierId).delete(key)
    } catch (err) {
      // AGAIN: the tier is working on it (a Glacier vault inventory takes hours), not failing.
      if (isCode(err, 'AGAIN')) log.info('an object a failed or interrupted migration may have left is not removable yet; retried later', { tier: tierId, key, reason: (err as Error).message })
      else log.warn('could not remove an object a failed or interrupted migration left; retried later', { tier: tierId, key, err })
      report.kept++
      continue
    }
    await meta.begin().deleteSys(name).commit()
    log.info('removed an object a failed or interrupted migration left', { tier: tierId, key })
    report.removed++
  }
  return report
}
