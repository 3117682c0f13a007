import { TierfsError } from '../errors.js'
import { ROOT_INO, type Ino, type Version } from '../ids.js'
import type { MetaReader } from '../meta/meta.js'
import type { InodeAttrs, Pin } from '../meta/types.js'
import type { DirListing, Stat } from '../vfs/vfs.js'
import { parseInstant, timeName } from './time-name.js'
import { ViewReader } from './view-reader.js'

export const SNAPSHOTS = '.snapshots'
export const HISTORY = '.history'
const LATEST = 'latest'
const SNAPSHOTS_INO = 0xffffff01
const HISTORY_INO = 0xffffff02
/** Instants of /.history remembered with their version and inode space. */
const INSTANTS = 256

/** A node of the namespace as it was at `asOf`, with its attributes then. */
export type FrozenRoute = {
  kind: 'frozen'
  ino: Ino
  asOf: Version
  /**
   * The view's own inode space (the high 32 bits of st_ino), so `cp -a` over several restore
   * points never links different versions.
   */
  space: number
  attrs: InodeAttrs
}

/** Where a path inside the read-only views leads. */
export type Route =
  /** A directory or symlink that exists only in the view (/.snapshots, a workflow, `latest`). */
  | { kind: 'virtual'; stat: Stat; list?: () => Promise<DirListing[]>; target?: string }
  | FrozenRoute

export type SnapshotViewsDeps = {
  meta: MetaReader
  /** Wall clock, ms (injectable offset for tests and demos). */
  now: () => number
  /** How far back /.history reaches. */
  historyWindowMs: number
}

/** A restore point as the views show it. */
interface ViewPin {
  pin: Pin
  name: string
  space: number
}

/** Restore points by workflow: oldest first, and by directory name. */
type PinIndex = Map<string, { sorted: ViewPin[]; byName: Map<string, ViewPin> }>

/**
 * The read-only views of the namespace, hidden from the root listing (like ZFS's .zfs):
 *   /.snapshots/<workflow>/<UTC time>/...   a restore point: the workflow's tree at a pinned version
 *   /.snapshots/<workflow>/latest           symlink to the newest restore point
 *   /.history/<ISO instant>/...             the whole namespace as it was at any instant inside
 *                                           the history window
 * Everything below them is immutable, so `reader` caches inodes, entries and xattrs (bounded);
 * the list of restore points is read again only after a commit changed it (MetaReader.pinStamp).
 */
export class SnapshotViews {
  /** Cached reads as of the views' versions. */
  readonly reader: ViewReader
  private pinIndex: Promise<PinIndex> | undefined
  private pinIndexStamp = 0
  private readonly instants = new Map<string, { ms: number; asOf: Version; space: number }>()

  constructor(private readonly deps: SnapshotViewsDeps) {
    this.reader = new ViewReader(deps.meta)
  }

  /** True when `parts` (path components) fall inside a view. */
  static isView(parts: readonly string[]): boolean {
    return parts[0] === SNAPSHOTS || parts[0] === HISTORY
  }

  /** True when the absolute path `path` falls inside a view (no split). */
  static isViewPath(path: string): boolean {
    return underTop(path, SNAPSHOTS) || underTop(path, HISTORY)
  }

  /** Forgets cached reads (after a restore point is deleted and its versions may be collected). */
  invalidate(): void {
    this.reader.clear()
    this.pinIndex = undefined
  }

  /** Resolves path components that fall inside a view (isView). */
  async route(parts: readonly string[]): Promise<Route> {
    const top = parts[0]
    const a = parts[1]
    const b = parts[2]
    if (top === SNAPSHOTS) {
      if (a === undefined) return this.virtualDir(SNAPSHOTS_INO, 0, () => this.listWorkflows())
      const wf = (await this.pins()).get(a)
      if (wf === undefined) throw TierfsError.notFound(`/${SNAPSHOTS}/${a}`)
      const newest = wf.sorted.at(-1) as ViewPin
      if (b === undefined) return this.virtualDir(wfIno(a), newest.pin.timeMs, async () => listPins(a, wf.sorted))
      if (b === LATEST && parts.length === 3) return this.virtualLink(wfIno(a) + 1, newest.name, newest.pin.timeMs)
      const p = b === LATEST ? newest : wf.byName.get(b) ?? findByInstant(wf.sorted, b)
      if (p === undefined) throw TierfsError.notFound(`/${SNAPSHOTS}/${a}/${b}`)
      return this.frozen(p.pin.root ?? ROOT_INO, p.pin.version, parts, 3, p.space)
    }
    if (top === HISTORY) {
      if (a === undefined) return this.virtualDir(HISTORY_INO, 0, async () => [])
      const at = this.instant(a)
      const now = this.deps.now()
      if (at.ms > now || at.ms < now - this.deps.historyWindowMs) {
        throw TierfsError.notFound(`/${HISTORY}/${a} (outside the history window)`)
      }
      return this.frozen(ROOT_INO, at.asOf, parts, 2, at.space)
    }
    throw TierfsError.internal(`not a view path: ${parts.join('/')}`)
  }

  /** Walks `parts` from index `from` below `root` as of `asOf`. */
  private async frozen(root: Ino, asOf: Version, parts: readonly string[], from: number, space: number): Promise<FrozenRoute> {
    const reader = this.reader
    const rootAttrs = await reader.getInode(root, asOf)
    if (rootAttrs === undefined) throw TierfsError.notFound('restore point root')
    let ino = root
    for (let i = from; i < parts.length; i++) {
      const name = parts[i] as string
      const next = await reader.lookup(ino, name, asOf)
      if (next === undefined) {
        const dir = ino === root ? rootAttrs : await reader.getInode(ino, asOf)
        throw dir !== undefined && dir.type !== 'dir' ? TierfsError.notDir(name) : TierfsError.notFound(name)
      }
      ino = next
    }
    const attrs = ino === root ? rootAttrs : await reader.getInode(ino, asOf)
    if (attrs === undefined) throw TierfsError.notFound(`inode ${ino}`)
    return { kind: 'frozen', ino, asOf, space, attrs }
  }

  /** The restore points, read again only when a commit changed them since the last read. */
  private pins(): Promise<PinIndex> {
    const stamp = this.deps.meta.pinStamp
    if (this.pinIndex !== undefined && this.pinIndexStamp === stamp) return this.pinIndex
    // The stamp is taken before the read: a pin committed meanwhile makes the next call read again.
    const loading = this.loadPins()
    this.pinIndex = loading
    this.pinIndexStamp = stamp
    loading.catch(() => { if (this.pinIndex === loading) this.pinIndex = undefined })
    return loading
  }

  private async loadPins(): Promise<PinIndex> {
    const index: PinIndex = new Map()
    for await (const pin of this.deps.meta.pins()) {
      let wf = index.get(pin.workflow)
      if (wf === undefined) index.set(pin.workflow, (wf = { sorted: [], byName: new Map() }))
      const p: ViewPin = { pin, name: timeName(pin.timeMs), space: space(`${pin.workflow}/${pin.timeMs}`) }
      wf.sorted.push(p)
      wf.byName.set(p.name, p)
    }
    for (const wf of index.values()) wf.sorted.sort((x, y) => x.pin.timeMs - y.pin.timeMs)
    return index
  }

  /** A /.history instant: its time, version and inode space (NOT_FOUND when it is no instant). */
  private instant(text: string): { ms: number; asOf: Version; space: number } {
    let at = this.instants.get(text)
    if (at !== undefined) return at
    const ms = instantOf(text)
    if (ms === undefined) throw TierfsError.notFound(`/${HISTORY}/${text}`)
    const asOf = this.deps.meta.versionAt(ms)
    at = { ms, asOf, space: space(`@${asOf}`) }
    if (this.instants.size >= INSTANTS) this.instants.clear()
    this.instants.set(text, at)
    return at
  }

  private async listWorkflows(): Promise<DirListing[]> {
    const out: DirListing[] = []
    for (const [name, wf] of await this.pins()) out.push({ name, stat: dirStat(wfIno(name), (wf.sorted.at(-1) as ViewPin).pin.timeMs) })
    return out
  }

  private virtualDir(ino: number, ms: number, list: () => Promise<DirListing[]>): Route {
    return { kind: 'virtual', stat: dirStat(ino, ms), list }
  }

  private virtualLink(ino: number, target: string, ms: number): Route {
    return { kind: 'virtual', stat: linkStat(ino, target, ms), target }
  }
}

function underTop(path: string, top: string): boolean {
  return path.startsWith(top, 1) && (path.length === top.length + 1 || path.charCodeAt(top.length + 1) === 0x2f)
}

function listPins(workflow: string, sorted: readonly ViewPin[]): DirListing[] {
  const out: DirListing[] = sorted.map((p) => ({ name: p.name, stat: dirStat(wfIno(workflow) + 2, p.pin.timeMs) }))
  const newest = sorted.at(-1) as ViewPin
  out.push({ name: LATEST, stat: linkStat(wfIno(workflow) + 1, newest.name, newest.pin.timeMs) })
  return out
}

/** A restore point named by another spelling of its instant (2026-11-21T03:00:00+01:00). */
function findByInstant(sorted: readonly ViewPin[], text: string): ViewPin | undefined {
  const ms = instantOf(text)
  return ms === undefined ? undefined : sorted.find((p) => p.pin.timeMs === ms)
}

/** The instant `text` names, in ms; undefined when it names none. */
function instantOf(text: string): number | undefined {
  try {
    return parseInstant(text)
  } catch {
    return undefined
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
