import { mkdir, open, readdir, rm, stat, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { TierfsError, isCode } from '../errors.js'
import { asTierId } from '../ids.js'
import type { Logger } from '../log.js'
import { loadRows } from '../meta/level-load.js'
import { READABLE_FORMATS } from '../meta/level-meta.js'
import { LocalTier } from '../tier/local-tier.js'
import { RetryTier } from '../tier/retry-tier.js'
import { makeTier } from '../tier/targets.js'
import type { Tier } from '../tier/tier.js'
import type { CheckpointHeader } from './checkpoint-format.js'
import { checkpointOps, verifyCheckpointFile } from './checkpoint-file.js'
import { applyDelta, putRows } from './checkpoint-merge.js'
import { listCheckpoints, type ListedCheckpoint } from './checkpoint.js'
import type { StoreConfig } from './config.js'
import { StoreLayout } from './layout.js'
import { openStore } from './open-store.js'
import { reconcile, type ReconcileReport } from './recover-reconcile.js'

export interface RecoverOptions {
  /** The new store's directory (created; must not be a store yet). */
  store: string
  /** Where the checkpoints are: 'object', 'cold' or a target of `config`. */
  from: string
  /** The new store's configuration (written to its tierfs.json). */
  config: StoreConfig
  /** A checkpoint file name to recover from, instead of the newest usable one. */
  checkpoint?: string
  log: Logger
}

export interface RecoverReport {
  store: string
  from: string
  checkpoint: { name: string; kind: CheckpointHeader['kind']; base?: string; head: string; timeMs: number; time: string }
  /** Newer checkpoints that could not be used, and why. */
  skipped: Array<{ name: string; reason: string }>
  /** Metadata rows loaded. */
  rows: number
  reconcile: ReconcileReport
}

/** Bytes per ranged GET when a checkpoint is downloaded. */
const DOWNLOAD_PIECE = 8 * 1024 * 1024

/**
 * Rebuilds a store on a new host from the checkpoints on `from` and the packs on the store's
 * surviving tiers:
 *  1. the newest checkpoint (and, for a delta, its base) is fetched and verified in full (every
 *     record and the SHA-256); one that fails is skipped for the next older one, and reported;
 *  2. the new store is created (config, tier directories) and its metadata database is loaded
 *     with exactly the rows of the checkpoint's snapshot;
 *  3. the metadata is reconciled with the packs that exist (recover-reconcile.ts).
 * On failure the files this created (tierfs.json, meta/) are removed, so the command can be
 * run again; tier directories and their contents are never touched.
 */
export async function recoverStore(opts: RecoverOptions): Promise<RecoverReport> {
  const layout = new StoreLayout(opts.store)
  if (await exists(layout.config)) throw new TierfsError('STORE', `${layout.root} is already a tierfs store; recover into a new directory`)
  if ((await readdir(layout.meta).catch(() => [])).length > 0) throw new TierfsError('STORE', `${layout.meta} already holds metadata; recover into a new directory`)
  const source = sourceTier(opts.config, layout, opts.from)
  await source.ready()
  const work = join(layout.tierDir(opts.config, 'block'), 'recover')
  let created = false
  try {
    const chosen = await chooseCheckpoint(source, work, opts.checkpoint)
    for (const t of ['block', 'object', 'cold'] as const) await mkdir(layout.tierDir(opts.config, t), { recursive: true })
    await mkdir(layout.logDir, { recursive: true })
    created = true
    const rows = await loadRows(layout.meta, chosen.base === undefined
      ? putRows(checkpointOps(chosen.file))
      : applyDelta(checkpointOps(chosen.base.file), checkpointOps(chosen.file)))
    await writeFile(layout.config, JSON.stringify(opts.config, null, 2) + '\n')
    const store = await openStore(layout.root, opts.log, { recover: false })
    let rec: ReconcileReport
    try {
      rec = await reconcile({ meta: store.meta, tiers: store.tiers })
    } finally {
      await store.close()
    }
    const h = chosen.header
    return {
      store: layout.root, from: opts.from,
      checkpoint: {
        name: chosen.name, kind: h.kind, head: h.head.toString(), timeMs: h.timeMs, time: new Date(h.timeMs).toISOString(),
        ...(chosen.base === undefined ? {} : { base: chosen.base.name }),
      },
      skipped: chosen.skipped, rows, reconcile: rec,
    }
  } catch (err) {
    if (created) {
      await rm(layout.config, { force: true })
      await rm(layout.meta, { recursive: true, force: true })
    }
    throw err
  } finally {
    await rm(work, { recursive: true, force: true })
    await source.close()
  }
}

interface Chosen {
  name: string
  file: string
  header: CheckpointHeader
  base?: { name: string; file: string }
  skipped: Array<{ name: string; reason: string }>
}

/** The newest checkpoint whose files (itself and its base) verify; older ones are fallbacks. */
async function chooseCheckpoint(tier: Tier, work: string, wanted: string | undefined): Promise<Chosen> {
  const all = await listCheckpoints(tier)
  if (all.length === 0) throw new TierfsError('NOT_FOUND', `no checkpoints on ${tier.id} (looked under meta/checkpoints/)`)
  const candidates = wanted === undefined ? [...all].reverse() : all.filter((c) => c.name === wanted)
  if (candidates.length === 0) throw new TierfsError('NOT_FOUND', `checkpoint ${wanted} is not on ${tier.id}`)
  const skipped: Chosen['skipped'] = []
  for (const c of candidates) {
    try {
      const file = await fetch(tier, c, work)
      const v = await verifyCheckpointFile(file)
      // An older format is upgraded when the recovered store is first opened (LevelMeta).
      if (!READABLE_FORMATS.includes(v.header.metaFormat)) {
        throw new TierfsError('STORE', `${c.name} holds metadata format ${v.header.metaFormat}; this build reads ${READABLE_FORMATS.join(', ')}`)
      }
      if (v.header.base === undefined) return { name: c.name, file, header: v.header, skipped }
      const baseListed = all.find((b) => b.name === v.header.base?.name)
      if (baseListed === undefined) throw TierfsError.corrupt(`its base ${v.header.base.name} is not on ${tier.id}`)
      const baseFile = await fetch(tier, baseListed, work)
      const b = await verifyCheckpointFile(baseFile)
      if (b.header.kind !== 'full' || b.sha256 !== v.header.base.sha256) throw TierfsError.corrupt(`its base ${baseListed.name} is not the checkpoint it was made against`)
      return { name: c.name, file, header: v.header, base: { name: baseListed.name, file: baseFile }, skipped }
    } catch (err) {
      if (wanted !== undefined || !(isCode(err, 'CORRUPT') || isCode(err, 'NOT_FOUND') || isCode(err, 'STORE'))) throw err
      skipped.push({ name: c.name, reason: (err as Error).message })
    }
  }
  throw TierfsError.corrupt(`no usable checkpoint on ${tier.id}: ${skipped.map((s) => `${s.name}: ${s.reason}`).join('; ')}`)
}

/** A local file with the checkpoint's bytes: the object itself on a local tier, else a download. */
async function fetch(tier: Tier, c: ListedCheckpoint, work: string): Promise<string> {
  const local = tier.localPath(c.key)
  if (local !== undefined) return local
  await mkdir(work, { recursive: true })
  const path = join(work, c.name)
  if ((await stat(path).catch(() => undefined))?.size === c.size) return path
  const fh = await open(path, 'w')
  try {
    for (let off = 0; off < c.size; off += DOWNLOAD_PIECE) {
      const piece = await tier.get(c.key, { offset: off, length: Math.min(DOWNLOAD_PIECE, c.size - off) })
      if (piece.length === 0) break
      await fh.write(piece, 0, piece.length, off)
    }
  } finally {
    await fh.close()
  }
  return path
}

/** The tier that holds the checkpoints, built from the config without any metadata. */
function sourceTier(config: StoreConfig, layout: StoreLayout, from: string): Tier {
  if (from === 'block') throw new TierfsError('CONFIG', 'recover --from block: the block tier is what recovery replaces; name the object tier or a target')
  if (from === 'object' || from === 'cold') return new LocalTier(asTierId(from), layout.tierDir(config, from))
  const target = config.targets[from]
  if (target === undefined) {
    throw new TierfsError('CONFIG', `target ${JSON.stringify(from)} is not defined in the config (known: object, cold${Object.keys(config.targets).map((t) => `, ${t}`).join('')})`)
  }
  if (target.type === 'glacier') throw new TierfsError('CONFIG', `target ${from} is a cold archive: checkpoints are kept on tiers that read without a recall`)
  return new RetryTier(makeTier(asTierId(from), target, { baseDir: layout.root }))
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(() => true, () => false)
}
