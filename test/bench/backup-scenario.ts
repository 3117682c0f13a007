/**
 * The data of the backup benchmark (test/bench/backup.bench.ts): an HBase table exported every
 * night into a plain directory, and what changes between nights. Also the tree manifest the
 * restores are checked against (sha256 of every file, modes, mtimes, symlink targets).
 *
 * Layout of the source (night 1):
 *   data/default/usertable/r1..r4/cf/f1..f10   40 region (store) files, sizes varying 1:24, partly
 *                                              compressible like real HFiles (`genRegion`: of every
 *                                              three 64 KiB blocks one is random, two are text-like
 *                                              rows; zstd -1 shrinks it about 2.4x, lz4 about 2.1x)
 *   data/default/usertable/.tableinfo, r?/.regioninfo
 *   wal/rs-0..7, oldWALs/b0..7, meta/region-0..3  the small files (100 B .. 40 KiB of random bytes,
 *                                              some 0640/0600)
 *   current -> data/default/usertable          a symlink
 * Every later night adds ~10% new files (10% of night 1's file count, as new small files spread
 * over the small-file directories) and rewrites a few small files, and:
 * Night 2 (compaction): r1/cf/f3, f4, f5 are deleted and a new r1/cf/f11 (the next file number of
 * the region; the issue calls it "f6") is written as their concatenation; r4/cf/f2 expires (TTL)
 * and is deleted; 10 small files are rewritten.
 * Night 3 (flush): r2/cf/f11 is written (about 1% of the table); 5 small files rewritten.
 * Night 4 (flush): r3/cf/f11 is written (about 1% of the table); 5 small files rewritten.
 */
import { createCipheriv, createHash } from 'node:crypto'
import { createReadStream } from 'node:fs'
import { chmod, lstat, mkdir, open, readdir, readlink, rename, rm, symlink, writeFile } from 'node:fs/promises'
import { join } from 'node:path'

const MiB = 1024 * 1024

export interface Sizes {
  /** Bytes of the 40 region files together (night 1). */
  tableBytes: number
  smallFiles: number
}

export const FULL: Sizes = { tableBytes: 2048 * MiB, smallFiles: 2000 }
export const QUICK: Sizes = { tableBytes: 256 * MiB, smallFiles: 300 }

export const REGIONS = ['r1', 'r2', 'r3', 'r4'] as const
/** Relative weights of f1..f10 in a region (rotated by one per region so regions differ). */
const WEIGHTS = [12, 3, 5, 4, 6, 1, 2, 9, 0.5, 7]
const SMALL_DIRS = [
  ...Array.from({ length: 8 }, (_, k) => `wal/rs-${k}`),
  ...Array.from({ length: 8 }, (_, k) => `oldWALs/b${k}`),
  ...Array.from({ length: 4 }, (_, k) => `meta/region-${k}`),
]
const SMALL_SIZES = [120, 700, 2500, 6000, 9000, 15000, 40000]

const TABLE = 'data/default/usertable'

export function regionFile(region: string, n: number): string {
  return `${TABLE}/${region}/cf/f${n}`
}

/** Sizes of the 40 region files, in bytes (not multiples of a MiB: tails are exercised). */
export function regionFileSizes(z: Sizes): Map<string, number> {
  const weightSum = WEIGHTS.reduce((a, b) => a + b, 0) * REGIONS.length
  const unit = z.tableBytes / weightSum
  const out = new Map<string, number>()
  REGIONS.forEach((r, ri) => {
    for (let i = 0; i < WEIGHTS.length; i++) {
      const w = WEIGHTS[(i + ri) % WEIGHTS.length] as number
      out.set(regionFile(r, i + 1), Math.max(4096, Math.round(w * unit) - ((ri * 10 + i) * 4099) % 65536))
    }
  })
  return out
}

/** AES-128-CTR keystream of `seed`, as test/bench/workload.ts `gen` writes it. */
function keystream(seed: string): (n: number) => Buffer {
  const key = createHash('sha256').update(seed).digest().subarray(0, 16)
  const c = createCipheriv('aes-128-ctr', key, Buffer.alloc(16))
  const zeros = Buffer.alloc(MiB)
  return (n) => c.update(n === MiB ? zeros : zeros.subarray(0, n))
}

/** HFile-like blocks: of every three, one is random and two are text-like rows. */
const BLOCK = 64 * 1024

/**
 * Fills `out` with text-like rows (an HBase KeyValue dump: row key, column, timestamp, type and
 * an 8-hex-digit value from `rnd`), numbered from `row`; returns the next row number.
 */
function textRows(prefix: string, row: number, rnd: (n: number) => Buffer, out: Buffer): number {
  const hex = rnd(Math.max(16, Math.ceil(out.length / 8))).toString('hex')
  let off = 0
  for (let h = 0; off < out.length; row++, h = (h + 8) % (hex.length - 8)) {
    off += out.write(`${prefix}row${String(row).padStart(10, '0')}\tcf:q${row % 16}\tts=1795254651${String(row % 1000).padStart(3, '0')}\tPut\tv=${hex.slice(h, h + 8)}\n`, off, 'latin1')
  }
  return row
}

/**
 * Writes `bytes` of region-file data for `seed` in 1 MiB writes: 64 KiB blocks, one in three random
 * (the workload.ts `gen` keystream), two in three text-like rows (`textRows`), so the data
 * compresses about 2.4x with zstd -1 (HBase files compress 2-4x), and differs from every other seed's.
 */
export async function genRegion(file: string, bytes: number, seed: string): Promise<void> {
  const next = keystream(seed)
  const prefix = `${seed},`
  const buf = Buffer.alloc(MiB)
  let row = 0
  let block = 0
  const fh = await open(file, 'w')
  try {
    for (let off = 0; off < bytes; off += MiB) {
      const n = Math.min(MiB, bytes - off)
      for (let b = 0; b < n; b += BLOCK, block++) {
        const out = buf.subarray(b, Math.min(n, b + BLOCK))
        if (block % 3 === 0) next(out.length).copy(out)
        else row = textRows(prefix, row, next, out)
      }
      let done = 0
      while (done < n) done += (await fh.write(buf, done, n - done, off + done)).bytesWritten
    }
  } finally {
    await fh.close()
  }
}

function smallSize(i: number, salt: string): number {
  const h = createHash('sha256').update(`${salt}-${i}`).digest()
  return (SMALL_SIZES[(h[0] as number) % SMALL_SIZES.length] as number) + ((h[1] as number) * 7) % 997
}

async function writeSmall(src: string, rel: string, seed: string, size: number, mode: number): Promise<void> {
  await writeFile(join(src, rel), keystream(seed)(size), { mode })
  await chmod(join(src, rel), mode)
}

function smallRel(i: number): string {
  return `${SMALL_DIRS[i % SMALL_DIRS.length] as string}/${i % 3 === 0 ? 'edits' : 'log'}.${String(i).padStart(5, '0')}`
}

export interface NightInfo {
  /** What changed, for the report. */
  text: string
  /** Bytes of file data written into the source for this night. */
  bytesWritten: number
}

/** Night 1: the whole table. */
export async function makeNight1(src: string, z: Sizes): Promise<NightInfo> {
  let bytes = 0
  for (const r of REGIONS) {
    await mkdir(join(src, TABLE, r, 'cf'), { recursive: true })
    await writeFile(join(src, TABLE, r, '.regioninfo'), `${r} [${r}-start, ${r}-end)\n`, { mode: 0o640 })
    await chmod(join(src, TABLE, r, '.regioninfo'), 0o640)
  }
  await writeFile(join(src, TABLE, '.tableinfo'), 'usertable v1\n')
  for (const [rel, size] of regionFileSizes(z)) {
    await genRegion(join(src, rel), size, `backup-bench-${rel}`)
    bytes += size
  }
  for (const d of SMALL_DIRS) await mkdir(join(src, d), { recursive: true })
  for (let i = 0; i < z.smallFiles; i++) {
    const size = smallSize(i, 'n1')
    await writeSmall(src, smallRel(i), `small-${i}-n1`, size, i % 11 === 0 ? 0o600 : i % 5 === 0 ? 0o640 : 0o644)
    bytes += size
  }
  await symlink(TABLE, join(src, 'current'))
  return { text: `${REGIONS.length * WEIGHTS.length} region files + ${z.smallFiles.toLocaleString('en-US')} small files`, bytesWritten: bytes }
}

/** Concatenates `inputs` into `out` (streams, 1 MiB at a time). */
async function concat(out: string, inputs: string[]): Promise<number> {
  const fh = await open(out, 'w')
  let off = 0
  try {
    for (const p of inputs) {
      for await (const b of createReadStream(p, { highWaterMark: MiB })) {
        const buf = b as Buffer
        let done = 0
        while (done < buf.length) done += (await fh.write(buf, done, buf.length - done, off + done)).bytesWritten
        off += buf.length
      }
    }
  } finally {
    await fh.close()
  }
  return off
}

/** New files a night: ~10% of night 1's file count (region files and small files). */
export function newFilesPerNight(z: Sizes): number {
  return Math.round((REGIONS.length * WEIGHTS.length + z.smallFiles) / 10)
}

async function smallChanges(src: string, z: Sizes, night: string, rewrite: number): Promise<number> {
  let bytes = 0
  // Rewritten: spread over the existing files; added: new names spread over the small-file dirs.
  for (let k = 0; k < rewrite; k++) {
    const i = Math.floor(((k + 0.5) * z.smallFiles) / rewrite)
    const size = smallSize(i, night)
    await writeSmall(src, smallRel(i), `small-${i}-${night}`, size, 0o644)
    bytes += size
  }
  for (let k = 0; k < newFilesPerNight(z); k++) {
    const size = smallSize(k, `${night}-new`)
    await writeSmall(src, `${SMALL_DIRS[k % SMALL_DIRS.length] as string}/${night}.${String(k).padStart(4, '0')}`, `small-new-${k}-${night}`, size, 0o644)
    bytes += size
  }
  return bytes
}

/** Night 2: compaction of r1's f3..f5 into a new f11, r4/f2 expired, small files changed and added. */
export async function makeNight2(src: string, z: Sizes): Promise<NightInfo & { compactedBytes: number; expiredBytes: number }> {
  const inputs = [3, 4, 5].map((n) => join(src, regionFile('r1', n)))
  const out = join(src, regionFile('r1', 11))
  // HBase writes the compacted file under .tmp, renames it into place, then drops the inputs.
  const compactedBytes = await concat(`${out}.tmp`, inputs)
  await rename(`${out}.tmp`, out)
  for (const p of inputs) await rm(p)
  const expired = join(src, regionFile('r4', 2))
  const expiredBytes = (await lstat(expired)).size
  await rm(expired)
  const small = await smallChanges(src, z, 'n2', 10)
  await writeFile(join(src, TABLE, '.tableinfo'), 'usertable v2\n')
  return {
    text: `compaction: r1/cf/f3+f4+f5 deleted, new r1/cf/f11 of ${mib(compactedBytes)} = their concatenation; r4/cf/f2 (${mib(expiredBytes)}) expired and deleted; 10 small files rewritten, ${newFilesPerNight(z)} added`,
    bytesWritten: compactedBytes + small, compactedBytes, expiredBytes,
  }
}

/** Nights 3 and 4: a flush of about 1% of the table into `region`, a few small files changed, ~10% new files. */
async function flushNight(src: string, z: Sizes, night: string, region: string): Promise<NightInfo & { flushBytes: number }> {
  const flushBytes = Math.round(z.tableBytes / 100) + 12345
  await genRegion(join(src, regionFile(region, 11)), flushBytes, `backup-bench-${night}-flush`)
  const small = await smallChanges(src, z, night, 5)
  return { text: `flush: new ${region}/cf/f11 of ${mib(flushBytes)}; 5 small files rewritten, ${newFilesPerNight(z)} added`, bytesWritten: flushBytes + small, flushBytes }
}

export function makeNight3(src: string, z: Sizes): Promise<NightInfo & { flushBytes: number }> {
  return flushNight(src, z, 'n3', 'r2')
}

export function makeNight4(src: string, z: Sizes): Promise<NightInfo & { flushBytes: number }> {
  return flushNight(src, z, 'n4', 'r3')
}

export function mib(bytes: number): string {
  return `${(bytes / MiB).toFixed(bytes >= 10 * MiB ? 0 : 1)} MiB`
}

export interface Entry { type: 'dir' | 'file' | 'symlink' | 'other'; mode: number; size: number; mtimeNs: bigint; uid: number; gid: number; sha?: string; target?: string }
export type Tree = Map<string, Entry>

async function sha256File(path: string): Promise<string> {
  const h = createHash('sha256')
  for await (const b of createReadStream(path, { highWaterMark: MiB })) h.update(b as Buffer)
  return h.digest('hex')
}

/** Every entry under `root` ('' is the root itself) with the sha256 of every regular file. */
export async function treeOf(root: string): Promise<Tree> {
  const out: Tree = new Map()
  const walk = async (rel: string): Promise<void> => {
    const p = rel === '' ? root : join(root, rel)
    const st = await lstat(p, { bigint: true })
    const type = st.isDirectory() ? 'dir' : st.isSymbolicLink() ? 'symlink' : st.isFile() ? 'file' : 'other'
    const e: Entry = { type, mode: Number(st.mode), size: type === 'dir' ? 0 : Number(st.size), mtimeNs: st.mtimeNs, uid: Number(st.uid), gid: Number(st.gid) }
    if (type === 'file') e.sha = await sha256File(p)
    if (type === 'symlink') e.target = await readlink(p)
    out.set(rel, e)
    if (type === 'dir') for (const name of (await readdir(p)).sort()) await walk(rel === '' ? name : `${rel}/${name}`)
  }
  await walk('')
  return out
}

/**
 * Differences between a restored tree and the source's (empty: equal): the set of paths, type,
 * size, sha256 of files, symlink targets, modes and owners of everything, mtimes of files and
 * symlinks (nanoseconds). Directory mtimes and the root's attributes are not compared (the
 * destination root is the caller's directory, and some tools set directory times loosely).
 */
export function treeDiff(got: Tree, want: Tree): string[] {
  const out: string[] = []
  for (const [p, w] of want) {
    const g = got.get(p)
    if (g === undefined) { out.push(`missing ${p}`); continue }
    if (p === '') continue
    const keys = ['type', 'size', 'sha', 'target', 'mode', 'uid', 'gid', ...(w.type === 'dir' ? [] : ['mtimeNs'])] as Array<keyof Entry>
    for (const k of keys) if (g[k] !== w[k]) out.push(`${p}: ${k} ${String(g[k])} != ${String(w[k])}`)
  }
  for (const p of got.keys()) if (!want.has(p)) out.push(`extra ${p}`)
  return out
}

/** Files and bytes of a tree (regular files). */
export function treeTotals(t: Tree): { files: number; bytes: number; dirs: number } {
  let files = 0
  let bytes = 0
  let dirs = 0
  for (const e of t.values()) {
    if (e.type === 'file') { files++; bytes += e.size }
    if (e.type === 'dir') dirs++
  }
  return { files, bytes, dirs }
}
