import type { ChunkStore } from '../chunk/chunk-store.js'
import { PackWriter } from '../chunk/pack-writer.js'
import type { Logger } from '../log.js'
import type { Meta } from '../meta/meta.js'
import type { Tier } from '../tier/tier.js'

/**
 * Start-up repair of the write tier's packs after an unclean stop:
 * - a pack recorded as open is scanned, its torn tail cut, and finished (trailer written);
 *   committed chunks were synced before their commit, so none is lost;
 * - a pack file with no record holds only chunks of a transaction that never committed: removed.
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
