import type { ChunkStore } from '../chunk/chunk-store.js'
import { fileRandomAccess, readTrailer, scanPack } from '../chunk/pack-reader.js'
import { PackWriter } from '../chunk/pack-writer.js'
import { isCode } from '../errors.js'
import type { Logger } from '../log.js'
import type { Meta } from '../meta/meta.js'
import type { Tier } from '../tier/tier.js'

/**
 * Start-up repair of the write tier's packs after an unclean stop:
 * - a pack recorded as open is scanned, its torn tail cut, and finished (trailer written);
 *   committed chunks were synced before their commit, so none is lost;
 * - a pack file with no record holds only chunks of a transaction that never committed: removed.
 * A record that fails its checksum before the pack's committed size is damage, not a torn tail:
 * cutting there would drop every committed chunk after it, so such a pack is left untouched for
 * fsck to report (its intact chunks stay readable by offset).
 */
export async function recoverPacks(meta: Meta, tier: Tier, _chunks: ChunkStore, log: Logger): Promise<void> {
  const known = new Set<string>()
  const txn = meta.begin()
  for await (const rec of meta.packs()) {
    if (rec.tier !== tier.id) continue
    known.add(rec.key)
    if (rec.state !== 'open') continue
    const path = tier.localPath(rec.key)
    if (path === undefined) continue
    const found = await tier.head(rec.key)
    if (found === undefined) {
      log.error('open pack file is missing', { pack: rec.id, key: rec.key })
      continue
    }
    const validEnd = await scannedEnd(path)
    if (validEnd !== undefined && validEnd < rec.size) {
      log.error('pack is damaged inside its committed bytes; left as it is (run tierfs fsck)', { pack: rec.id, key: rec.key, validEnd, committed: rec.size })
      continue
    }
    const { writer, finished } = await PackWriter.recover(path)
    const size = finished || writer === undefined ? found.size : (await writer.finish()).size
    txn.putPack({ ...rec, state: 'sealed', size })
    log.info('finished a pack left open by an unclean stop', { pack: rec.id, size })
  }
  for await (const obj of tier.list('packs/')) {
    if (!known.has(obj.key) && obj.key.endsWith('.pack')) {
      log.info('removing a pack file no commit refers to', { key: obj.key, size: obj.size })
      await tier.delete(obj.key)
    }
  }
  if (txn.size > 0) await txn.commit({ sync: true })
}

/** Where the valid records of an unfinished pack end (undefined when it has a valid trailer). */
async function scannedEnd(path: string): Promise<number | undefined> {
  const ra = fileRandomAccess(path)
  try {
    try {
      await readTrailer(ra)
      return undefined
    } catch (err) {
      if (!isCode(err, 'CORRUPT')) throw err
    }
    return (await scanPack(ra)).validEnd
  } finally {
    await ra.close()
  }
}
