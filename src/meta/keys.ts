/**
 * Key schema of the metadata LevelDB. Every key form lives here, next to its builder.
 *
 * The database has nine sublevels; a sublevel prefixes its keys with `!<name>!` (abstract-level),
 * so the raw LevelDB key is `!<name>!` + the key below. All keys and values are raw bytes;
 * integers are big-endian so byte order is numeric order.
 *
 *   space    key                                          value (record-codec.ts)        versioned
 *   inode    ino:u32 ~version:u64                          inode attrs | tombstone         yes
 *   dentry   parent:u32 name:utf8 0x00 ~version:u64        ino | tombstone                 yes
 *   filemap  ino:u32 ~version:u64                          inline bytes | extents | tomb.  yes
 *   xattr    ino:u32 name:utf8 0x00 ~version:u64           value | tombstone               yes
 *   chunk    id:32 bytes (SHA-256)                          chunk record                    no
 *   pack     id:16 bytes                                    pack record (tier inside)       no
 *   dead     id:32 bytes (SHA-256)                          empty                           no
 *   pin      workflow:utf8 0x00 timeMs:u64                  pin (version)                   no
 *   sys      name:utf8                                      raw bytes                       no
 *
 * `~version` is the bitwise complement of the version as 8 bytes, so for one logical key (the key
 * without its last 8 bytes) the newest version sorts first: reading "now" is one seek to the
 * logical key, reading "as of V" is one seek to `<logical key><~V>`, taking the first row that
 * still has the logical key as prefix.
 *
 * Names end with a 0x00 terminator (names cannot contain NUL), so a name that is a prefix of
 * another cannot collide with it ("a" + 0x00 sorts before "ab" + 0x00), and entries of one
 * directory sort in byte order of their UTF-8 names. UTF-8 never contains 0xFF, which bounds
 * a directory's range.
 *
 * `dead` indexes the chunk records whose refcount is 0 (garbage a prune removes): a commit that
 * takes a record to refs 0 puts its id there in the same batch, one that brings it back or
 * deletes the record removes it. Prune reads this index instead of the whole chunk index (format
 * 2; a format-1 store gets it built once when opened).
 *
 * The pack key is the pack id alone (DESIGN.md sketches <tier><packId>): packs are looked up by
 * id, and the tier is a field of the record.
 *
 * Internal sys names start with "meta." (SYS_*): the format version (u8), the last committed
 * version (u64) and the highest allocated inode number (u32).
 */
import { TierfsError } from '../errors.js'
import { asChunkId, asIno, asPackId, asVersion, type ChunkId, type Ino, type PackId, type Version } from '../ids.js'

export const SPACE = {
  inode: 'inode',
  dentry: 'dentry',
  filemap: 'filemap',
  xattr: 'xattr',
  chunk: 'chunk',
  pack: 'pack',
  dead: 'dead',
  pin: 'pin',
  sys: 'sys',
} as const

export type VersionedSpace = 'inode' | 'dentry' | 'filemap' | 'xattr'
export const VERSIONED_SPACES: readonly VersionedSpace[] = ['inode', 'dentry', 'filemap', 'xattr']

export const SYS_FORMAT = 'meta.format'
export const SYS_VERSION = 'meta.version'
export const SYS_INO = 'meta.ino'
export const SYS_RESERVED_PREFIX = 'meta.'

/** Highest inode number: the FUSE stat carries 32 bits. */
export const MAX_INO = 0xffff_ffff

const U64_MASK = 0xffff_ffff_ffff_ffffn
const VERSION_BYTES = 8
const FF8 = Buffer.alloc(VERSION_BYTES, 0xff)

/** `~version` as 8 bytes. */
export function versionSuffix(v: bigint): Buffer {
  const b = Buffer.allocUnsafe(VERSION_BYTES)
  b.writeBigUInt64BE(U64_MASK ^ v)
  return b
}

/** The version stored in the last 8 bytes of a versioned key. */
export function keyVersion(key: Uint8Array): Version {
  const b = Buffer.from(key.buffer, key.byteOffset, key.byteLength)
  return asVersion(U64_MASK ^ b.readBigUInt64BE(b.length - VERSION_BYTES))
}

/** A versioned key without its version suffix. */
export function logicalKey(key: Buffer): Buffer {
  return key.subarray(0, key.length - VERSION_BYTES)
}

export function withVersion(logical: Buffer, v: bigint): Buffer {
  const b = Buffer.allocUnsafe(logical.length + VERSION_BYTES)
  logical.copy(b, 0)
  b.writeBigUInt64BE(U64_MASK ^ v, logical.length)
  return b
}

/** Last key a logical key's versions can have (version 0). */
export function lastVersionKey(logical: Buffer): Buffer {
  return Buffer.concat([logical, FF8])
}

/** Smallest key greater than every key that starts with `prefix`; undefined when none exists. */
export function prefixEnd(prefix: Buffer): Buffer | undefined {
  const b = Buffer.from(prefix)
  for (let i = b.length - 1; i >= 0; i--) {
    if (b[i] !== 0xff) {
      b[i] = b[i]! + 1
      return b.subarray(0, i + 1)
    }
  }
  return undefined
}

export function checkIno(ino: number): void {
  if (!Number.isInteger(ino) || ino < 1 || ino > MAX_INO) throw TierfsError.invalid(`inode number ${ino}`)
}

function checkName(name: string, what: string): void {
  if (name.includes('\0')) throw TierfsError.invalid(`${what} contains NUL`)
}

function u32Key(n: number): Buffer {
  const b = Buffer.allocUnsafe(4)
  b.writeUInt32BE(n)
  return b
}

function namedKey(ino: number, name: string): Buffer {
  const len = Buffer.byteLength(name, 'utf8')
  const b = Buffer.allocUnsafe(4 + len + 1)
  b.writeUInt32BE(ino)
  b.write(name, 4, 'utf8')
  b[4 + len] = 0
  return b
}

/** Range of all named keys under one inode, optionally starting strictly after `after`. */
function namedRange(ino: number, after: string | undefined): { gte: Buffer; lt: Buffer } {
  const lt = Buffer.from([0, 0, 0, 0, 0xff])
  lt.writeUInt32BE(ino)
  if (after === undefined) return { gte: u32Key(ino), lt }
  const gte = namedKey(ino, after)
  gte[gte.length - 1] = 1
  return { gte, lt }
}

function nameOf(logical: Buffer): string {
  return logical.toString('utf8', 4, logical.length - 1)
}

// inode and filemap: logical key = ino:u32

export function inodeKey(ino: Ino): Buffer {
  checkIno(ino)
  return u32Key(ino)
}

export const filemapKey = inodeKey

export function inoOfKey(key: Buffer): Ino {
  return asIno(key.readUInt32BE(0))
}

// dentry: logical key = parent:u32 name 0x00

export function dentryKey(parent: Ino, name: string): Buffer {
  checkIno(parent)
  checkName(name, 'file name')
  return namedKey(parent, name)
}

export function dentryRange(parent: Ino, after?: string): { gte: Buffer; lt: Buffer } {
  checkIno(parent)
  if (after !== undefined) checkName(after, 'file name')
  return namedRange(parent, after)
}

export const dentryName = nameOf

// xattr: logical key = ino:u32 name 0x00

export function xattrKey(ino: Ino, name: string): Buffer {
  checkIno(ino)
  checkName(name, 'xattr name')
  return namedKey(ino, name)
}

/** Range of the xattrs of inode `ino`, or of every inode in [ino, last]. */
export function xattrRange(ino: Ino, last: Ino = ino): { gte: Buffer; lt: Buffer } {
  checkIno(ino)
  checkIno(last)
  return { gte: namedRange(ino, undefined).gte, lt: namedRange(last, undefined).lt }
}

export const xattrName = nameOf

// chunk: 32-byte id; pack: 16-byte id

const CHUNK_ID = /^[0-9a-f]{64}$/
const PACK_ID = /^[0-9a-f]{32}$/

export function chunkKey(id: ChunkId): Buffer {
  if (!CHUNK_ID.test(id)) throw TierfsError.invalid(`chunk id ${JSON.stringify(id)}`)
  return Buffer.from(id, 'hex')
}

export function chunkIdOf(key: Buffer): ChunkId {
  return asChunkId(key.toString('hex'))
}

export function packKey(id: PackId): Buffer {
  if (!PACK_ID.test(id)) throw TierfsError.invalid(`pack id ${JSON.stringify(id)}`)
  return Buffer.from(id, 'hex')
}

export function packIdOf(key: Buffer): PackId {
  return asPackId(key.toString('hex'))
}

// pin: workflow 0x00 timeMs:u64

export function pinKey(workflow: string, timeMs: number): Buffer {
  checkName(workflow, 'workflow name')
  if (!Number.isSafeInteger(timeMs) || timeMs < 0) throw TierfsError.invalid(`pin time ${timeMs}`)
  const len = Buffer.byteLength(workflow, 'utf8')
  const b = Buffer.allocUnsafe(len + 9)
  b.write(workflow, 0, 'utf8')
  b[len] = 0
  b.writeUInt32BE(Math.floor(timeMs / 0x1_0000_0000), len + 1)
  b.writeUInt32BE(timeMs >>> 0, len + 5)
  return b
}

/** Range of one workflow's pins, or of all pins. */
export function pinRange(workflow?: string): { gte?: Buffer; lt?: Buffer } {
  if (workflow === undefined) return {}
  checkName(workflow, 'workflow name')
  const gte = Buffer.concat([Buffer.from(workflow, 'utf8'), Buffer.from([0])])
  const lt = Buffer.from(gte)
  lt[lt.length - 1] = 1
  return { gte, lt }
}

export function parsePinKey(key: Buffer): { workflow: string; timeMs: number } {
  const end = key.length - 9
  return {
    workflow: key.toString('utf8', 0, end),
    timeMs: key.readUInt32BE(end + 1) * 0x1_0000_0000 + key.readUInt32BE(end + 5),
  }
}

export function sysKey(name: string): Buffer {
  return Buffer.from(name, 'utf8')
}
