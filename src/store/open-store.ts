import { readFile, rm } from 'node:fs/promises'
import { join } from 'node:path'
import { TierfsError } from '../errors.js'
import { asTierId } from '../ids.js'
import { ChunkStore } from '../chunk/chunk-store.js'
import type { Logger } from '../log.js'
import { LevelMeta } from '../meta/level-meta.js'
import type { Meta } from '../meta/meta.js'
import { LocalTier } from '../tier/local-tier.js'
import { LimitTier } from '../tier/limit-tier.js'
import { MetricsTier } from '../tier/metrics-tier.js'
import { RetryTier } from '../tier/retry-tier.js'
import { makeTier } from '../tier/targets.js'
import type { Tier } from '../tier/tier.js'
import { TierSet } from '../tier/tier-set.js'
import { parseConfig, type StoreConfig } from './config.js'
import { StoreLayout } from './layout.js'
import { recoverPacks } from './recover-packs.js'
import { metaIntents, metaJobs, metaLocators } from './meta-locators.js'
import { clearStrays } from './stray-objects.js'

/** The storage stack of one store, opened: config, metadata, tiers, chunk store. */
export interface OpenStore {
  layout: StoreLayout
  config: StoreConfig
  meta: Meta
  block: Tier
  /** Every tier packs may live on (block, object, cold, and the named targets). */
  tiers: TierSet
  /** Targets that failed their start-up check (name -> reason); the store opened without them. */
  unavailable: Map<string, string>
  chunks: ChunkStore
  close(): Promise<void>
}

export async function readConfig(layout: StoreLayout): Promise<StoreConfig> {
  let text: string
  try {
    text = await readFile(layout.config, 'utf8')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new TierfsError('STORE', `${layout.root} is not a tierfs store (no tierfs.json; create one with: tierfs init ${layout.root})`)
    }
    throw TierfsError.from(err, layout.config)
  }
  return parseConfig(text, layout.config)
}

/**
 * Opens a store: reads its config, opens the metadata (LOCKED if another process has it),
 * readies the tiers and recovers what a crash left: packs left open on the block tier, the
 * migrator's local scratch packs, and objects noted as possibly stray (stray-objects.ts).
 * A named target that fails its start-up check (bucket missing, endpoint down) does not stop
 * the store from opening: data on the other tiers stays readable; the failure is logged naming
 * the target, kept in `unavailable`, and every operation on that target reports its own error.
 * Library code: no timers.
 */
export async function openStore(root: string, log: Logger, opts: { now?: () => number; recover?: boolean } = {}): Promise<OpenStore> {
  const now = opts.now
  const layout = new StoreLayout(root)
  const config = await readConfig(layout)
  const meta = new LevelMeta({ path: layout.meta, cacheEntries: config.cache.metaEntries, ...(now ? { now } : {}) })
  try {
    await meta.ready()
  } catch (err) {
    if (err instanceof TierfsError && err.code === 'LOCKED') {
      throw new TierfsError('LOCKED', `store ${layout.root} is in use by another tierfs process (already mounted?)`, { cause: err })
    }
    throw err
  }
  const block = new LocalTier(asTierId('block'), layout.tierDir(config, 'block'))
  const tiers = new TierSet().add(block.id, { tier: block, kind: 'block' })
  for (const kind of ['object', 'cold'] as const) {
    tiers.add(asTierId(kind), { tier: new LocalTier(asTierId(kind), layout.tierDir(config, kind)), kind })
  }
  for (const [name, target] of Object.entries(config.targets)) {
    const plain = makeTier(asTierId(name), target, {
      baseDir: layout.root, locators: metaLocators(meta, name), retrievalJobs: metaJobs(meta, name), uploadIntents: metaIntents(meta, name),
    })
    const metrics = new MetricsTier(plain)
    const tier = new RetryTier(new LimitTier(metrics))
    if (target.kind === 'object' && plain.capabilities.needsWarmup) {
      throw new TierfsError('CONFIG', `targets.${name}: kind object, but its objects need a recall before they can be read: it can only be cold`)
    }
    const kind = target.kind ?? (plain.capabilities.needsWarmup ? 'cold' : 'object')
    tiers.add(asTierId(name), { tier, kind, metrics: () => metrics.snapshot() })
  }
  const unavailable = new Map<string, string>()
  for (const [id, { tier }] of tiers.all()) {
    try {
      await tier.ready()
    } catch (err) {
      if (!(id in config.targets)) throw err
      unavailable.set(id, (err as Error).message)
      log.error('target unavailable at start-up; the store opens without it (moves to it and reads from it fail until it answers)', { target: id, err })
    }
  }
  const chunks = new ChunkStore(meta, block, {
    chunker: config.chunker, compress: config.compression, packSize: config.packSize, cacheBytes: config.cache.chunkBytes,
    recallWaitMs: config.recall.waitSeconds * 1000,
  }, tiers)
  if (opts.recover !== false) {
    await recoverPacks(meta, block, chunks, log)
    // Packs the migrator was building when the process stopped: never recorded anywhere.
    await rm(join(layout.tierDir(config, 'block'), 'outgoing'), { recursive: true, force: true })
    await clearStrays(meta, tiers, log)
  }
  return {
    layout, config, meta, block, tiers, chunks, unavailable,
    async close() {
      // A clean stop leaves no pack open: the next start then has nothing to recover.
      const txn = meta.begin()
      await chunks.finishOpenPack(txn)
      if (txn.size > 0) await txn.commit({ sync: true })
      await chunks.close()
      await tiers.close()
      await meta.close()
    },
  }
}
