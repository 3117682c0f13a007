// A small in-memory filesystem (empty files and directories) built directly on the patched
// fuse-native, for binding tests.
import { mkdtemp, rmdir } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, dirname, basename } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { Fuse } from './fuse-native-api.js'
import type { CallerContext, FuseInstance, FuseOps, FuseStat, FuseOptions } from './fuse-native-api.js'

const S_IFDIR = 0o040000
const S_IFREG = 0o100000

interface Node {
  ino: number
  mode: number
  uid: number
  gid: number
  atimeNs: bigint
  mtimeNs: bigint
  ctimeNs: bigint
}

/** A mutating call as the handler saw it at entry. */
export interface RecordedCall {
  op: 'create' | 'mkdir' | 'utimens'
  path: string
  caller: CallerContext | null
  mode?: number
  atime?: bigint
  mtime?: bigint
}

export interface MiniFsOptions {
  /** Requests to answer after a random 5-20 ms delay (to pile up libfuse worker threads); a slowed op sees a null callerContext. */
  slow?: (op: keyof FuseOps, path: string) => boolean
  timeout?: FuseOptions['timeout']
}

/** A mounted mini filesystem. New nodes are owned by the caller's uid/gid (fuse.callerContext). */
export interface MiniFs {
  readonly mnt: string
  readonly fuse: FuseInstance
  readonly calls: RecordedCall[]
  /** Requests being handled right now, and the most seen at once. */
  readonly inFlight: { now: number, peak: number }
  unmount(): Promise<void>
}

const nowNs = (): bigint => BigInt(Date.now()) * 1_000_000n

function toStat (n: Node): FuseStat {
  const date = (ns: bigint): Date => new Date(Number(ns / 1_000_000n))
  return {
    mode: n.mode,
    uid: n.uid,
    gid: n.gid,
    size: 0,
    nlink: (n.mode & S_IFDIR) !== 0 ? 2 : 1,
    ino: n.ino,
    blksize: 4096,
    blocks: 0,
    atime: date(n.atimeNs),
    mtime: date(n.mtimeNs),
    ctime: date(n.ctimeNs),
    atimeNs: n.atimeNs,
    mtimeNs: n.mtimeNs,
    ctimeNs: n.ctimeNs
  }
}

/** Mounts a fresh mini fs on a new temp dir with the project's standard mount options. */
export async function mountMiniFs (options: MiniFsOptions = {}): Promise<MiniFs> {
  const mnt = await mkdtemp(join(tmpdir(), 'tierfs-binding-'))
  const nodes = new Map<string, Node>()
  let nextIno = 1
  const makeNode = (mode: number, owner: CallerContext | null): Node => {
    const t = nowNs()
    return { ino: nextIno++, mode, uid: owner?.uid ?? 0, gid: owner?.gid ?? 0, atimeNs: t, mtimeNs: t, ctimeNs: t }
  }
  nodes.set('/', makeNode(S_IFDIR | 0o1777, null))

  const calls: RecordedCall[] = []
  const inFlight = { now: 0, peak: 0 }
  const slow = options.slow ?? (() => false)
  const get = (path: string): Node | undefined => nodes.get(path)
  const addChild = (path: string, mode: number): number => {
    if (nodes.has(path)) return Fuse.EEXIST
    if (get(dirname(path)) === undefined) return Fuse.ENOENT
    nodes.set(path, makeNode(mode, fuse.callerContext))
    return 0
  }

  const ops: FuseOps = {
    getattr: (path, cb) => {
      const n = get(path)
      if (n === undefined) return cb(Fuse.ENOENT)
      cb(0, toStat(n))
    },
    readdir: (path, cb) => {
      if (get(path) === undefined) return cb(Fuse.ENOENT)
      const names: string[] = []
      const stats: FuseStat[] = []
      for (const [p, n] of nodes) {
        if (p !== '/' && dirname(p) === path) {
          names.push(basename(p))
          stats.push(toStat(n))
        }
      }
      cb(0, names, stats)
    },
    create: (path, mode, cb) => {
      calls.push({ op: 'create', path, caller: fuse.callerContext, mode })
      const err = addChild(path, S_IFREG | (mode & 0o7777))
      cb(err, 0)
    },
    open: (path, _flags, cb) => cb(get(path) === undefined ? Fuse.ENOENT : 0, 0),
    release: (_path, _fd, cb) => cb(0),
    unlink: (path, cb) => cb(nodes.delete(path) ? 0 : Fuse.ENOENT),
    mkdir: (path, mode, cb) => {
      calls.push({ op: 'mkdir', path, caller: fuse.callerContext, mode })
      cb(addChild(path, S_IFDIR | (mode & 0o7777)))
    },
    rmdir: (path, cb) => {
      for (const p of nodes.keys()) if (dirname(p) === path && p !== '/') return cb(Fuse.ENOTEMPTY)
      cb(nodes.delete(path) ? 0 : Fuse.ENOENT)
    },
    chmod: (path, mode, cb) => {
      const n = get(path)
      if (n === undefined) return cb(Fuse.ENOENT)
      n.mode = (n.mode & ~0o7777) | (mode & 0o7777)
      n.ctimeNs = nowNs()
      cb(0)
    },
    utimens: (path, atime, mtime, cb) => {
      calls.push({ op: 'utimens', path, caller: fuse.callerContext, atime, mtime })
      const n = get(path)
      if (n === undefined) return cb(Fuse.ENOENT)
      const t = nowNs()
      const pick = (ns: bigint, old: bigint): bigint => ns === Fuse.UTIME_NOW ? t : ns === Fuse.UTIME_OMIT ? old : ns
      n.atimeNs = pick(atime, n.atimeNs)
      n.mtimeNs = pick(mtime, n.mtimeNs)
      n.ctimeNs = t
      cb(0)
    }
  }

  for (const name of Object.keys(ops) as Array<keyof FuseOps>) {
    const inner = ops[name] as (...args: unknown[]) => void
    ops[name] = ((...args: unknown[]) => {
      inFlight.now++
      inFlight.peak = Math.max(inFlight.peak, inFlight.now)
      const cb = args.pop() as (...res: unknown[]) => void
      const done = (...res: unknown[]): void => { inFlight.now--; cb(...res) }
      if (!slow(name, args[0] as string)) return inner(...args, done)
      void sleep(5 + Math.random() * 15).then(() => inner(...args, done))
    }) as never
  }

  const fuse = new Fuse(mnt, ops, {
    force: true,
    mkdir: true,
    autoUnmount: true,
    allowOther: true,
    defaultPermissions: true,
    timeout: options.timeout ?? false
  })
  try {
    await new Promise<void>((resolve, reject) => fuse.mount(err => err ? reject(err) : resolve()))
  } catch (err) {
    await rmdir(mnt).catch(() => {})
    throw err
  }

  let mounted = true
  return {
    mnt,
    fuse,
    calls,
    inFlight,
    async unmount (): Promise<void> {
      if (!mounted) return
      mounted = false
      await new Promise<void>((resolve, reject) => fuse.unmount(err => err ? reject(err) : resolve()))
      await rmdir(mnt)
    }
  }
}
