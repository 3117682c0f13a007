import type { ChunkId, Ino, PackId, TierId, Version } from '../ids.js'

/** Node type, as the high bits of st_mode (S_IFREG, S_IFDIR, S_IFLNK, ...). */
export type NodeType = 'file' | 'dir' | 'symlink' | 'fifo' | 'socket' | 'chardev' | 'blockdev'

/**
 * One version of an inode's attributes. Times are nanoseconds since the epoch.
 * `mode` holds permission bits only (07777); the type is `type`.
 */
export interface InodeAttrs {
  ino: Ino
  type: NodeType
  mode: number
  uid: number
  gid: number
  /** Logical size in bytes (for symlinks: length of the target). */
  size: number
  /** Allocated 512-byte blocks as `du` should see them (holes and all-zero chunks excluded). */
  blocks: number
  nlink: number
  rdev: number
  atimeNs: bigint
  mtimeNs: bigint
  ctimeNs: bigint
  btimeNs: bigint
  /** Symlink target (symlinks only). */
  target?: string
  /** Tier that holds this file's data ("block" until the tier issue moves it). */
  tier: TierId
}

/** One contiguous run of a file: bytes [offset, offset+length) are chunk `id`. */
export interface Extent {
  offset: number
  length: number
  id: ChunkId
}

/**
 * File contents as of one version. Small files keep their bytes inline; larger ones list
 * extents in offset order that tile [0, size) with no gaps (holes are stored as chunks of
 * zeros, which dedup to one chunk).
 */
export type FileMap =
  | { kind: 'inline'; data: Buffer }
  | { kind: 'extents'; extents: Extent[] }

/** Where a chunk's record is, and what the record holds: all a read of it needs. */
export type ChunkPlace = Pick<ChunkRecord, 'id' | 'pack' | 'offset' | 'length' | 'rawLength' | 'codec'>

/** Where a unique chunk lives. Not versioned. */
export interface ChunkRecord {
  id: ChunkId
  pack: PackId
  /** Offset of the stored bytes inside the pack. */
  offset: number
  /** Stored (possibly compressed) length. */
  length: number
  rawLength: number
  codec: number
  /** Number of filemap records (all versions) that reference this chunk, once per extent. */
  refs: number
}

export type PackState = 'open' | 'sealed' | 'deleting'

/** Where a chunk's stored bytes are. */
export type ChunkLocation = Pick<ChunkRecord, 'pack' | 'offset' | 'length' | 'codec'>

/** A pack file on some tier. Not versioned. */
export interface PackRecord {
  id: PackId
  tier: TierId
  /** Object key within the tier. */
  key: string
  state: PackState
  size: number
  /** Stored bytes of chunks whose refs > 0. */
  liveBytes: number
  chunkCount: number
  createdMs: number
}

/** A directory entry as listed by readdir. */
export interface DirEntry {
  name: string
  ino: Ino
}

/** A restore point: a name pinned to a committed version. */
export interface Pin {
  workflow: string
  /** Restore point time, ms since the epoch (its directory name is the ISO form). */
  timeMs: number
  version: Version
  /** Directory whose tree the restore point shows (the workflow's source); the root if absent. */
  root?: Ino
}
