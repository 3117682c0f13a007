import { TierfsError } from '../errors.js'
import type { ChunkId, Ino, PackId, Version } from '../ids.js'
import {
  checkIno, chunkKey, dentryKey, filemapKey, inodeKey, packKey, pinKey, SYS_RESERVED_PREFIX, sysKey, xattrKey,
  type VersionedSpace,
} from './keys.js'
import {
  encodeChunk, encodeDentry, encodeFileMap, encodeInode, encodePack, encodePinValue, encodeXattr, TOMBSTONE,
} from './record-codec.js'
import type { Txn } from './meta.js'
import type { ChunkLocation, ChunkRecord, FileMap, InodeAttrs, PackRecord, Pin } from './types.js'

/** Key of the hot cache: an inode number, or `parent/name` for a directory entry. */
export type CacheKey = number | string
/** Current inode attrs, the ino a dentry names, or null for "absent". */
export type CacheValue = InodeAttrs | Ino | null

export function dentryCacheKey(parent: Ino, name: string): string {
  return `${parent}/${name}`
}

/** One queued operation; LevelMeta turns the list into one batch at commit. */
export type TxnOp =
  | { t: 'version'; space: VersionedSpace; key: Buffer; value: Buffer; cacheKey?: CacheKey; cacheValue?: CacheValue }
  | { t: 'dropXattrs'; ino: Ino }
  | { t: 'chunkPut'; rec: ChunkRecord }
  | { t: 'chunkDel'; id: ChunkId; ifUnreferenced?: boolean }
  | { t: 'chunkAdd'; id: ChunkId; delta: number; trackLive?: boolean }
  | { t: 'chunkMove'; id: ChunkId; to: ChunkLocation; from?: { pack: PackId; offset: number } }
  | { t: 'packPut'; rec: PackRecord }
  | { t: 'packDel'; id: PackId }
  | { t: 'packRetire'; id: PackId; unlessReferenced: readonly ChunkId[] }
  | { t: 'packAdd'; id: PackId; delta: number }
  | { t: 'plain'; space: 'pin' | 'sys'; key: Buffer; value: Buffer | undefined }

export type CommitFn = (ops: readonly TxnOp[], sync: boolean) => Promise<Version>

/** Maps a malformed argument (RangeError, TypeError from Buffer writes) to INVALID. */
function guard<T>(what: string, fn: () => T): T {
  try {
    return fn()
  } catch (err) {
    if (err instanceof TierfsError) throw err
    throw new TierfsError('INVALID', `${what}: ${(err as Error).message}`, { cause: err })
  }
}

function checkDelta(delta: number): void {
  if (!Number.isSafeInteger(delta)) throw TierfsError.invalid(`delta ${delta}`)
}

/**
 * Queues operations and validates them (keys and values are encoded when queued, so later
 * changes to the caller's objects do not leak in); `commit` hands the list to the store.
 */
export class LevelTxn implements Txn {
  private readonly ops: TxnOp[] = []
  private committed = false

  constructor(private readonly commitFn: CommitFn) {}

  get size(): number {
    return this.ops.length
  }

  private push(op: TxnOp): this {
    if (this.committed) throw TierfsError.internal('transaction already committed')
    this.ops.push(op)
    return this
  }

  putInode(attrs: InodeAttrs): this {
    const key = inodeKey(attrs.ino)
    const value = guard('inode attrs', () => encodeInode(attrs))
    return this.push({ t: 'version', space: 'inode', key, value, cacheKey: attrs.ino, cacheValue: { ...attrs } })
  }

  deleteInode(ino: Ino): this {
    const key = inodeKey(ino)
    this.push({ t: 'version', space: 'inode', key, value: TOMBSTONE, cacheKey: ino, cacheValue: null })
    this.push({ t: 'version', space: 'filemap', key: filemapKey(ino), value: TOMBSTONE })
    return this.push({ t: 'dropXattrs', ino })
  }

  putDentry(parent: Ino, name: string, ino: Ino): this {
    checkIno(ino)
    const key = dentryKey(parent, name)
    const cacheKey = dentryCacheKey(parent, name)
    return this.push({ t: 'version', space: 'dentry', key, value: encodeDentry(ino), cacheKey, cacheValue: ino })
  }

  deleteDentry(parent: Ino, name: string): this {
    const key = dentryKey(parent, name)
    const cacheKey = dentryCacheKey(parent, name)
    return this.push({ t: 'version', space: 'dentry', key, value: TOMBSTONE, cacheKey, cacheValue: null })
  }

  putFileMap(ino: Ino, map: FileMap): this {
    const key = filemapKey(ino)
    return this.push({ t: 'version', space: 'filemap', key, value: guard('file map', () => encodeFileMap(map)) })
  }

  putXattr(ino: Ino, name: string, value: Buffer): this {
    return this.push({ t: 'version', space: 'xattr', key: xattrKey(ino, name), value: encodeXattr(value) })
  }

  deleteXattr(ino: Ino, name: string): this {
    return this.push({ t: 'version', space: 'xattr', key: xattrKey(ino, name), value: TOMBSTONE })
  }

  putChunk(rec: ChunkRecord): this {
    chunkKey(rec.id)
    guard('chunk record', () => encodeChunk(rec))
    return this.push({ t: 'chunkPut', rec: { ...rec } })
  }

  deleteChunk(id: ChunkId, opts: { ifUnreferenced?: boolean } = {}): this {
    chunkKey(id)
    return this.push(opts.ifUnreferenced === true ? { t: 'chunkDel', id, ifUnreferenced: true } : { t: 'chunkDel', id })
  }

  moveChunk(id: ChunkId, to: ChunkLocation, opts: { from?: { pack: PackId; offset: number } } = {}): this {
    chunkKey(id)
    packKey(to.pack)
    const from = opts.from
    if (from !== undefined) packKey(from.pack)
    return this.push(from === undefined ? { t: 'chunkMove', id, to: { ...to } } : { t: 'chunkMove', id, to: { ...to }, from: { pack: from.pack, offset: from.offset } })
  }

  addRefs(id: ChunkId, delta: number, opts: { trackLive?: boolean } = {}): this {
    chunkKey(id)
    checkDelta(delta)
    return this.push(opts.trackLive === true ? { t: 'chunkAdd', id, delta, trackLive: true } : { t: 'chunkAdd', id, delta })
  }

  putPack(rec: PackRecord): this {
    packKey(rec.id)
    guard('pack record', () => encodePack(rec))
    return this.push({ t: 'packPut', rec: { ...rec } })
  }

  addPackLive(id: PackId, delta: number): this {
    packKey(id)
    checkDelta(delta)
    return this.push({ t: 'packAdd', id, delta })
  }

  retirePack(id: PackId, opts: { unlessReferenced: readonly ChunkId[] }): this {
    packKey(id)
    for (const c of opts.unlessReferenced) chunkKey(c)
    return this.push({ t: 'packRetire', id, unlessReferenced: [...opts.unlessReferenced] })
  }

  deletePack(id: PackId): this {
    packKey(id)
    return this.push({ t: 'packDel', id })
  }

  putPin(pin: Pin): this {
    const key = pinKey(pin.workflow, pin.timeMs)
    return this.push({ t: 'plain', space: 'pin', key, value: guard('pin', () => encodePinValue(pin.version, pin.root)) })
  }

  deletePin(workflow: string, timeMs: number): this {
    return this.push({ t: 'plain', space: 'pin', key: pinKey(workflow, timeMs), value: undefined })
  }

  putSys(name: string, value: Buffer): this {
    if (name.startsWith(SYS_RESERVED_PREFIX)) throw TierfsError.invalid(`sys name ${name} is reserved`)
    return this.push({ t: 'plain', space: 'sys', key: sysKey(name), value: Buffer.from(value) })
  }

  deleteSys(name: string): this {
    if (name.startsWith(SYS_RESERVED_PREFIX)) throw TierfsError.invalid(`sys name ${name} is reserved`)
    return this.push({ t: 'plain', space: 'sys', key: sysKey(name), value: undefined })
  }

  commit(opts: { sync?: boolean } = {}): Promise<Version> {
    if (this.committed) return Promise.reject(TierfsError.internal('transaction already committed'))
    this.committed = true
    return this.commitFn(this.ops, opts.sync === true)
  }
}
