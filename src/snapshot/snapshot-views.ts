import { TierfsError } from '../errors.js'
import { ROOT_INO, type Ino, type Version } from '../ids.js'
import { Lru } from '../chunk/lru.js'
import type { MetaReader } from '../meta/meta.js'
import type { Pin } from '../meta/types.js'
import type { DirListing, Stat } from '../vfs/vfs.js'
import { parseInstant, timeName } from './time-name.js'

export const SNAPSHOTS = '.snapshots'
export const HISTORY = '.history'
const LATEST = 'latest'
const SNAPSHOTS_INO = 0xffffff01
const HISTORY_INO = 0xffffff02

/** Where a path inside the read-only views leads. */
export type Route =
  /** A directory or symlink that exists only in the view (/.snapshots, a workflow, `latest`). */
  | { kind: 'virtual'; stat: Stat; list?: () => Promise<DirListing[]>; target?: string }
  /**
   * A node of the namespace as it was at `asOf`. `space` is the view's own inode space (the high
   * 32 bits of st_ino), so `cp -a` over several restore points never links different versions.
   */
  | { kind: 'frozen'; ino: Ino; asOf: Version; space: number }

export type SnapshotViewsDeps = {
  meta: MetaReader
  /** Wall clock, ms (injectable offset for tests and demos). */
  now: () => number
  /** How far back /.history reaches. */
  historyWindowMs: number
}

/**
 * The read-only views of the namespace, hidden from the root listing (like ZFS's .zfs):
 *   /.snapshots/<workflow>/<UTC time>/...   a restore point: the workflow's tree at a pinned version
 *   /.snapshots/<workflow>/latest           symlink to the newest restore point
 *   /.history/<ISO instant>/...             the whole namespace as it was at any instant inside
 *                                           the history window
 * Everything below them is immutable, so name lookups are cached.
 */
export class SnapshotViews {
  private readonly lookups = new Lru<string, Ino | null>(100_000)

  constructor(private readonly deps: SnapshotViewsDeps) {}

  /** True when `parts` (path components) fall inside a view. */
  static isView(parts: readonly string[]): boolean {
    return parts[0] === SNAPSHOTS || parts[0] === HISTORY
  }

  /** Forgets cached lookups (after a restore point is deleted and its versions may be collected). */
  invalidate(): void {
    this.lookups.clear()
  }

  async route(parts: readonly string[]): Promise<Route> {
    const [top, a, b, ...rest] = parts
    if (top === SNAPSHOTS) {
      if (a === undefined) return this.virtualDir(SNAPSHOTS_INO, 0, () => this.listWorkflows())
      const pins = await this.pinsOf(a)
      if (pins.length === 0) throw TierfsError.notFound(`/${SNAPSHOTS}/${a}`)
      if (b === undefined) return this.virtualDir(wfIno(a), (pins.at(-1) as Pin).timeMs, () => this.listPins(a, pins))
      if (b === LATEST) {
        const newest = pins.at(-1) as Pin
        if (rest.length === 0) return this.virtualLink(wfIno(a) + 1, timeName(newest.timeMs), newest.timeMs)
        return this.frozen(newest.root ?? ROOT_INO, newest.version, rest, space(`${a}/${newest.timeMs}`))
      }
      const ms = parseInstant(b)
      const pin = pins.find((p) => timeName(p.timeMs) === b || p.timeMs === ms)
      if (pin === undefined) throw TierfsError.notFound(`/${SNAPSHOTS}/${a}/${b}`)
      return this.frozen(pin.root ?? ROOT_INO, pin.version, rest, space(`${a}/${pin.timeMs}`))
    }
    if (top === HISTORY) {
      if (a === undefined) return this.virtualDir(HISTORY_INO, 0, async () => [])
      let ms: number
      try {
        ms = parseInstant(a)
      } catch {
        throw TierfsError.notFound(`/${HISTORY}/${a}`)
      }
      const now = this.deps.now()
      if (ms > now || ms < now - this.deps.historyWindowMs) {
        throw TierfsError.notFound(`/${HISTORY}/${a} (outside the history window)`)
      }
      const asOf = this.deps.meta.versionAt(ms)
      return this.frozen(ROOT_INO, asOf, b === undefined ? [] : [b, ...rest], space(`@${asOf}`))
    }
    throw TierfsError.internal(`not a view path: ${parts.join('/')}`)
  }

  private async frozen(root: Ino, asOf: Version, parts: readonly string[], space: number): Promise<Route> {
    let ino = root
    const meta = this.deps.meta
    if ((await meta.getInode(root, asOf)) === undefined) throw TierfsError.notFound('restore point root')
    for (const name of parts) {
      const key = `${asOf}/${ino}/${name}`
      let next = this.lookups.get(key)
      if (next === undefined) {
        next = (await meta.lookup(ino, name, asOf)) ?? null
        this.lookups.set(key, next)
      }
      if (next === null) {
        const a = await meta.getInode(ino, asOf)
        throw a !== undefined && a.type !== 'dir' ? TierfsError.notDir(name) : TierfsError.notFound(name)
      }
      ino = next
    }
    return { kind: 'frozen', ino, asOf, space }
  }

  private async pinsOf(workflow: string): Promise<Pin[]> {
    const out: Pin[] = []
    for await (const p of this.deps.meta.pins(workflow)) out.push(p)
    return out.sort((x, y) => x.timeMs - y.timeMs)
  }

  private async listWorkflows(): Promise<DirListing[]> {
    const names = new Map<string, number>()
    for await (const p of this.deps.meta.pins()) names.set(p.workflow, Math.max(names.get(p.workflow) ?? 0, p.timeMs))
    return [...names].map(([name, ms]) => ({ name, stat: dirStat(wfIno(name), ms) }))
  }

  private async listPins(workflow: string, pins: Pin[]): Promise<DirListing[]> {
    const out: DirListing[] = pins.map((p) => ({ name: timeName(p.timeMs), stat: dirStat(wfIno(workflow) + 2, p.timeMs) }))
    const newest = pins.at(-1) as Pin
    out.push({ name: LATEST, stat: linkStat(wfIno(workflow) + 1, timeName(newest.timeMs), newest.timeMs) })
    return out
  }

  private virtualDir(ino: number, ms: number, list: () => Promise<DirListing[]>): Route {
    return { kind: 'virtual', stat: dirStat(ino, ms), list }
  }

  private virtualLink(ino: number, target: string, ms: number): Route {
    return { kind: 'virtual', stat: linkStat(ino, target, ms), target }
  }
}

/** A view's inode space: a 32-bit hash, never 0 (the live namespace). */
function space(name: string): number {
  let h = 2166136261
  for (let i = 0; i < name.length; i++) h = Math.imul(h ^ name.charCodeAt(i), 16777619) >>> 0
  return h === 0 ? 1 : h
}

function wfIno(workflow: string): number {
  let h = 2166136261
  for (let i = 0; i < workflow.length; i++) h = Math.imul(h ^ workflow.charCodeAt(i), 16777619) >>> 0
  return 0xf0000000 + (h % 0x0ffff000) - (h % 4)
}

function dirStat(ino: number, ms: number): Stat {
  const t = BigInt(ms) * 1_000_000n
  return { ino, mode: 0o040555, nlink: 2, uid: 0, gid: 0, size: 0, blocks: 0, blksize: 4096, rdev: 0, atimeNs: t, mtimeNs: t, ctimeNs: t }
}

function linkStat(ino: number, target: string, ms: number): Stat {
  const t = BigInt(ms) * 1_000_000n
  return { ino, mode: 0o120777, nlink: 1, uid: 0, gid: 0, size: target.length, blocks: 0, blksize: 4096, rdev: 0, atimeNs: t, mtimeNs: t, ctimeNs: t }
}
