import type { ChunkId, Ino, PackId, Version } from '../ids.js'
import type { ChunkLocation, ChunkRecord, DirEntry, FileMap, InodeAttrs, PackRecord, Pin } from './types.js'

/**
 * A point of view for reads: `undefined` means "now" (the newest committed version, served
 * from the hot cache); a Version means "as of that version" (snapshots, history).
 */
export type AsOf = Version | undefined

/**
 * Read side of the versioned metadata. All namespace reads take an optional `asOf`; a read as of
 * version V sees exactly the records committed at versions <= V (a tombstone hides the key).
 * Reads never block on writers and never see a partially committed transaction.
 */
export interface MetaReader {
  /** The newest committed version. */
  readonly head: Version
  /** Version current at wall-clock time `ms` (for /.history/<time> and pins). */
  versionAt(ms: number): Version
  /**
   * True when no commit can change any more what a read as of `v` sees: `v` is at or below the
   * head (every later commit gets a higher version), or no commit is in flight and `v` lies in a
   * millisecond the wall clock has passed (versions follow the wall clock). Reads as of a settled
   * version may be cached for as long as the collector keeps that version (a pin or the history
   * window). Checked before the read: a version settled then stays settled.
   */
  settled(v: Version): boolean
  /**
   * Changes whenever a commit puts or deletes a pin (after the commit is visible): a list of
   * pins read while it kept one value is still current.
   */
  readonly pinStamp: number
  getInode(ino: Ino, asOf?: AsOf): Promise<InodeAttrs | undefined>
  lookup(parent: Ino, name: string, asOf?: AsOf): Promise<Ino | undefined>
  /**
   * The inode record a read as of `asOf` sees, with the version that committed it (one seek, as
   * getInode). Lets a walk over two versions V1 < V2 tell an untouched inode without reading it
   * twice: every namespace change puts the inodes it affects (a seal puts the file's inode with
   * its filemap; an entry added, removed or renamed puts its directory's; an xattr change puts
   * the inode), so a record committed at or before V1 means the same attributes, data and
   * directory entries at V1 and V2.
   */
  getInodeVersioned(ino: Ino, asOf?: AsOf): Promise<{ attrs: InodeAttrs; version: Version } | undefined>
  /**
   * Lists a directory in name order (byte order of the UTF-8 name), starting strictly after
   * `after` when given. Streams: memory does not grow with directory size.
   */
  readdir(parent: Ino, asOf?: AsOf, after?: string): AsyncIterable<DirEntry>
  /** True when the directory has at least one entry (cheaper than readdir). */
  hasChildren(parent: Ino, asOf?: AsOf): Promise<boolean>
  getFileMap(ino: Ino, asOf?: AsOf): Promise<FileMap | undefined>
  getXattr(ino: Ino, name: string, asOf?: AsOf): Promise<Buffer | undefined>
  listXattrs(ino: Ino, asOf?: AsOf): Promise<string[]>
  /**
   * The xattr names of every inode in [first, last], in inode then name order: one scan where
   * listXattrs would seek once per inode (a directory's files, whose inode numbers are usually
   * close together). Streams.
   */
  listXattrsIn(first: Ino, last: Ino, asOf?: AsOf): AsyncIterable<{ ino: Ino; name: string }>
  getChunk(id: ChunkId): Promise<ChunkRecord | undefined>
  /** The records of `ids` in one read, in their order (undefined where there is none). */
  getChunks(ids: readonly ChunkId[]): Promise<Array<ChunkRecord | undefined>>
  getPack(id: PackId): Promise<PackRecord | undefined>
  /** All chunk records, in id order. Streams. */
  chunks(): AsyncIterable<ChunkRecord>
  /**
   * Ids of the chunk records whose refcount is 0 (the dead index, keys.ts), in id order, in
   * batches of up to `batch` (default 1024). Streams. What prune removes, without reading the
   * live records.
   */
  deadChunks(opts?: { batch?: number }): AsyncIterable<ChunkId[]>
  /** All pack records. Streams. */
  packs(): AsyncIterable<PackRecord>
  /**
   * Every stored filemap version (not tombstones), in key order: what holds chunk references.
   * Streams. Used by fsck to recount references.
   */
  fileMapVersions(): AsyncIterable<{ ino: Ino; version: Version; map: FileMap }>
  /**
   * Every stored filemap row, tombstones included, in key order (ino ascending, newest version
   * first within an ino), from inode `from` on: which version of a file each pin sees, for the
   * restore-point migration pass. Streams; a row's `chunkIds` is valid until the next row is
   * requested.
   */
  fileMapRows(from?: Ino): AsyncIterable<FileMapRow>
  /** All inodes live at `asOf`. Streams, in ino order. */
  inodes(asOf?: AsOf): AsyncIterable<InodeAttrs>
  pins(workflow?: string): AsyncIterable<Pin>
  /** Reads a small named value from the "sys" space (counters, format version, config stamps). */
  getSys(name: string): Promise<Buffer | undefined>
  /** Names in the sys space that start with `prefix`, in order (small sets: orphans, markers). */
  sysNames(prefix: string): Promise<string[]>
}

/** One stored filemap row (MetaReader.fileMapRows). */
export interface FileMapRow {
  ino: Ino
  version: Version
  /** The file was deleted at this version (or its filemap dropped). */
  tombstone: boolean
  /** Chunk ids of the row, once per extent (none for inline data and tombstones). */
  chunkIds(): ChunkId[]
}

/**
 * A transaction under construction. Nothing is visible until `commit()`; then every put and
 * delete becomes visible at once, under one new version, in one LevelDB batch.
 * Versioned spaces (inode, dentry, filemap, xattr) keep old versions; deletes write tombstones.
 * Chunk, pack, pin and sys records are not versioned: puts overwrite, deletes remove.
 */
export interface Txn {
  putInode(attrs: InodeAttrs): this
  /** Tombstones the inode, its filemap and its xattrs (the file is gone from this version on). */
  deleteInode(ino: Ino): this
  putDentry(parent: Ino, name: string, ino: Ino): this
  deleteDentry(parent: Ino, name: string): this
  putFileMap(ino: Ino, map: FileMap): this
  putXattr(ino: Ino, name: string, value: Buffer): this
  deleteXattr(ino: Ino, name: string): this
  putChunk(rec: ChunkRecord): this
  /**
   * Removes a chunk record. With `ifUnreferenced`, the delete is decided at commit, under the
   * commit lock: it is skipped when the chunk's refs are above zero by then (a concurrent seal
   * that deduplicated against it committed first). This is prune's fence: a chunk that any
   * committed filemap references is never removed.
   */
  deleteChunk(id: ChunkId, opts?: { ifUnreferenced?: boolean }): this
  /**
   * Points a chunk at a new copy (migration, repack) at commit time, keeping its refcount; moves
   * its stored length from the old pack's liveBytes to the new pack's when referenced. A chunk
   * that no longer exists at commit is skipped. The new pack must exist or be put earlier in
   * this Txn. With `from`, the move is a compare-and-set: it is skipped unless the chunk is still
   * at that pack and offset at commit (another mover got there first).
   */
  moveChunk(id: ChunkId, to: ChunkLocation, opts?: { from?: { pack: PackId; offset: number } }): this
  /**
   * Adds `delta` to a chunk's refcount at commit time (read-modify-write under the commit lock,
   * so concurrent transactions compose). The chunk record must exist in the store or be put by
   * this same transaction. With `trackLive`, a chunk whose refs cross zero moves its stored length
   * into (0 -> positive: a dead chunk a dedup brings back) or out of its pack's liveBytes.
   */
  addRefs(id: ChunkId, delta: number, opts?: { trackLive?: boolean }): this
  /**
   * Puts a pack record. `liveBytes` is only taken from `rec` when the pack is new (no stored
   * record and no earlier put in this Txn); otherwise the stored value is kept, because liveBytes
   * changes only through addPackLive (so a put never clobbers a concurrent collect's update).
   */
  putPack(rec: PackRecord): this
  /** Adds `delta` to a pack's liveBytes at commit time (same rules as addRefs). */
  addPackLive(id: PackId, delta: number): this
  deletePack(id: PackId): this
  /**
   * Marks a sealed pack 'deleting' at commit, only if none of `unlessReferenced` (the chunks the
   * pack holds, from its trailer or the chunk index) has a record pointing into it by then, with
   * the other operations of this Txn applied first. Skipped otherwise, or when the pack is
   * missing or open. Read the record back after the commit to learn the outcome; a 'deleting'
   * pack is one no record points into, so its object may be removed and then its record.
   */
  retirePack(id: PackId, opts: { unlessReferenced: readonly ChunkId[] }): this
  putPin(pin: Pin): this
  deletePin(workflow: string, timeMs: number): this
  putSys(name: string, value: Buffer): this
  deleteSys(name: string): this
  /** Number of operations queued. */
  readonly size: number
  /**
   * Atomically applies everything under one new version and returns it. With `sync: true` the
   * batch is fsynced before the promise resolves (durable across power loss); without it the batch
   * is durable across a process kill (it is in the OS page cache) but not across power loss.
   * A Txn can be committed once.
   */
  commit(opts?: { sync?: boolean }): Promise<Version>
}

/** How a collection pass runs. */
export interface CollectOptions {
  /**
   * Plan only: count what the pass would drop and free, writing nothing. Chunk refcounts are
   * followed in memory across batches, so memory grows with the chunks the pass touches.
   */
  dryRun?: boolean
  /** Pins to treat as already deleted (a dry run of a prune that removes restore points). */
  ignorePins?: ReadonlyArray<{ workflow: string; timeMs: number }>
}

/**
 * A consistent point-in-time read of every stored row of the store, for checkpoints
 * (src/store/checkpoint.ts): one committed state, never part of a transaction.
 */
export interface MetaDump {
  /** Newest version committed in the dumped state. */
  readonly head: Version
  /**
   * Every row of every space, in ascending bytewise key order; keys are the raw database keys
   * (space prefix included, see keys.ts). Streams; can be iterated once.
   */
  rows(): AsyncIterable<[key: Buffer, value: Buffer]>
  /** Releases the snapshot. Idempotent. */
  close(): Promise<void>
}

/** Result of one garbage-collection pass over old versions. */
export interface CollectResult {
  versionsDropped: number
  /** Chunks whose refcount reached zero in this pass (their packs' liveBytes were reduced). */
  chunksFreed: ChunkId[]
  /** Per pack, the stored bytes of its chunks freed (dry run: that would be). */
  liveDrops: Map<PackId, number>
}

/**
 * The metadata store: one LevelDB, versioned namespace, hot cache for current records.
 * Lifecycle: `ready()` and `close()` are idempotent. One process at a time (LevelDB lock): a
 * second open fails with TierfsError LOCKED.
 */
export interface Meta extends MetaReader {
  ready(): Promise<void>
  close(): Promise<void>
  begin(): Txn
  /** Allocates a fresh inode number (never reused; persisted by the next commit). */
  allocIno(): Ino
  /**
   * Drops versions that no view can see: a version is kept while it is the current one, while
   * it was current at any instant >= `horizon` (the history window), or while a pin's version
   * sees it. Dropping a filemap version decrements its chunks' refcounts. Runs in bounded
   * memory, in batches, concurrently with normal commits.
   */
  collect(horizon: Version, opts?: CollectOptions): Promise<CollectResult>
  /**
   * Takes a consistent snapshot of the whole store for a checkpoint. Commits go on while it is
   * read and are not in it. Close it when done: the store keeps the rows it sees until then.
   */
  dump(): Promise<MetaDump>
}
