/**
 * Branded identifiers: numbers and strings that must not cross wires.
 * Construct them only through these helpers so a stray number never becomes an inode.
 */
declare const brand: unique symbol
type Brand<T, B extends string> = T & { readonly [brand]: B }

/** Inode number. 1 is the root directory. Fits in 32 bits for the FUSE stat array. */
export type Ino = Brand<number, 'Ino'>
/** SHA-256 of a chunk's uncompressed bytes, 64 lowercase hex characters. */
export type ChunkId = Brand<string, 'ChunkId'>
/** Pack identifier: 32 lowercase hex characters, random, unique across tiers. */
export type PackId = Brand<string, 'PackId'>
/** Name of a configured tier instance ("block", "object", "cold", or a target name). */
export type TierId = Brand<string, 'TierId'>
/** A committed metadata version: hybrid-clock value (ms << 16 | counter), see src/meta/clock.ts. */
export type Version = Brand<bigint, 'Version'>

export const ROOT_INO = 1 as Ino
export const asIno = (n: number): Ino => n as Ino
export const asChunkId = (s: string): ChunkId => s as ChunkId
export const asPackId = (s: string): PackId => s as PackId
export const asTierId = (s: string): TierId => s as TierId
export const asVersion = (v: bigint): Version => v as Version
