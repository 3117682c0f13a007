import type { Meta } from '../meta/meta.js'

/**
 * What an ingest run recorded about one source file it copied: enough to tell, on the next run,
 * that the file has not changed without reading it (rsync's quick check, plus ctime and the inode
 * number, which catch a rewrite that restored the mtime).
 */
export interface SourceStamp {
  size: bigint
  mtimeNs: bigint
  ctimeNs: bigint
  ino: bigint
}

export type ManifestDeps = Pick<Meta, 'getSys' | 'begin'>

const PREFIX = 'ingest/'
const RECORD_BYTES = 32

/**
 * The per-workflow manifest of an ingest workflow, kept in the metadata store's sys space (not
 * versioned, invisible to restore points and /.history) under `ingest/<workflow>/<relative path>`:
 * one 32-byte record per copied regular file, looked up one key at a time, so memory does not
 * grow with the tree. Records are written only after the file's data is sealed (see
 * `IngestRun`), so a record never vouches for bytes a crash lost.
 */
export class IngestManifest {
  private puts = new Map<string, Buffer>()
  private dels: string[] = []

  constructor(private readonly meta: ManifestDeps, private readonly workflow: string) {}

  private key(rel: string): string {
    return `${PREFIX}${this.workflow}/${rel}`
  }

  async get(rel: string): Promise<SourceStamp | undefined> {
    const v = await this.meta.getSys(this.key(rel))
    if (v === undefined || v.length !== RECORD_BYTES) return undefined
    return { size: v.readBigUInt64BE(0), mtimeNs: v.readBigInt64BE(8), ctimeNs: v.readBigInt64BE(16), ino: v.readBigUInt64BE(24) }
  }

  /** Queues a record; it is written by the next `flush`. */
  put(rel: string, s: SourceStamp): void {
    const v = Buffer.allocUnsafe(RECORD_BYTES)
    v.writeBigUInt64BE(s.size, 0)
    v.writeBigInt64BE(s.mtimeNs, 8)
    v.writeBigInt64BE(s.ctimeNs, 16)
    v.writeBigUInt64BE(s.ino, 24)
    this.puts.set(this.key(rel), v)
  }

  /**
   * Queues the removal of a record, and drops a queued `put` of it (always safe early: a missing
   * record only costs a re-read).
   */
  delete(rel: string): void {
    this.puts.delete(this.key(rel))
    this.dels.push(this.key(rel))
  }

  get pending(): number {
    return this.puts.size + this.dels.length
  }

  /** Writes the queued records in one durable commit. */
  async flush(): Promise<void> {
    if (this.pending === 0) return
    const txn = this.meta.begin()
    for (const k of this.dels) txn.deleteSys(k)
    for (const [k, v] of this.puts) txn.putSys(k, v)
    this.puts = new Map()
    this.dels = []
    await txn.commit({ sync: true })
  }
}

export function sameStamp(a: SourceStamp | undefined, b: SourceStamp): boolean {
  return a !== undefined && a.size === b.size && a.mtimeNs === b.mtimeNs && a.ctimeNs === b.ctimeNs && a.ino === b.ino
}
