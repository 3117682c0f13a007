import { ROOT_INO, type Ino, type Version } from '../ids.js'
import type { MetaReader } from '../meta/meta.js'
import type { FileMap, InodeAttrs, NodeType } from '../meta/types.js'
import { components } from '../vfs/path.js'

export type ChangeKind = 'added' | 'modified' | 'deleted'

/**
 * One difference between two versions of a tree, at one path. Each path appears at most once:
 * a node whose type changed (a file replaced by a directory, ...) is `modified` with
 * `typeBefore`, and the old directory's descendants are `deleted` (the new one's `added`).
 * "modified" means a file whose data, size or mtime changed, a symlink whose target changed, or a
 * device whose number changed; changes of mode, owner or xattrs alone are not listed.
 * Directories are listed when added or deleted, never as modified.
 */
export interface DiffEntry {
  change: ChangeKind
  /** Path from the side's root ('/' joined), e.g. /region/f1. */
  path: string
  /** Type after the change (before it, for deleted entries). */
  type: NodeType
  typeBefore?: NodeType
  sizeBefore?: number
  sizeAfter?: number
}

/** One side of a diff: a version, and the directory its paths start from (the root when absent). */
export interface DiffSide {
  version: Version
  root?: Ino
}

export type DiffReader = Pick<MetaReader, 'getInode' | 'getInodeVersioned' | 'lookup' | 'readdir' | 'getFileMap'>

/**
 * Streams the differences between the tree under `rootPath` as of `from` and as of `to`, in walk
 * order (depth first, entries of a directory in readdir order: byte order of UTF-8 names), both
 * trees merge-joined by name. `after` resumes after the entry with that path (pagination: pass the
 * last path of the previous page). Memory: two directory iterators per level of depth.
 *
 * Cost: the walk reads the tree once, not twice, where nothing changed. An inode whose record
 * (read at the newer version) was committed at or before the older one is the same on both sides
 * (see MetaReader.getInodeVersioned): an untouched file costs one seek and no comparison, an
 * untouched directory is listed once. Subtrees cannot be skipped whole: a change deep below
 * leaves its ancestors' records untouched, so the walk still visits every entry once.
 * `from` may be newer than `to` (the diff is then the reverse).
 */
export async function* diffVersions(
  meta: DiffReader, from: Version | DiffSide, to: Version | DiffSide, rootPath = '/', after?: string,
): AsyncGenerator<DiffEntry> {
  const a = side(from)
  const b = side(to)
  const walk = new DiffWalk(meta, a.version, b.version)
  const parts = components(rootPath)
  const base = parts.length === 0 ? '' : '/' + parts.join('/')
  let cursor: string[] | undefined
  if (after !== undefined) {
    const cp = components(after)
    if (cp.length < parts.length || parts.some((p, i) => cp[i] !== p)) return
    cursor = cp.slice(parts.length)
  }
  const left = await walk.resolve(a.root ?? ROOT_INO, parts, a.version)
  const right = await walk.resolve(b.root ?? ROOT_INO, parts, b.version)
  yield* walk.node(base === '' ? '/' : base, left, right, cursor)
}

function side(s: Version | DiffSide): DiffSide {
  return typeof s === 'bigint' ? { version: s } : s
}

interface Child {
  name: string
  ino: Ino
  /** Resume position below this child (set on the child named by the cursor). */
  cursor?: string[]
}

class DiffWalk {
  private readonly lo: Version
  private readonly hi: Version

  constructor(private readonly meta: DiffReader, private readonly v1: Version, private readonly v2: Version) {
    this.lo = v1 <= v2 ? v1 : v2
    this.hi = v1 <= v2 ? v2 : v1
  }

  async resolve(root: Ino, parts: string[], asOf: Version): Promise<InodeAttrs | undefined> {
    let ino = root
    for (const name of parts) {
      const next = await this.meta.lookup(ino, name, asOf)
      if (next === undefined) return undefined
      ino = next
    }
    return this.meta.getInode(ino, asOf)
  }

  /**
   * Differences at `path` and below. `cursor` undefined: emit everything; [] : this node is the
   * resume point (emit only below it); [c, ...]: emit only what comes after c's subtree position.
   */
  async *node(path: string, a: InodeAttrs | undefined, b: InodeAttrs | undefined, cursor?: string[]): AsyncGenerator<DiffEntry> {
    const self = cursor === undefined
    const below = cursor === undefined || cursor.length === 0 ? undefined : cursor
    if (a === undefined && b === undefined) return
    if (a === undefined) {
      const nb = b as InodeAttrs
      if (self) yield { change: 'added', path, type: nb.type, sizeAfter: nb.size }
      if (nb.type === 'dir') yield* this.tree('added', path, nb.ino, this.v2, below)
      return
    }
    if (b === undefined) {
      if (self) yield { change: 'deleted', path, type: a.type, sizeBefore: a.size }
      if (a.type === 'dir') yield* this.tree('deleted', path, a.ino, this.v1, below)
      return
    }
    if (a.type !== b.type) {
      if (self) yield { change: 'modified', path, type: b.type, typeBefore: a.type, sizeBefore: a.size, sizeAfter: b.size }
      if (a.type === 'dir') yield* this.tree('deleted', path, a.ino, this.v1, below)
      if (b.type === 'dir') yield* this.tree('added', path, b.ino, this.v2, below)
      return
    }
    if (a.type === 'dir') {
      yield* this.dir(path, a, b, below)
      return
    }
    if (self && (await this.changed(a, b))) yield { change: 'modified', path, type: b.type, sizeBefore: a.size, sizeAfter: b.size }
  }

  /** Whole subtree added or deleted. */
  private async *tree(change: 'added' | 'deleted', path: string, dir: Ino, asOf: Version, cursor?: string[]): AsyncGenerator<DiffEntry> {
    for await (const e of this.list(dir, asOf, cursor)) {
      const attrs = await this.meta.getInode(e.ino, asOf)
      if (attrs === undefined) continue
      const p = join(path, e.name)
      if (e.cursor === undefined) {
        yield change === 'added'
          ? { change, path: p, type: attrs.type, sizeAfter: attrs.size }
          : { change, path: p, type: attrs.type, sizeBefore: attrs.size }
      }
      if (attrs.type === 'dir') yield* this.tree(change, p, attrs.ino, asOf, e.cursor === undefined || e.cursor.length === 0 ? undefined : e.cursor)
    }
  }

  /** A directory on both sides: its entries merge-joined by name. */
  private async *dir(path: string, a: InodeAttrs, b: InodeAttrs, cursor?: string[], untouched = false): AsyncGenerator<DiffEntry> {
    if (untouched || (a.ino === b.ino && (await this.untouched(b.ino)))) {
      // Same entries on both sides: list once.
      for await (const e of this.list(b.ino, this.v2, cursor)) yield* this.same(join(path, e.name), e)
      return
    }
    const left = this.list(a.ino, this.v1, cursor)[Symbol.asyncIterator]()
    const right = this.list(b.ino, this.v2, cursor)[Symbol.asyncIterator]()
    try {
      let l = await left.next()
      let r = await right.next()
      while (!l.done || !r.done) {
        const order = l.done ? 1 : r.done ? -1 : compareNames(l.value.name, r.value.name)
        if (order < 0) {
          const e = l.value as Child
          yield* this.node(join(path, e.name), await this.meta.getInode(e.ino, this.v1), undefined, e.cursor)
          l = await left.next()
        } else if (order > 0) {
          const e = r.value as Child
          yield* this.node(join(path, e.name), undefined, await this.meta.getInode(e.ino, this.v2), e.cursor)
          r = await right.next()
        } else {
          const el = l.value as Child
          const er = r.value as Child
          const cur = el.cursor ?? er.cursor
          if (el.ino === er.ino) yield* this.same(join(path, er.name), cur === undefined ? er : { ...er, cursor: cur })
          else yield* this.node(join(path, er.name), await this.meta.getInode(el.ino, this.v1), await this.meta.getInode(er.ino, this.v2), cur)
          l = await left.next()
          r = await right.next()
        }
      }
    } finally {
      await left.return?.(undefined)
      await right.return?.(undefined)
    }
  }

  /**
   * A child with the same inode on both sides: one versioned read (at the newer version) tells
   * whether it changed in between.
   */
  private async *same(path: string, e: Child): AsyncGenerator<DiffEntry> {
    const rec = await this.meta.getInodeVersioned(e.ino, this.hi)
    if (rec !== undefined && rec.version <= this.lo) {
      if (rec.attrs.type === 'dir') yield* this.dir(path, rec.attrs, rec.attrs, e.cursor === undefined || e.cursor.length === 0 ? undefined : e.cursor, true)
      return
    }
    const other = await this.meta.getInode(e.ino, this.lo)
    const [a, b] = this.v1 <= this.v2 ? [other, rec?.attrs] : [rec?.attrs, other]
    yield* this.node(path, a, b, e.cursor)
  }

  private async untouched(ino: Ino): Promise<boolean> {
    const rec = await this.meta.getInodeVersioned(ino, this.hi)
    return rec !== undefined && rec.version <= this.lo
  }

  private async changed(a: InodeAttrs, b: InodeAttrs): Promise<boolean> {
    if (a.type === 'symlink') return a.target !== b.target
    if (a.type !== 'file') return a.rdev !== b.rdev
    if (a.size !== b.size || a.mtimeNs !== b.mtimeNs) return true
    return !sameMap(await this.meta.getFileMap(a.ino, this.v1), await this.meta.getFileMap(b.ino, this.v2))
  }

  /** A directory's entries; with a cursor [c, ...rest], only c (resuming at rest) and what follows. */
  private async *list(dir: Ino, asOf: Version, cursor?: string[]): AsyncGenerator<Child> {
    if (cursor === undefined) {
      yield* this.meta.readdir(dir, asOf)
      return
    }
    const [name, ...rest] = cursor as [string, ...string[]]
    const hit = await this.meta.lookup(dir, name, asOf)
    if (hit !== undefined) yield { name, ino: hit, cursor: rest }
    yield* this.meta.readdir(dir, asOf, name)
  }
}

function join(dir: string, name: string): string {
  return dir === '/' ? `/${name}` : `${dir}/${name}`
}

/** Byte order of UTF-8 names: the order readdir lists them in. */
export function compareNames(x: string, y: string): number {
  return Buffer.compare(Buffer.from(x, 'utf8'), Buffer.from(y, 'utf8'))
}

function sameMap(x: FileMap | undefined, y: FileMap | undefined): boolean {
  if (x === undefined || y === undefined) return x === y
  if (x.kind === 'inline') return y.kind === 'inline' && x.data.equals(y.data)
  if (y.kind === 'inline') return false
  if (x.extents.length !== y.extents.length) return false
  return x.extents.every((e, i) => {
    const f = y.extents[i]
    return f !== undefined && f.id === e.id && f.offset === e.offset && f.length === e.length
  })
}
