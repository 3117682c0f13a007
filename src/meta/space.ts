import type { AbstractSublevel } from 'abstract-level'
import type { Level } from 'level'

/** The root database: binary keys and values. */
export type RootDb = Level<Buffer, Buffer>

/** One sublevel ("space") of the root database, binary keys and values. */
export type Space = AbstractSublevel<RootDb, string | Buffer | Uint8Array, Buffer, Buffer>

/** All spaces of the store, by name (keys.ts SPACE). */
export type Spaces = Record<'inode' | 'dentry' | 'filemap' | 'xattr' | 'chunk' | 'pack' | 'dead' | 'pin' | 'sys', Space>

/** A batch operation on the root database, addressed to a space. */
export type SpaceOp =
  | { type: 'put'; sublevel: Space; key: Buffer; value: Buffer }
  | { type: 'del'; sublevel: Space; key: Buffer }

/**
 * Iterator options, including classic-level's own (sublevels pass them through): `fillCache`
 * (iterators default to false; point reads want LevelDB's block cache) and `highWaterMarkBytes`
 * (bytes one nextv() may buffer).
 */
export interface IteratorOptions {
  gte?: Buffer
  lt?: Buffer
  lte?: Buffer
  limit?: number
  fillCache?: boolean
  highWaterMarkBytes?: number
}
