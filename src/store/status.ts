import type { MetaReader } from '../meta/meta.js'

/**
 * The figures `tierfs status --json` prints (keys documented in the README; other tools read
 * them, so keys are only ever added).
 */
export interface StoreStatus {
  /** Regular files, directories and symlinks in the current namespace. */
  files: number
  dirs: number
  symlinks: number
  /** Sum of the current files' sizes. */
  logicalBytes: number
  /** Bytes of pack files on all tiers (what the store occupies, before staging). */
  storedBytes: number
  /** Stored bytes of chunks that something references. */
  liveBytes: number
  /** Uncompressed bytes of the unique referenced chunks. */
  uniqueBytes: number
  /** logicalBytes / uniqueBytes (1 when nothing is stored). */
  dedupRatio: number
  /** Unique chunks in the index (referenced ones). */
  chunks: number
  packs: number
  /** Bytes and files in staging (written, not sealed yet). */
  stagingBytes: number
  stagingFiles: number
  tiers: Record<string, { bytes: number; objects: number }>
}

/** Computes status by streaming over the metadata (memory does not grow with the store). */
export async function computeStatus(meta: MetaReader, staging: { bytes: number; files: number }): Promise<StoreStatus> {
  const s: StoreStatus = {
    files: 0, dirs: 0, symlinks: 0, logicalBytes: 0, storedBytes: 0, liveBytes: 0, uniqueBytes: 0, dedupRatio: 1,
    chunks: 0, packs: 0, stagingBytes: staging.bytes, stagingFiles: staging.files, tiers: {},
  }
  for await (const a of meta.inodes()) {
    if (a.type === 'file') { s.files++; s.logicalBytes += a.size }
    else if (a.type === 'dir') s.dirs++
    else if (a.type === 'symlink') s.symlinks++
  }
  for await (const c of meta.chunks()) {
    if (c.refs <= 0) continue
    s.chunks++
    s.liveBytes += c.length
    s.uniqueBytes += c.rawLength
  }
  for await (const p of meta.packs()) {
    s.packs++
    s.storedBytes += p.size
    const t = (s.tiers[p.tier] ??= { bytes: 0, objects: 0 })
    t.bytes += p.size
    t.objects++
  }
  s.dedupRatio = s.uniqueBytes > 0 ? Math.round((s.logicalBytes / s.uniqueBytes) * 1000) / 1000 : 1
  return s
}
