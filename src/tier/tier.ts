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

/** A byte range of an object. */
export interface Range { offset: number; length: number }

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
 * - A failure that may succeed when the same call is simply made again (HTTP 5xx, throttling,
 *   connection refused/reset, timeouts) carries `detail.transient === true`; wrappers such as
 *   RetryTier retry only those (`isTransient` in transient.ts). Without the mark a failure is
 *   final: missing objects, missing buckets, access denied, bad keys.
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
  /**
   * Only meaningful when `capabilities.needsWarmup`; others answer 'warm'. With `range`, the
   * warmth of a warm-up of that range (tiers that recall byte ranges; others ignore it).
   */
  warmth(key: string, range?: Range): Promise<Warmth>
  /**
   * Starts (or joins) a warm-up of `key`, or of `range` of it where the tier recalls byte ranges
   * (Glacier); resolves when it has been requested, not when warm.
   */
  warmup(key: string, range?: Range): Promise<void>
  /** Free and total bytes where the tier can tell (local disks); undefined otherwise. */
  space(): Promise<{ free: number; total: number } | undefined>
  /** Absolute local path of `key` when `capabilities.localFiles`; undefined otherwise. */
  localPath(key: string): string | undefined
}

/** What a LocatorStore keeps for one key. */
export interface LocatorEntry {
  /** The backend's own id of the object (a Glacier archive id); opaque to the store. */
  locator: string
  /** The object's size in bytes, recorded at put (the backend cannot be asked cheaply). */
  size: number
}

/**
 * Where a tier whose backend assigns its own ids (Glacier: archive ids returned at upload, no
 * keys, no listing short of a day-long inventory job) keeps the key -> id mapping. The chunk
 * layer implements it on the pack records in metadata; the tier receives it in its constructor.
 *
 * Contract:
 * - `set` is durable when it resolves and replaces any entry under the key; `delete` of a
 *   missing key succeeds.
 * - `get` sees every `set`/`delete` that resolved before it was called.
 * - `keys` streams every entry whose key starts with `prefix` (flat, no delimiter), in no
 *   particular order; entries changed during the walk may or may not appear.
 * - Keys are tier keys (see `Tier`); values are stored verbatim.
 * - Failures are TierfsError.
 */
export interface LocatorStore {
  get(key: string): Promise<LocatorEntry | undefined>
  set(key: string, entry: LocatorEntry): Promise<void>
  delete(key: string): Promise<void>
  keys(prefix: string): AsyncIterable<LocatorEntry & { key: string }>
}
