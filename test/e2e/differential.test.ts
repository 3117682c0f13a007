import t, { type Test } from 'tap'
import { mkdir, mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { tempMount, type TestMount } from '../support/tierfs-mount.js'
import { b64, posixAgent, type AgentResult, type PosixAgent, type TreeEntry } from '../support/posix-agent.js'

/**
 * The same seeded random operations on a tierfs mount and on a plain directory must succeed or
 * fail alike (same errno) and leave the same tree. Compared: names, types, sizes, contents,
 * modes, mtimes (ns), symlink targets, user.* xattrs, nlink.
 */
const SEEDS = [0x7f4a7c15, 0x2545f491, 0x9e3779b9]
const OPS = 300
const S_IFMT = 0o170000
const S_IFDIR = 0o040000
const S_IFREG = 0o100000
/** Explicit times are chosen before 2010; "now" is later. */
const EXPLICIT_BEFORE_NS = 1_262_304_000_000_000_000n

function prng(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let x = a
    x = Math.imul(x ^ (x >>> 15), x | 1)
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61)
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296
  }
}

interface Op {
  name: string
  /** Paths relative to the tree root (joined to each side's root). */
  paths: string[]
  args: unknown[]
  /** Builds the agent call for one side. */
  call: (p: string[]) => [string, ...unknown[]]
}

class Generator {
  private readonly r: () => number
  constructor(seed: number) { this.r = prng(seed) }
  int(n: number): number { return Math.floor(this.r() * n) }
  pick<T>(xs: readonly T[]): T { return xs[this.int(xs.length)] as T }
  chance(p: number): boolean { return this.r() < p }
  bytes(n: number): Buffer {
    const b = Buffer.alloc(n)
    // Runs of repeated bytes and random bytes, so chunks and holes both occur.
    for (let i = 0; i < n;) {
      const run = Math.min(n - i, 1 + this.int(64))
      const v = this.int(256)
      const random = this.chance(0.5)
      for (let k = 0; k < run; k++) b[i + k] = random ? this.int(256) : v
      i += run
    }
    return b
  }
  size(): number {
    const k = this.r()
    if (k < 0.5) return this.int(2048)
    if (k < 0.85) return this.int(20_000)
    return this.int(300_000)
  }
  time(): string {
    // 1990..2009 with random nanoseconds.
    return String(631_152_000_000_000_000n + BigInt(this.int(630_000_000)) * 1_000_000_000n + BigInt(this.int(1_000_000_000)))
  }
}

const NAMES = ['a', 'b', 'c', 'd', 'e', 'f']
const MODES = [0o644, 0o600, 0o755, 0o700, 0o444, 0o640, 0o4755, 0o2755, 0o1777, 0o000]
const XNAMES = ['user.one', 'user.two', 'user.three']

/** One random operation, chosen against the current (reference) tree. */
function nextOp(g: Generator, tree: TreeEntry[]): Op {
  const dirs = ['', ...tree.filter((e) => (e.mode & S_IFMT) === S_IFDIR).map((e) => e.path)]
  const all = tree.map((e) => e.path)
  const files = tree.filter((e) => (e.mode & S_IFMT) === S_IFREG).map((e) => e.path)
  const newName = (): string => {
    const d = g.pick(dirs)
    return d === '' ? g.pick(NAMES) : `${d}/${g.pick(NAMES)}`
  }
  const existing = (): string => (all.length > 0 && g.chance(0.9) ? g.pick(all) : newName())
  const file = (): string => (files.length > 0 && g.chance(0.85) ? g.pick(files) : existing())
  const any = (): string => (g.chance(0.5) ? existing() : newName())
  const k = g.int(100)
  if (k < 12) {
    const mode = g.pick([0o644, 0o600, 0o755])
    return { name: 'create', paths: [newName()], args: [mode], call: ([p]) => ['create', p, mode] }
  }
  if (k < 32) {
    const off = g.chance(0.2) ? g.int(1_000_000) : g.int(30_000)
    const data = b64(g.bytes(g.size()))
    return { name: 'write', paths: [file()], args: [off, data.length], call: ([p]) => ['write', p, off, data] }
  }
  if (k < 36) {
    const data = b64(g.bytes(g.size()))
    return { name: 'writefile', paths: [any()], args: [data.length], call: ([p]) => ['writefile', p, data, 0o644] }
  }
  if (k < 42) {
    const size = g.chance(0.3) ? 0 : g.size()
    return { name: 'truncate', paths: [file()], args: [size], call: ([p]) => ['truncate', p, size] }
  }
  if (k < 52) return { name: 'rename', paths: [existing(), any()], args: [], call: ([a, b]) => ['rename', a, b] }
  if (k < 58) return { name: 'link', paths: [file(), newName()], args: [], call: ([a, b]) => ['link', a, b] }
  if (k < 64) return { name: 'unlink', paths: [existing()], args: [], call: ([p]) => ['unlink', p] }
  if (k < 72) {
    const mode = g.pick([0o755, 0o700, 0o750])
    return { name: 'mkdir', paths: [newName()], args: [mode], call: ([p]) => ['mkdir', p, mode] }
  }
  if (k < 77) {
    const empty = dirs.filter((d) => d !== '' && !all.some((p) => p.startsWith(d + '/')))
    const p = empty.length > 0 && g.chance(0.7) ? g.pick(empty) : existing()
    return { name: 'rmdir', paths: [p], args: [], call: ([q]) => ['rmdir', q] }
  }
  if (k < 82) {
    const mode = g.pick(MODES)
    return { name: 'chmod', paths: [existing()], args: [mode.toString(8)], call: ([p]) => ['chmod', p, mode] }
  }
  if (k < 89) {
    const at = g.time()
    const mt = g.time()
    return { name: 'utime', paths: [existing()], args: [at, mt], call: ([p]) => ['utime', p, at, mt] }
  }
  if (k < 95) {
    const name = g.pick(XNAMES)
    const value = b64(g.bytes(g.int(200)))
    const flags = g.pick([0, 0, 1, 2])
    return { name: 'setxattr', paths: [existing()], args: [name, flags], call: ([p]) => ['setxattr', p, name, value, flags] }
  }
  if (k < 97) {
    const withX = tree.filter((e) => Object.keys(e.xattrs ?? {}).length > 0)
    const e = withX.length > 0 && g.chance(0.7) ? g.pick(withX) : undefined
    const path = e?.path ?? existing()
    const name = e !== undefined ? g.pick(Object.keys(e.xattrs ?? {}).sort()) : g.pick(XNAMES)
    return { name: 'removexattr', paths: [path], args: [name], call: ([p]) => ['removexattr', p, name] }
  }
  // Targets stay inside the tree (or point nowhere creatable), so no operation escapes it.
  const target = g.pick(['a', 'b', 'c/d', 'e', '/nonexistent-tierfs-dir/x'])
  return { name: 'symlink', paths: [newName()], args: [target], call: ([p]) => ['symlink', target, p] }
}

function outcome(r: AgentResult<unknown>): string {
  return r.ok ? 'OK' : r.errno
}

interface Compare {
  /** Names of inodes that ever had more than one link: the kernel caches attributes per path. */
  skipLinked?: Set<number>
  startNs: bigint
}

/** Differences between the tierfs tree and the reference tree, as readable lines. */
function diffTrees(ours: TreeEntry[], ref: TreeEntry[], opts: Compare): string[] {
  const out: string[] = []
  const mine = new Map(ours.map((e) => [e.path, e]))
  const theirs = new Map(ref.map((e) => [e.path, e]))
  for (const p of theirs.keys()) if (!mine.has(p)) out.push(`${p}: missing on tierfs`)
  for (const p of mine.keys()) if (!theirs.has(p)) out.push(`${p}: only on tierfs`)
  for (const [p, r] of theirs) {
    const o = mine.get(p)
    if (o === undefined) continue
    const type = r.mode & S_IFMT
    if ((o.mode & S_IFMT) !== type) { out.push(`${p}: type ${o.mode.toString(8)} vs ${r.mode.toString(8)}`); continue }
    if (opts.skipLinked?.has(r.ino) === true) continue
    if (o.mode !== r.mode) out.push(`${p}: mode ${o.mode.toString(8)} vs ${r.mode.toString(8)}`)
    if (o.nlink !== r.nlink) out.push(`${p}: nlink ${o.nlink} vs ${r.nlink}`)
    if (type !== S_IFDIR && o.size !== r.size) out.push(`${p}: size ${o.size} vs ${r.size}`)
    if (o.sha256 !== r.sha256) out.push(`${p}: contents differ`)
    if (o.target !== r.target) out.push(`${p}: symlink target ${o.target} vs ${r.target}`)
    if (JSON.stringify(o.xattrs) !== JSON.stringify(r.xattrs)) out.push(`${p}: xattrs ${JSON.stringify(o.xattrs)} vs ${JSON.stringify(r.xattrs)}`)
    const rm = BigInt(r.mtimeNs)
    const om = BigInt(o.mtimeNs)
    if (rm < EXPLICIT_BEFORE_NS) {
      if (om !== rm) out.push(`${p}: mtime ${om} vs ${rm} (set explicitly)`)
    } else if (type !== 0o120000 && om < opts.startNs - 2_000_000_000n) {
      out.push(`${p}: mtime ${om} is old, the reference was updated to now (${rm})`)
    }
  }
  return out
}

async function runSeed(t: Test, seed: number): Promise<void> {
  t.comment(`seed 0x${seed.toString(16)}`)
  const m: TestMount = await tempMount()
  t.teardown(() => m.cleanup())
  const plainParent = await mkdtemp(join(tmpdir(), 'tierfs-ref-'))
  t.teardown(() => rm(plainParent, { recursive: true, force: true }))
  const sides = { tierfs: join(m.mnt, 'tree'), plain: join(plainParent, 'tree') }
  await mkdir(sides.tierfs)
  await mkdir(sides.plain)
  const agent: PosixAgent = await posixAgent()
  t.teardown(() => agent.close())
  const startNs = BigInt(Date.now()) * 1_000_000n
  const g = new Generator(seed)
  const everLinked = new Set<number>()
  const counts: Record<string, { ok: number; failed: number }> = {}

  const compare = async (when: string, live: boolean): Promise<boolean> => {
    const ours = await agent.ok<TreeEntry[]>('tree', sides.tierfs)
    const ref = await agent.ok<TreeEntry[]>('tree', sides.plain)
    const diffs = diffTrees(ours, ref, { startNs, ...(live ? { skipLinked: everLinked } : {}) })
    t.same(diffs, [], `trees agree ${when} (${ref.length} nodes)`)
    return diffs.length === 0
  }

  let agreed = true
  for (let i = 0; i < OPS && agreed; i++) {
    if (i === Math.floor(OPS / 2)) {
      await m.umount()
      await m.mount()
      agreed = await compare('in the middle, after umount + mount', false)
      if (!agreed) break
    }
    const tree = await agent.ok<TreeEntry[]>('tree', sides.plain)
    const op = nextOp(g, tree)
    const linkedIno = op.name === 'link' ? tree.find((e) => e.path === op.paths[0])?.ino : undefined
    const [name, ...args] = op.call(op.paths.map((p) => join(sides.plain, p)))
    const ref = outcome(await agent.call(name, ...args))
    const [name2, ...args2] = op.call(op.paths.map((p) => join(sides.tierfs, p)))
    const ours = outcome(await agent.call(name2, ...args2))
    const c = (counts[op.name] ??= { ok: 0, failed: 0 })
    if (ref === 'OK') c.ok++
    else c.failed++
    if (ref === 'OK' && linkedIno !== undefined) everLinked.add(linkedIno)
    if (ref !== ours) {
      t.fail(`op #${i} ${op.name} ${JSON.stringify(op.paths)} ${JSON.stringify(op.args)}: tierfs ${ours}, plain ${ref}`)
      agreed = false
    }
  }
  t.comment(`operations (ok/failed alike): ${Object.entries(counts).map(([k, v]) => `${k} ${v.ok}/${v.failed}`).join(', ')}`)
  if (!agreed) return
  t.pass(`${OPS} operations gave the same result on both sides`)
  await compare('at the end, live (names with more than one link skipped: per-path kernel attribute cache)', true)
  await m.umount()
  await m.mount()
  await compare('at the end, after umount + mount', false)
  await m.umount()
  const fsck = await m.cli(['fsck', m.store, '--json'])
  t.equal(fsck.code, 0, `fsck clean: ${fsck.stdout}${fsck.stderr}`)
}

for (const seed of SEEDS) {
  t.test(`differential, seed 0x${seed.toString(16)}`, (t) => runSeed(t, seed))
}
