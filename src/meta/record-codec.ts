/**
 * Binary value encodings of the metadata records (the key forms are in keys.ts).
 *
 * Every value starts with a format byte. 0x00 is the tombstone of every versioned space (the
 * whole value is that one byte); other values name the layout, so a later layout gets a new byte
 * and the old ones stay decodable. Integers are big-endian; u64 numbers are written as two u32
 * halves (values stay below 2^53); times are signed 64-bit nanoseconds. Fields that the key
 * already holds (ino, chunk id, pack id, pin workflow and time) are not repeated.
 *
 *   inode   0x01 type:u8 flags:u8 mode:u16 uid:u32 gid:u32 size:u64 blocks:u64 nlink:u32
 *                rdev:u32 atime:i64 mtime:i64 ctime:i64 btime:i64 tierLen:u8 tier
 *                [targetLen:u16 target]
 *                (flags bit 0: a symlink target follows)
 *   dentry  0x01 ino:u32
 *   filemap 0x01 inline bytes... | 0x02 count:u32 (offset:u64 length:u32 id:32 bytes)*count
 *   xattr   0x01 value bytes...
 *   chunk   0x01 pack:16 bytes offset:u64 length:u32 rawLength:u32 codec:u8 refs:u32
 *   pack    0x01 state:u8 size:u64 liveBytes:u64 chunkCount:u32 createdMs:u64
 *                tierLen:u8 tier keyLen:u16 key
 *   pin     0x01 version:u64 | 0x02 version:u64 root:u32 (the restore point's directory)
 *   dead    (empty: the key is the entry)
 */
import { TierfsError } from '../errors.js'
import { asChunkId, asIno, asPackId, asTierId, asVersion, type ChunkId, type Ino, type PackId, type Version } from '../ids.js'
import type { ChunkRecord, Extent, FileMap, InodeAttrs, NodeType, PackRecord, PackState, Pin } from './types.js'

const TOMBSTONE_BYTE = 0x00
const V1 = 0x01
const FILEMAP_INLINE_V1 = 0x01
const FILEMAP_EXTENTS_V1 = 0x02
const EXTENT_BYTES = 44
/** Bytes of an inode record before its tier id. */
const INODE_FIXED = 70

export const TOMBSTONE: Buffer = Buffer.from([TOMBSTONE_BYTE])

/** The value of a dead-index entry. */
export const DEAD: Buffer = Buffer.alloc(0)

export function isTombstone(value: Uint8Array): boolean {
  return value.length === 1 && value[0] === TOMBSTONE_BYTE
}

const NODE_TYPES: readonly NodeType[] = ['file', 'dir', 'symlink', 'fifo', 'socket', 'chardev', 'blockdev']
const NODE_TYPE_CODE: Record<NodeType, number> = {
  file: 1, dir: 2, symlink: 3, fifo: 4, socket: 5, chardev: 6, blockdev: 7,
}
const PACK_STATES: readonly PackState[] = ['open', 'sealed', 'deleting']
const PACK_STATE_CODE: Record<PackState, number> = { open: 1, sealed: 2, deleting: 3 }

const TWO32 = 0x1_0000_0000

function writeU64(b: Buffer, n: number, off: number, what: string): void {
  if (!Number.isSafeInteger(n) || n < 0) throw TierfsError.invalid(`${what} ${n}`)
  b.writeUInt32BE(Math.floor(n / TWO32), off)
  b.writeUInt32BE(n >>> 0, off + 4)
}

function readU64(b: Buffer, off: number): number {
  return b.readUInt32BE(off) * TWO32 + b.readUInt32BE(off + 4)
}

function unknownFormat(what: string, value: Uint8Array): TierfsError {
  return TierfsError.corrupt(`unknown ${what} record format ${value[0]}`, { record: what, format: value[0] })
}

function asBuffer(value: Uint8Array): Buffer {
  return Buffer.isBuffer(value) ? value : Buffer.from(value.buffer, value.byteOffset, value.byteLength)
}

function checkU32(n: number, what: string): void {
  if (!Number.isInteger(n) || n < 0 || n >= TWO32) throw TierfsError.invalid(`${what} ${n}`)
}

// inode

export function encodeInode(a: InodeAttrs): Buffer {
  const type = NODE_TYPE_CODE[a.type]
  if (type === undefined) throw TierfsError.invalid(`node type ${String(a.type)}`)
  if (!Number.isInteger(a.mode) || a.mode < 0 || a.mode > 0o7777) throw TierfsError.invalid(`mode ${a.mode}`)
  checkU32(a.uid, 'uid')
  checkU32(a.gid, 'gid')
  checkU32(a.nlink, 'nlink')
  checkU32(a.rdev, 'rdev')
  const tierLen = Buffer.byteLength(a.tier, 'utf8')
  if (tierLen > 255) throw TierfsError.invalid(`tier id ${a.tier}`)
  const targetLen = a.target === undefined ? -1 : Buffer.byteLength(a.target, 'utf8')
  if (targetLen > 0xffff) throw TierfsError.invalid('symlink target too long')
  const b = Buffer.allocUnsafe(INODE_FIXED + tierLen + (targetLen >= 0 ? 2 + targetLen : 0))
  b[0] = V1
  b[1] = type
  b[2] = targetLen >= 0 ? 1 : 0
  b.writeUInt16BE(a.mode, 3)
  b.writeUInt32BE(a.uid, 5)
  b.writeUInt32BE(a.gid, 9)
  writeU64(b, a.size, 13, 'size')
  writeU64(b, a.blocks, 21, 'blocks')
  b.writeUInt32BE(a.nlink, 29)
  b.writeUInt32BE(a.rdev, 33)
  b.writeBigInt64BE(a.atimeNs, 37)
  b.writeBigInt64BE(a.mtimeNs, 45)
  b.writeBigInt64BE(a.ctimeNs, 53)
  b.writeBigInt64BE(a.btimeNs, 61)
  b[69] = tierLen
  b.write(a.tier, INODE_FIXED, 'utf8')
  if (targetLen >= 0) {
    b.writeUInt16BE(targetLen, INODE_FIXED + tierLen)
    b.write(a.target!, INODE_FIXED + 2 + tierLen, 'utf8')
  }
  return b
}

export function decodeInode(ino: Ino, value: Uint8Array): InodeAttrs {
  const b = asBuffer(value)
  if (b[0] !== V1) throw unknownFormat('inode', b)
  const type = NODE_TYPES[b[1]! - 1]
  if (type === undefined) throw TierfsError.corrupt(`inode ${ino}: bad node type ${b[1]}`)
  const tierLen = b[69]!
  const attrs: InodeAttrs = {
    ino,
    type,
    mode: b.readUInt16BE(3),
    uid: b.readUInt32BE(5),
    gid: b.readUInt32BE(9),
    size: readU64(b, 13),
    blocks: readU64(b, 21),
    nlink: b.readUInt32BE(29),
    rdev: b.readUInt32BE(33),
    atimeNs: b.readBigInt64BE(37),
    mtimeNs: b.readBigInt64BE(45),
    ctimeNs: b.readBigInt64BE(53),
    btimeNs: b.readBigInt64BE(61),
    tier: asTierId(b.toString('utf8', INODE_FIXED, INODE_FIXED + tierLen)),
  }
  if ((b[2]! & 1) !== 0) {
    const at = INODE_FIXED + tierLen
    attrs.target = b.toString('utf8', at + 2, at + 2 + b.readUInt16BE(at))
  }
  return attrs
}

// dentry

export function encodeDentry(ino: Ino): Buffer {
  const b = Buffer.allocUnsafe(5)
  b[0] = V1
  b.writeUInt32BE(ino, 1)
  return b
}

export function decodeDentry(value: Uint8Array): Ino {
  const b = asBuffer(value)
  if (b[0] !== V1) throw unknownFormat('dentry', b)
  return asIno(b.readUInt32BE(1))
}

// filemap

export function encodeFileMap(map: FileMap): Buffer {
  if (map.kind === 'inline') {
    const b = Buffer.allocUnsafe(1 + map.data.length)
    b[0] = FILEMAP_INLINE_V1
    map.data.copy(b, 1)
    return b
  }
  const n = map.extents.length
  const b = Buffer.allocUnsafe(5 + n * EXTENT_BYTES)
  b[0] = FILEMAP_EXTENTS_V1
  b.writeUInt32BE(n, 1)
  let off = 5
  for (const e of map.extents) {
    writeU64(b, e.offset, off, 'extent offset')
    checkU32(e.length, 'extent length')
    b.writeUInt32BE(e.length, off + 8)
    writeChunkId(b, e.id, off + 12)
    off += EXTENT_BYTES
  }
  return b
}

export function decodeFileMap(value: Uint8Array): FileMap {
  const b = asBuffer(value)
  if (b[0] === FILEMAP_INLINE_V1) return { kind: 'inline', data: Buffer.from(b.subarray(1)) }
  if (b[0] !== FILEMAP_EXTENTS_V1) throw unknownFormat('filemap', b)
  return { kind: 'extents', extents: decodeExtents(b) }
}

function decodeExtents(b: Buffer): Extent[] {
  const n = b.readUInt32BE(1)
  const extents = new Array<Extent>(n)
  let off = 5
  for (let i = 0; i < n; i++) {
    extents[i] = {
      offset: readU64(b, off),
      length: b.readUInt32BE(off + 8),
      id: asChunkId(b.toString('hex', off + 12, off + 44)),
    }
    off += EXTENT_BYTES
  }
  return extents
}

/** Chunk ids of a filemap value, once per extent (none for inline data and tombstones). */
export function fileMapChunkIds(value: Uint8Array): ChunkId[] {
  const b = asBuffer(value)
  if (b[0] !== FILEMAP_EXTENTS_V1) {
    if (b[0] === TOMBSTONE_BYTE || b[0] === FILEMAP_INLINE_V1) return []
    throw unknownFormat('filemap', b)
  }
  const n = b.readUInt32BE(1)
  const ids = new Array<ChunkId>(n)
  for (let i = 0, off = 5 + 12; i < n; i++, off += EXTENT_BYTES) ids[i] = asChunkId(b.toString('hex', off, off + 32))
  return ids
}

const HEX64 = /^[0-9a-f]{64}$/

function writeChunkId(b: Buffer, id: ChunkId, off: number): void {
  if (!HEX64.test(id)) throw TierfsError.invalid(`chunk id ${JSON.stringify(id)}`)
  b.write(id, off, 32, 'hex')
}

// xattr

export function encodeXattr(value: Buffer): Buffer {
  const b = Buffer.allocUnsafe(1 + value.length)
  b[0] = V1
  value.copy(b, 1)
  return b
}

export function decodeXattr(value: Uint8Array): Buffer {
  const b = asBuffer(value)
  if (b[0] !== V1) throw unknownFormat('xattr', b)
  return Buffer.from(b.subarray(1))
}

// chunk

export function encodeChunk(r: ChunkRecord): Buffer {
  const b = Buffer.allocUnsafe(38)
  b[0] = V1
  if (!/^[0-9a-f]{32}$/.test(r.pack)) throw TierfsError.invalid(`pack id ${JSON.stringify(r.pack)}`)
  b.write(r.pack, 1, 16, 'hex')
  writeU64(b, r.offset, 17, 'chunk offset')
  checkU32(r.length, 'chunk length')
  checkU32(r.rawLength, 'chunk raw length')
  checkU32(r.refs, 'chunk refs')
  if (!Number.isInteger(r.codec) || r.codec < 0 || r.codec > 255) throw TierfsError.invalid(`codec ${r.codec}`)
  b.writeUInt32BE(r.length, 25)
  b.writeUInt32BE(r.rawLength, 29)
  b[33] = r.codec
  b.writeUInt32BE(r.refs, 34)
  return b
}

export function decodeChunk(id: ChunkId, value: Uint8Array): ChunkRecord {
  const b = asBuffer(value)
  if (b[0] !== V1) throw unknownFormat('chunk', b)
  return {
    id,
    pack: asPackId(b.toString('hex', 1, 17)),
    offset: readU64(b, 17),
    length: b.readUInt32BE(25),
    rawLength: b.readUInt32BE(29),
    codec: b[33]!,
    refs: b.readUInt32BE(34),
  }
}

// pack

export function encodePack(r: PackRecord): Buffer {
  const state = PACK_STATE_CODE[r.state]
  if (state === undefined) throw TierfsError.invalid(`pack state ${String(r.state)}`)
  const tierLen = Buffer.byteLength(r.tier, 'utf8')
  const keyLen = Buffer.byteLength(r.key, 'utf8')
  if (tierLen > 255) throw TierfsError.invalid(`tier id ${r.tier}`)
  if (keyLen > 0xffff) throw TierfsError.invalid('pack object key too long')
  checkU32(r.chunkCount, 'chunk count')
  const b = Buffer.allocUnsafe(33 + tierLen + keyLen)
  b[0] = V1
  b[1] = state
  writeU64(b, r.size, 2, 'pack size')
  writeU64(b, r.liveBytes, 10, 'pack live bytes')
  b.writeUInt32BE(r.chunkCount, 18)
  writeU64(b, r.createdMs, 22, 'pack creation time')
  b[30] = tierLen
  b.write(r.tier, 31, 'utf8')
  b.writeUInt16BE(keyLen, 31 + tierLen)
  b.write(r.key, 33 + tierLen, 'utf8')
  return b
}

export function decodePack(id: PackId, value: Uint8Array): PackRecord {
  const b = asBuffer(value)
  if (b[0] !== V1) throw unknownFormat('pack', b)
  const state = PACK_STATES[b[1]! - 1]
  if (state === undefined) throw TierfsError.corrupt(`pack ${id}: bad state ${b[1]}`)
  const tierLen = b[30]!
  const keyLen = b.readUInt16BE(31 + tierLen)
  return {
    id,
    tier: asTierId(b.toString('utf8', 31, 31 + tierLen)),
    key: b.toString('utf8', 33 + tierLen, 33 + tierLen + keyLen),
    state,
    size: readU64(b, 2),
    liveBytes: readU64(b, 10),
    chunkCount: b.readUInt32BE(18),
    createdMs: readU64(b, 22),
  }
}

// pin

const PIN_ROOT_V2 = 0x02

/** Pins with a root directory use layout 0x02 (version, root ino); 0x01 (root = /) stays readable. */
export function encodePinValue(version: Version, root?: Ino): Buffer {
  if (version < 0n) throw TierfsError.invalid(`pin version ${version}`)
  if (root === undefined) {
    const b = Buffer.allocUnsafe(9)
    b[0] = V1
    b.writeBigUInt64BE(version, 1)
    return b
  }
  checkU32(root, 'pin root')
  const b = Buffer.allocUnsafe(13)
  b[0] = PIN_ROOT_V2
  b.writeBigUInt64BE(version, 1)
  b.writeUInt32BE(root, 9)
  return b
}

export function decodePin(workflow: string, timeMs: number, value: Uint8Array): Pin {
  const b = asBuffer(value)
  if (b[0] === V1) return { workflow, timeMs, version: asVersion(b.readBigUInt64BE(1)) }
  if (b[0] === PIN_ROOT_V2) return { workflow, timeMs, version: asVersion(b.readBigUInt64BE(1)), root: asIno(b.readUInt32BE(9)) }
  throw unknownFormat('pin', b)
}
