import type { TierId } from '../ids.js'

/**
 * What a tier can do, as data (callers read it instead of checking types).
 */
export interface TierCapabilities {
  /** `get` with a range costs about the range, not the whole object. */
  rangeReads: boolean
  /** Objects must be warmed (recalled) before `get` succeeds; see `warmth`/`warmup`. */
  needsWarmup: boolean
  /** Concurrency the backend is comfortable with; wrappers enforce it. */
  maxConnections: number
  /** Objects are plain local files: `localPath` is defined and may be used for pread/append. */
  localFiles: boolean
}

export interface ObjectInfo {
  key: string
  size: number
}

/** Warmth of one object on a tier that needs warm-up. */
export type Warmth = 'warm' | 'warming' | 'cold'

/**
 * A place where packs live: a local directory, an object store bucket, a cold archive.
 *
 * Contract (every implementation passes the conformance suite in test/tier/):
 * - Keys are relative, '/'-separated, made of [A-Za-z0-9._/-]; no '..' segments.
 * - `put` is atomic: readers see the whole object or none of it; putting an existing key
 *   replaces it atomically. When `put` resolves, the object is durable.
 * - `get` of a missing key fails with TierfsError NOT_FOUND; a range past the end is clipped.
 * - `delete` is idempotent: deleting a missing key succeeds.
 * - `list` streams every key under a prefix (flat, no delimiter), in no particular order.
 * - Failures are TierfsError (IO for transport problems, NOT_FOUND, NO_SPACE, CORRUPT); never
 *   raw backend errors. Messages never contain credentials.
 * - `ready()` and `close()` are idempotent.
 */
export interface Tier {
  readonly id: TierId
  readonly capabilities: TierCapabilities
  ready(): Promise<void>
  close(): Promise<void>
  get(key: string, range?: { offset: number; length: number }): Promise<Buffer>
  /** Uploads a local file (streamed, never loaded whole) or a buffer under `key`. */
  put(key: string, source: { file: string } | { data: Buffer }): Promise<void>
  head(key: string): Promise<ObjectInfo | undefined>
  delete(key: string): Promise<void>
  list(prefix: string): AsyncIterable<ObjectInfo>
  /** Only meaningful when `capabilities.needsWarmup`; others answer 'warm'. */
  warmth(key: string): Promise<Warmth>
  /** Starts (or joins) a warm-up of `key`; resolves when it has been requested, not when warm. */
  warmup(key: string): Promise<void>
  /** Free and total bytes where the tier can tell (local disks); undefined otherwise. */
  space(): Promise<{ free: number; total: number } | undefined>
  /** Absolute local path of `key` when `capabilities.localFiles`; undefined otherwise. */
  localPath(key: string): string | undefined
}
