import { open, readdir, rename, rm, stat, mkdir } from 'node:fs/promises'
import { join } from 'node:path'
import { TierfsError, isCode } from '../errors.js'
import { FORMAT_VERSION } from '../meta/level-meta.js'
import type { Meta } from '../meta/meta.js'
import type { Tier } from '../tier/tier.js'
import { decodeFooter, FOOTER_SIZE, type CheckpointHeader, type CheckpointKind, type CheckpointOp } from './checkpoint-format.js'
import { checkpointOps, readHeaderObject, writeCheckpointFile, type WrittenCheckpoint } from './checkpoint-file.js'
import { diffRows } from './checkpoint-merge.js'
import { BASE_FILE, nextIsFull, readState, writeState, type CheckpointState } from './checkpoint-state.js'

/** Where checkpoints live on their tier. */
export const CHECKPOINT_PREFIX = 'meta/checkpoints/'

/** `<UTC time>-<head version>.tfck` (full) or `.delta.tfck`; the time sorts as text. */
const NAME = /^(\d{8}T\d{6}\.\d{3}Z)-(\d+)(\.delta)?\.tfck$/

export interface CheckpointOptions {
  /** Local directory on the block tier: the file being written and the base of deltas. */
  localDir: string
  /** Checkpoints kept on the tier; older ones go, except the full ones kept deltas are based on. */
  keep: number
  /** Every this many checkpoints one is full (1: always full). */
  fullEvery: number
  /** Write a full checkpoint whatever the schedule of full ones says. */
  full?: boolean
  now?: () => number
}

export interface CheckpointResult {
  tier: string
  key: string
  kind: CheckpointKind
  /** A delta's base (file name in the same directory). */
  base?: string
  /** Why the checkpoint is full when a delta could have been written. */
  fullReason?: string
  /** Newest metadata version in the checkpoint (decimal). */
  head: string
  timeMs: number
  entries: number
  bytes: number
  sha256: string
  /** Older checkpoints deleted by `keep`. */
  deleted: string[]
  /** Set when deleting old checkpoints failed (the new checkpoint is in place regardless). */
  pruneError?: string
  elapsedMs: number
}

export interface ListedCheckpoint {
  name: string
  key: string
  size: number
  kind: CheckpointKind
  timeMs: number
}

export function checkpointName(timeMs: number, head: bigint, kind: CheckpointKind): string {
  const stamp = new Date(timeMs).toISOString().replace(/[-:]/g, '')
  return `${stamp}-${head}${kind === 'delta' ? '.delta' : ''}.tfck`
}

/** Checkpoints on a tier, oldest first (by the time in their names). */
export async function listCheckpoints(tier: Tier): Promise<ListedCheckpoint[]> {
  const out: ListedCheckpoint[] = []
  for await (const obj of tier.list(CHECKPOINT_PREFIX)) {
    const name = obj.key.slice(CHECKPOINT_PREFIX.length)
    const m = NAME.exec(name)
    if (m === null) continue
    const iso = (m[1] as string).replace(/^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})/, '$1-$2-$3T$4:$5:$6')
    out.push({ name, key: obj.key, size: obj.size, kind: m[3] === undefined ? 'full' : 'delta', timeMs: Date.parse(iso) })
  }
  return out.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
}

/**
 * Writes one checkpoint of the whole metadata database to `tier` under
 * `meta/checkpoints/<UTC time>-<head>.tfck`, then deletes checkpoints beyond `keep`.
 *
 * Consistency: the rows come from one metadata snapshot (Meta.dump), so the checkpoint is one
 * committed state even while the store is in use.
 *
 * Full or delta: a delta holds the changes since the last full checkpoint (differential, not
 * chained: recovery needs two files at most). It is computed by streaming the snapshot side by
 * side with the local copy of that full checkpoint (`<localDir>/base.tfck`), both in key order,
 * so it also carries deletions (versions the collector dropped, pruned chunks and packs,
 * deleted restore points) and in-place changes (refcounts, pack records). A full checkpoint is
 * written every `fullEvery`-th time, when the local base is missing, damaged or no longer on the
 * tier, or when the last delta grew past half its base.
 *
 * The file is built on local disk first (streamed: bounded memory), uploaded with `tier.put`,
 * checked by size with `tier.head`. One writer at a time per `localDir` (the daemon serializes).
 */
export async function writeCheckpoint(meta: Pick<Meta, 'dump'>, tier: Tier, opts: CheckpointOptions): Promise<CheckpointResult> {
  const started = Date.now()
  const now = opts.now ?? Date.now
  if (tier.capabilities.needsWarmup) {
    throw new TierfsError('CONFIG', `checkpoints need a tier that reads without a recall; ${tier.id} is a cold tier`)
  }
  await mkdir(opts.localDir, { recursive: true })
  for (const f of await readdir(opts.localDir)) if (f.endsWith('.tmp')) await rm(join(opts.localDir, f), { force: true })
  const state = await readState(opts.localDir, now())
  const basePath = join(opts.localDir, BASE_FILE)

  let fullReason = opts.full === true ? 'requested' : nextIsFull(state, opts.fullEvery) ? fullScheduleReason(state, opts.fullEvery) : undefined
  if (fullReason === undefined) fullReason = await baseProblem(tier, basePath, state)
  let made: Made | undefined
  if (fullReason === undefined) {
    try {
      made = await produce(meta, opts.localDir, now, 'delta', basePath, state)
    } catch (err) {
      if (!isCode(err, 'CORRUPT')) throw err
      fullReason = `the local base is damaged (${(err as Error).message})`
    }
  }
  made ??= await produce(meta, opts.localDir, now, 'full', basePath, state)

  const key = CHECKPOINT_PREFIX + made.name
  try {
    await tier.put(key, { file: made.path })
    const head = await tier.head(key)
    if (head?.size !== made.written.bytes) {
      await tier.delete(key).catch(() => undefined)
      throw TierfsError.corrupt(`checkpoint upload to ${tier.id}:${key} did not verify: ${head?.size ?? 'no object'} bytes, expected ${made.written.bytes}`)
    }
  } catch (err) {
    await rm(made.path, { force: true })
    throw err
  }

  const h = made.written.header
  const next: CheckpointState = { ...state, lastMs: h.timeMs }
  if (h.kind === 'full') {
    await rename(made.path, basePath)
    next.base = { name: made.name, sha256: made.written.sha256, bytes: made.written.bytes }
    next.deltas = 0
    next.lastDeltaBytes = 0
  } else {
    await rm(made.path, { force: true })
    next.deltas = state.deltas + 1
    next.lastDeltaBytes = made.written.bytes
  }
  await writeState(opts.localDir, next)

  const result: CheckpointResult = {
    tier: tier.id, key, kind: h.kind, head: h.head.toString(), timeMs: h.timeMs, entries: h.entries, bytes: made.written.bytes,
    sha256: made.written.sha256, deleted: [], elapsedMs: 0,
    ...(h.base === undefined ? {} : { base: h.base.name }),
    ...(h.kind === 'full' && fullReason !== undefined ? { fullReason } : {}),
  }
  try {
    result.deleted = await pruneCheckpoints(tier, opts.keep, next.base?.name)
  } catch (err) {
    result.pruneError = (err as Error).message
  }
  result.elapsedMs = Date.now() - started
  return result
}

interface Made { name: string; path: string; written: WrittenCheckpoint }

/** Writes the checkpoint file locally from a fresh snapshot. */
async function produce(
  meta: Pick<Meta, 'dump'>, dir: string, now: () => number, kind: CheckpointKind, basePath: string, state: CheckpointState,
): Promise<Made> {
  const dump = await meta.dump()
  try {
    const timeMs = now()
    const name = checkpointName(timeMs, dump.head, kind)
    const path = join(dir, `${name}.tmp`)
    const info: Omit<CheckpointHeader, 'entries' | 'bodyLength'> = { kind, metaFormat: FORMAT_VERSION, head: dump.head, timeMs }
    let ops: AsyncIterable<CheckpointOp>
    if (kind === 'delta') {
      const base = state.base as NonNullable<CheckpointState['base']>
      info.base = { name: base.name, sha256: base.sha256 }
      ops = diffRows(dump.rows(), checkpointOps(basePath, (digest) => {
        if (digest !== base.sha256) throw TierfsError.corrupt(`${basePath} is not the checkpoint ${base.name}`)
      }))
    } else {
      ops = (async function* () { for await (const [key, value] of dump.rows()) yield { op: 'put' as const, key, value } })()
    }
    try {
      return { name, path, written: await writeCheckpointFile(path, info, ops) }
    } catch (err) {
      await rm(path, { force: true })
      throw err
    }
  } finally {
    await dump.close()
  }
}

function fullScheduleReason(state: CheckpointState, fullEvery: number): string {
  if (state.base === undefined) return 'no earlier full checkpoint on this host'
  if (fullEvery <= 1 || state.deltas + 1 >= fullEvery) return `every ${fullEvery} checkpoints one is full`
  return 'the last delta grew past half of its base'
}

/** Why the local base cannot serve for a delta; undefined when it can. */
async function baseProblem(tier: Tier, basePath: string, state: CheckpointState): Promise<string | undefined> {
  const base = state.base
  if (base === undefined) return 'no earlier full checkpoint on this host'
  const local = await stat(basePath).catch(() => undefined)
  if (local?.size !== base.bytes) return `the local copy of ${base.name} is missing`
  const fh = await open(basePath, 'r')
  try {
    const f = Buffer.alloc(FOOTER_SIZE)
    await fh.read(f, 0, FOOTER_SIZE, base.bytes - FOOTER_SIZE)
    if (decodeFooter(f, basePath) !== base.sha256) return `the local copy of ${base.name} does not match its digest`
  } catch (err) {
    return `the local copy of ${base.name} is damaged (${(err as Error).message})`
  } finally {
    await fh.close()
  }
  const remote = await tier.head(CHECKPOINT_PREFIX + base.name)
  if (remote?.size !== base.bytes) return `${base.name} is no longer on ${tier.id}`
  return undefined
}

/**
 * Deletes checkpoints beyond the newest `keep`, except the full checkpoints that kept deltas
 * are based on, and `alsoKeep` (the writer's current base). Returns the deleted names. A kept
 * delta whose header cannot be read stops the pruning of full checkpoints (its base is unknown).
 */
export async function pruneCheckpoints(tier: Tier, keep: number, alsoKeep?: string): Promise<string[]> {
  const all = await listCheckpoints(tier)
  const kept = new Set(all.slice(Math.max(0, all.length - Math.max(1, keep))).map((c) => c.name))
  if (alsoKeep !== undefined) kept.add(alsoKeep)
  let basesKnown = true
  for (const c of all) {
    if (!kept.has(c.name) || c.kind !== 'delta') continue
    try {
      const h = await readHeaderObject(tier, c.key)
      if (h.base !== undefined) kept.add(h.base.name)
    } catch {
      basesKnown = false
    }
  }
  const deleted: string[] = []
  for (const c of all) {
    if (kept.has(c.name) || (c.kind === 'full' && !basesKnown)) continue
    await tier.delete(c.key)
    deleted.push(c.name)
  }
  return deleted
}
