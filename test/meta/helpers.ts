import { createHash } from 'node:crypto'
import { asChunkId, asIno, asPackId, asTierId, type ChunkId, type Ino, type PackId } from '../../src/ids.js'
import { LevelMeta, type LevelMetaOptions } from '../../src/meta/level-meta.js'
import type { ChunkRecord, InodeAttrs, PackRecord } from '../../src/meta/types.js'

/** Shared by the meta tests (no tests of its own). */

export function attrs(ino: number, over: Partial<InodeAttrs> = {}): InodeAttrs {
  return {
    ino: asIno(ino), type: 'file', mode: 0o644, uid: 1000, gid: 1000, size: 0, blocks: 0, nlink: 1, rdev: 0,
    atimeNs: 1_700_000_000_000_000_000n, mtimeNs: 1_700_000_000_000_000_001n,
    ctimeNs: 1_700_000_000_000_000_002n, btimeNs: 1_700_000_000_000_000_003n,
    tier: asTierId('block'), ...over,
  }
}

export function chunkId(seed: string): ChunkId {
  return asChunkId(createHash('sha256').update(seed).digest('hex'))
}

export function packId(seed: string): PackId {
  return asPackId(createHash('sha256').update(seed).digest('hex').slice(0, 32))
}

export function chunkRec(seed: string, pack: PackId, over: Partial<ChunkRecord> = {}): ChunkRecord {
  return { id: chunkId(seed), pack, offset: 0, length: 1000, rawLength: 2000, codec: 1, refs: 0, ...over }
}

export function packRec(id: PackId, over: Partial<PackRecord> = {}): PackRecord {
  return {
    id, tier: asTierId('block'), key: `packs/${id}`, state: 'sealed', size: 32 << 20, liveBytes: 0,
    chunkCount: 0, createdMs: 1_700_000_000_000, ...over,
  }
}

/** A wall clock the test moves by hand. */
export class ManualClock {
  constructor(public ms = 1_700_000_000_000) {}
  readonly now = (): number => this.ms
}

export async function openMeta(path: string, opts: Partial<LevelMetaOptions> = {}): Promise<LevelMeta> {
  const meta = new LevelMeta({ path, ...opts })
  await meta.ready()
  return meta
}

export async function collectAll<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = []
  for await (const x of it) out.push(x)
  return out
}

export const ino = asIno
export type { Ino }
