import { Lru } from '../chunk/lru.js'
import type { Ino, Version } from '../ids.js'
import type { MetaReader } from '../meta/meta.js'
import type { DirEntry, InodeAttrs } from '../meta/types.js'

/** What the reader reads through. */
export type ViewReaderMeta = Pick<MetaReader, 'getInode' | 'lookup' | 'readdir' | 'getXattr' | 'listXattrs' | 'listXattrsIn' | 'settled'>

/** Default bound: about 32 MiB, some 30,000 files with their entries and xattr names. */
export const VIEW_CACHE_BYTES = 32 * 1024 * 1024

type Value = InodeAttrs | Ino | readonly string[] | Buffer | null

// Heap bytes of an entry besides its key (the LRU's map slots and wrapper), then of values:
// measured on node 20, within about 25% (test/snapshot/view-reader.test.ts checks the bound).
const ENTRY_BYTES = 256
const ATTRS_BYTES = 200
const NAMES_BYTES = 32
const NAME_BYTES = 40
const BUFFER_BYTES = 100

const NO_NAMES: readonly string[] = Object.freeze([])

/**
 * A listing's xattr names are read by one scan over its inode numbers when they span at most
 * this many times as many numbers as there are entries (plus SPAN_SLACK): files written
 * together get neighbouring numbers, and a scan past a few others is cheaper than a seek each.
 */
const SPAN_PER_ENTRY = 4
const SPAN_SLACK = 64

/**
 * Reads of the namespace as of a version, for the read-only views, through one bounded LRU keyed
 * by (version, inode[, name]): inode attributes, directory entries (misses included), xattr
 * names and values. What a settled version (MetaReader.settled) shows never changes, so an entry
 * is valid for as long as the collector keeps its version, which a pin or the history window
 * guarantees; the owner clears the cache when a pin goes. Reads as of a version that is not
 * settled yet go to the store every time.
 *
 * Cached attributes and name lists are frozen and shared: callers read them, never change them;
 * xattr values are the reader's own copies and must not be written to either.
 * Memory: about `maxBytes` (entry weights estimate the heap bytes of key and value).
 */
export class ViewReader {
  private readonly lru: Lru<string, Value>

  constructor(private readonly meta: ViewReaderMeta, maxBytes = VIEW_CACHE_BYTES) {
    this.lru = new Lru<string, Value>(maxBytes)
  }

  /** Estimated bytes held. */
  get bytes(): number {
    return this.lru.weight
  }

  get entries(): number {
    return this.lru.size
  }

  clear(): void {
    this.lru.clear()
  }

  async getInode(ino: Ino, asOf: Version): Promise<InodeAttrs | undefined> {
    return this.cached(inodeKey(ino, asOf), asOf, async () => {
      const a = await this.meta.getInode(ino, asOf)
      return a === undefined ? undefined : Object.freeze(a)
    }, () => ATTRS_BYTES)
  }

  async lookup(parent: Ino, name: string, asOf: Version): Promise<Ino | undefined> {
    return this.cached(entryKey(parent, name, asOf), asOf, () => this.meta.lookup(parent, name, asOf), () => 0)
  }

  /**
   * The entries of a directory (MetaReader.readdir), each remembered for lookups; once the
   * listing is read to its end, the xattr names of its entries too (`cp -a` and `getfattr` ask
   * for every file's), by one scan when their inode numbers are close together.
   */
  async *readdir(parent: Ino, asOf: Version): AsyncIterable<DirEntry> {
    if (!this.meta.settled(asOf)) {
      yield* this.meta.readdir(parent, asOf)
      return
    }
    const inos: Ino[] = []
    for await (const e of this.meta.readdir(parent, asOf)) {
      this.put(entryKey(parent, e.name, asOf), e.ino, 0)
      inos.push(e.ino)
      yield e
    }
    await this.prefetchXattrNames(inos, asOf)
  }

  private async prefetchXattrNames(inos: Ino[], asOf: Version): Promise<void> {
    if (inos.length < 2) return
    let first = inos[0] as Ino
    let last = first
    for (const ino of inos) {
      if (ino < first) first = ino
      if (ino > last) last = ino
    }
    if (last - first + 1 > SPAN_PER_ENTRY * inos.length + SPAN_SLACK) return
    const found = new Map<Ino, string[]>()
    for await (const { ino, name } of this.meta.listXattrsIn(first, last, asOf)) {
      const names = found.get(ino)
      if (names === undefined) found.set(ino, [name])
      else names.push(name)
    }
    for (const ino of inos) {
      const names = frozenNames(found.get(ino) ?? [])
      this.put(namesKey(ino, asOf), names, namesBytes(names))
    }
  }

  async listXattrs(ino: Ino, asOf: Version): Promise<readonly string[]> {
    const names = await this.cached(namesKey(ino, asOf), asOf, async () => frozenNames(await this.meta.listXattrs(ino, asOf)), namesBytes)
    return names ?? NO_NAMES
  }

  async getXattr(ino: Ino, name: string, asOf: Version): Promise<Buffer | undefined> {
    return this.cached(valueKey(ino, name, asOf), asOf, async () => {
      const value = await this.meta.getXattr(ino, name, asOf)
      // A copy: the store's buffer may be a slice of a larger one.
      return value === undefined ? undefined : Buffer.from(value)
    }, (v) => BUFFER_BYTES + v.length)
  }

  /** A cached value, or `read()`'s, kept (weighing `bytes` of it) when `asOf` is settled. */
  private async cached<T extends Value>(key: string, asOf: Version, read: () => Promise<T | undefined>, bytes: (v: T) => number): Promise<T | undefined> {
    const hit = this.lru.get(key) as T | null | undefined
    if (hit !== undefined) return hit ?? undefined
    if (!this.meta.settled(asOf)) return read()
    const value = await read()
    this.put(key, value ?? null, value === undefined ? 0 : bytes(value))
    return value
  }

  private put(key: string, value: Value, valueBytes: number): void {
    // Weighed with its key: keys vary with names.
    this.lru.set(key, value, ENTRY_BYTES + key.length + valueBytes)
  }
}

function frozenNames(names: string[]): readonly string[] {
  return names.length === 0 ? NO_NAMES : Object.freeze(names)
}

function namesBytes(names: readonly string[]): number {
  return names.length === 0 ? 0 : names.reduce((n, s) => n + NAME_BYTES + s.length, NAMES_BYTES)
}

function inodeKey(ino: Ino, asOf: Version): string {
  return `i${asOf}/${ino}`
}

function entryKey(parent: Ino, name: string, asOf: Version): string {
  return `d${asOf}/${parent}/${name}`
}

function namesKey(ino: Ino, asOf: Version): string {
  return `x${asOf}/${ino}`
}

function valueKey(ino: Ino, name: string, asOf: Version): string {
  return `v${asOf}/${ino}/${name}`
}
