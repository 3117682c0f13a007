import { validateCronExpression } from 'cron'
import { TierfsError } from '../errors.js'
import { DEFAULT_MOUNT_OPTIONS, type MountOptions } from '../fuse/mount.js'
import { parseTarget, type TargetConfig } from '../tier/targets.js'

/** A tier backend as configured: only local directories in this version. */
export interface TierConfig {
  type: 'local'
  /** Directory; relative paths are relative to the store. */
  path: string
}

/**
 * The store's configuration (`STORE/tierfs.json`). Every field has a default, so the embedded
 * default config is `{}` plus the tier directories; `tierfs init` writes it out in full.
 */
export interface StoreConfig {
  format: 1
  tiers: { block: TierConfig; object: TierConfig; cold: TierConfig }
  chunker: { minSize: number; avgSize: number; maxSize: number }
  /** Compress chunks when it saves space (see the README's benchmark for the cost). */
  compression: boolean
  /** Bytes after which an open pack is finished. */
  packSize: number
  /** Files up to this many bytes are stored inline in metadata. */
  inlineMax: number
  seal: { debounceMs: number; batchFiles: number; batchBytes: number }
  cache: { chunkBytes: number; metaEntries: number }
  /** How long every past instant stays readable (versions are kept at least this long). */
  history: { windowHours: number; collectEveryMinutes: number }
  mount: Omit<MountOptions, 'extra' | 'debug'>
  log: { level: 'debug' | 'info' | 'warn' | 'error' }
  /** Named places tiers live (S3 buckets, Azure containers, Glacier vaults, directories). */
  targets: Record<string, TargetConfig>
  /** Background migration by policy. */
  migrate: {
    /** Cron schedule of policy passes (seconds first). Empty: only `tierfs policy apply`. */
    schedule: string
    /** Pack size per destination kind. */
    objectPackSize: number
    coldPackSize: number
    /** Most bytes moved per pass (passes resume where the last stopped). */
    maxBytesPerPass: number
    /** Packs whose live fraction falls below this are repacked (block: by prune; others: by policy passes); 0: never. */
    repackBelow: number
  }
  /** Cold reads: how long a read waits for a recall before answering EAGAIN. */
  recall: { waitSeconds: number }
  /** Policy files (`*.yaml`); relative to the store. Re-read every `reloadSeconds` and on SIGHUP. */
  policies: { dir: string; reloadSeconds: number }
  /** Prometheus endpoint on 127.0.0.1:port (GET /metrics); 0 turns it off. */
  metrics: { port: number }
  /**
   * Periodic checkpoints of the metadata database (src/store/checkpoint.ts), so a new host can
   * mount the store from the object tier alone (`tierfs recover`). `target`: 'object' or a
   * named target that reads without a recall (never a cold tier); `everyHours` 0 turns the schedule off;
   * `keep` checkpoints are kept; one in `fullEvery` is full, the others are deltas against it.
   */
  checkpoint: { target: string; everyHours: number; keep: number; fullEvery: number }
  /**
   * Scheduled prune (what `tierfs prune` does: retention, then garbage collection of versions,
   * chunks and packs). `schedule`: cron, seconds first; empty turns it off.
   */
  prune: { schedule: string }
}

export const DEFAULT_CONFIG: StoreConfig = {
  format: 1,
  tiers: {
    block: { type: 'local', path: 'block' },
    object: { type: 'local', path: 'object' },
    cold: { type: 'local', path: 'cold' },
  },
  chunker: { minSize: 256 * 1024, avgSize: 1024 * 1024, maxSize: 4 * 1024 * 1024 },
  compression: false,
  packSize: 32 * 1024 * 1024,
  inlineMax: 8 * 1024,
  seal: { debounceMs: 200, batchFiles: 512, batchBytes: 256 * 1024 * 1024 },
  cache: { chunkBytes: 128 * 1024 * 1024, metaEntries: 200_000 },
  history: { windowHours: 7 * 24, collectEveryMinutes: 60 },
  mount: {
    allowOther: DEFAULT_MOUNT_OPTIONS.allowOther, attrTimeout: DEFAULT_MOUNT_OPTIONS.attrTimeout,
    entryTimeout: DEFAULT_MOUNT_OPTIONS.entryTimeout, negativeTimeout: DEFAULT_MOUNT_OPTIONS.negativeTimeout,
    maxBackground: DEFAULT_MOUNT_OPTIONS.maxBackground, congestionThreshold: DEFAULT_MOUNT_OPTIONS.congestionThreshold,
    kernelCache: DEFAULT_MOUNT_OPTIONS.kernelCache,
  },
  log: { level: 'info' },
  targets: {},
  migrate: {
    schedule: '0 */10 * * * *', objectPackSize: 32 * 1024 * 1024, coldPackSize: 256 * 1024 * 1024,
    maxBytesPerPass: 8 * 1024 * 1024 * 1024, repackBelow: 0.5,
  },
  recall: { waitSeconds: 10 },
  policies: { dir: 'policies', reloadSeconds: 10 },
  metrics: { port: 0 },
  checkpoint: { target: 'object', everyHours: 24, keep: 7, fullEvery: 7 },
  prune: { schedule: '0 30 3 * * *' },
}

type Json = null | boolean | number | string | Json[] | { [k: string]: Json }

/**
 * Merges a user config over the defaults, checking every field's type and range. Unknown keys
 * are refused (a typo must not silently fall back to a default). Errors name the field.
 */
export function parseConfig(text: string, source: string): StoreConfig {
  let raw: Json
  try {
    raw = JSON.parse(text) as Json
  } catch (err) {
    throw new TierfsError('CONFIG', `${source}: not valid JSON: ${(err as Error).message}`)
  }
  let targets: Record<string, TargetConfig> = {}
  if (raw !== null && typeof raw === 'object' && !Array.isArray(raw) && 'targets' in raw) {
    const t = raw.targets
    if (t === null || typeof t !== 'object' || Array.isArray(t)) throw new TierfsError('CONFIG', `${source}: targets must be an object of named targets`)
    targets = Object.fromEntries(Object.entries(t).map(([name, v]) => {
      if (name === 'block' || name === 'object' || name === 'cold') throw new TierfsError('CONFIG', `${source}: targets.${name}: the names block, object and cold are the store's own tiers`)
      return [name, wrapTargetError(source, () => parseTarget(name, v))]
    }))
    raw = { ...raw }
    delete (raw as { targets?: Json }).targets
  }
  const cfg = merge({ ...(DEFAULT_CONFIG as unknown as { [k: string]: Json }), targets: {} } as Json, raw, source, '') as unknown as StoreConfig
  cfg.targets = targets
  const c = cfg.chunker
  if (!(c.minSize >= 1024 && c.minSize < c.avgSize && c.avgSize < c.maxSize && c.maxSize <= 64 * 1024 * 1024)) {
    throw new TierfsError('CONFIG', `${source}: chunker: need 1024 <= minSize < avgSize < maxSize <= 64 MiB`)
  }
  if (cfg.inlineMax < 0 || cfg.inlineMax > 1024 * 1024) throw new TierfsError('CONFIG', `${source}: inlineMax must be 0..1048576`)
  if (cfg.packSize < 1024 * 1024) throw new TierfsError('CONFIG', `${source}: packSize must be at least 1 MiB`)
  if (!['debug', 'info', 'warn', 'error'].includes(cfg.log.level)) throw new TierfsError('CONFIG', `${source}: log.level must be debug, info, warn or error`)
  for (const [name, t] of Object.entries(cfg.tiers)) {
    if (t.type !== 'local') throw new TierfsError('CONFIG', `${source}: tiers.${name}.type must be "local" in this version`)
  }
  const ck = cfg.checkpoint
  // Metadata never goes to a cold tier: recovery must read it without waiting hours for a recall.
  // (block, object and cold are never names in `targets`.)
  const ckTarget = targets[ck.target]
  if (ck.target !== 'object' && (ckTarget === undefined || ckTarget.type === 'glacier' || ckTarget.kind === 'cold')) {
    throw new TierfsError('CONFIG', `${source}: checkpoint.target must be object or an S3, Azure or local target defined in targets (not block: checkpoints protect against losing it; not cold or Glacier: metadata never goes to a cold tier)`)
  }
  if (!Number.isInteger(ck.keep) || ck.keep < 1) throw new TierfsError('CONFIG', `${source}: checkpoint.keep must be a whole number of at least 1`)
  if (!Number.isInteger(ck.fullEvery) || ck.fullEvery < 1) throw new TierfsError('CONFIG', `${source}: checkpoint.fullEvery must be a whole number of at least 1`)
  for (const [key, expr] of [['migrate.schedule', cfg.migrate.schedule], ['prune.schedule', cfg.prune.schedule]] as const) {
    if (expr !== '' && !validateCronExpression(expr).valid) {
      throw new TierfsError('CONFIG', `${source}: ${key} must be a cron expression of 5 or 6 fields (seconds first), e.g. "0 30 3 * * *", or "" for none`)
    }
  }
  const below = cfg.migrate.repackBelow
  if (!(below >= 0 && below <= 1)) throw new TierfsError('CONFIG', `${source}: migrate.repackBelow must be a fraction from 0 to 1 (0: never repack)`)
  if (cfg.format !== 1) throw new TierfsError('CONFIG', `${source}: format ${String(cfg.format)} is not supported (this tierfs reads format 1)`)
  return cfg
}

function wrapTargetError<T>(source: string, fn: () => T): T {
  try {
    return fn()
  } catch (err) {
    if (err instanceof TierfsError) throw new TierfsError('CONFIG', `${source}: ${err.message}`, { cause: err })
    throw err
  }
}

function merge(def: Json, user: Json, source: string, at: string): Json {
  if (user === undefined) return def
  if (def !== null && typeof def === 'object' && !Array.isArray(def)) {
    if (user === null || typeof user !== 'object' || Array.isArray(user)) {
      throw new TierfsError('CONFIG', `${source}: ${at || 'top level'} must be an object`)
    }
    const out: { [k: string]: Json } = {}
    for (const k of Object.keys(user)) {
      if (!(k in def)) throw new TierfsError('CONFIG', `${source}: unknown key ${at ? at + '.' : ''}${k}`)
    }
    for (const [k, v] of Object.entries(def)) out[k] = merge(v, (user as { [k: string]: Json })[k] as Json, source, at ? `${at}.${k}` : k)
    return out
  }
  if (typeof def !== typeof user) throw new TierfsError('CONFIG', `${source}: ${at} must be a ${typeof def}`)
  if (typeof user === 'number' && (!Number.isFinite(user) || user < 0)) throw new TierfsError('CONFIG', `${source}: ${at} must be a non-negative number`)
  return user
}
