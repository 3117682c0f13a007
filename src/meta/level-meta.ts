import { mkdir, realpath } from 'node:fs/promises'
import { Level } from 'level'
import { TierfsError } from '../errors.js'
import { asIno, asTierId, asVersion, ROOT_INO, type ChunkId, type Ino, type PackId, type Version } from '../ids.js'
import { HybridClock, versionMs } from './clock.js'
import { collectPass } from './collect-pass.js'
import { buildCommitBatch } from './commit-batch.js'
import {
  chunkIdOf, chunkKey, dentryKey, dentryName, dentryRange, filemapKey, inodeKey, inoOfKey, keyVersion, MAX_INO,
  packIdOf, packKey, parsePinKey, pinRange, prefixEnd, SPACE, SYS_FORMAT, SYS_INO, SYS_VERSION, sysKey, xattrKey,
  xattrName, xattrRange,
} from './keys.js'
import { dentryCacheKey, LevelTxn, type CacheKey, type CacheValue, type TxnOp } from './level-txn.js'
import { LruCache } from './lru-cache.js'
import type { AsOf, CollectOptions, CollectResult, FileMapRow, Meta, MetaDump, Txn } from './meta.js'
import {
  DEAD, decodeChunk, decodeDentry, decodeFileMap, decodeInode, decodePack, decodePin, decodeXattr, encodeInode, fileMapChunkIds, isTombstone,
} from './record-codec.js'
import type { IteratorOptions, RootDb, Spaces } from './space.js'
import type { ChunkRecord, DirEntry, FileMap, InodeAttrs, PackRecord, Pin } from './types.js'
import { readVersion, readVersionStamped, scanVisible } from './version-scan.js'

/**
 * On-disk format of the key schema and records; bumped on incompatible change. 2 added the
 * dead index (keys.ts); a format-1 store is upgraded when opened (see upgradeDeadIndex).
 */
export const FORMAT_VERSION = 2
/** Formats this build opens (older ones are upgraded in place). */
export const READABLE_FORMATS: readonly number[] = [1, 2]

export interface LevelMetaOptions {
  /** Directory of the LevelDB database (created when missing). */
  path: string
  /** Entries of the hot cache of current inodes and dentries (default 200,000). */
  cacheEntries?: number
  /** Wall clock in ms (default Date.now); versions follow it. */
  now?: () => number
  /** Deletes per garbage-collection batch; the commit lock is released between batches (10,000). */
  collectBatchOps?: number
}

type SpaceName = keyof Spaces

/**
 * Stores open in this process, by real path. LevelDB's own in-process check closes a descriptor
 * of the LOCK file when it refuses a second open, and closing any descriptor drops the process's
 * fcntl lock: after that another process could open the store too. So a second open in this
 * process is refused here, before LevelDB sees it.
 */
const openPaths = new Set<string>()
type State = 'new' | 'opening' | 'open' | 'closing' | 'closed'

function mapOpenError(err: unknown, path: string): TierfsError {
  for (let e = err as { code?: unknown; cause?: unknown } | undefined; e !== undefined && e !== null; e = e.cause as typeof e) {
    if (e.code === 'LEVEL_LOCKED') {
      return new TierfsError('LOCKED', `metadata store ${path} is in use by another process`, { cause: err, detail: { path } })
    }
  }
  return new TierfsError('STORE', `cannot open metadata store ${path}: ${(err as Error)?.message ?? String(err)}`, {
    cause: err, detail: { path },
  })
}

/**
 * The metadata store on one LevelDB (`level`): versioned namespace spaces, plain chunk, pack, pin
 * and sys spaces (layout in keys.ts), a hot LRU cache of current inodes and dentries, and one
 * commit lock that orders versions and serializes read-modify-write updates.
 */
export class LevelMeta implements Meta {
  private readonly path: string
  private readonly now: () => number
  private readonly collectBatchOps: number
  private readonly cache: LruCache<CacheKey, CacheValue>
  /** Reads in flight per cache key; a commit marks them stale so they do not fill the cache. */
  private readonly inflight = new Map<CacheKey, { readers: number; stale: boolean }>()
  private db: RootDb | undefined
  private realPath: string | undefined
  private sp!: Spaces
  private clock: HybridClock
  private headVersion = 0n
  private pinChanges = 0
  /** Commits between their start and their cache update (see readdir's cache fill). */
  private applying = 0
  private nextIno = 2
  private persistedIno = 1
  private lock: Promise<unknown> = Promise.resolve()
  private collecting: Promise<unknown> = Promise.resolve()
  private state: State = 'new'
  private opening: Promise<void> | undefined
  private closing: Promise<void> | undefined

  constructor(opts: LevelMetaOptions) {
    this.path = opts.path
    this.now = opts.now ?? Date.now
    this.collectBatchOps = opts.collectBatchOps ?? 10_000
    this.cache = new LruCache(opts.cacheEntries ?? 200_000)
    this.clock = new HybridClock({ now: this.now })
  }

  get head(): Version {
    return asVersion(this.headVersion)
  }

  get pinStamp(): number {
    return this.pinChanges
  }

  ready(): Promise<void> {
    if (this.state === 'closing' || this.state === 'closed') return Promise.reject(this.closedError())
    this.opening ??= this.open().catch((err: unknown) => {
      this.opening = undefined
      if (this.state === 'opening') this.state = 'new'
      throw err
    })
    return this.opening
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      const opening = this.opening
      this.state = 'closing'
      if (opening !== undefined) await opening.catch(() => undefined)
      await this.collecting.catch(() => undefined)
      await this.lock.catch(() => undefined)
      await this.db?.close()
      this.release()
      this.cache.clear()
      this.state = 'closed'
    })()
    return this.closing
  }

  private async open(): Promise<void> {
    this.state = 'opening'
    let real: string
    try {
      await mkdir(this.path, { recursive: true })
      real = await realpath(this.path)
    } catch (err) {
      throw mapOpenError(err, this.path)
    }
    if (openPaths.has(real)) {
      throw new TierfsError('LOCKED', `metadata store ${this.path} is already open in this process`, { detail: { path: this.path } })
    }
    openPaths.add(real)
    this.realPath = real
    const db: RootDb = new Level<Buffer, Buffer>(real, { keyEncoding: 'buffer', valueEncoding: 'buffer' })
    try {
      await db.open()
    } catch (err) {
      this.release()
      throw mapOpenError(err, this.path)
    }
    this.db = db
    const sp = {} as Spaces
    for (const name of Object.keys(SPACE) as SpaceName[]) {
      sp[name] = db.sublevel<Buffer, Buffer>(SPACE[name], { keyEncoding: 'buffer', valueEncoding: 'buffer' })
    }
    this.sp = sp
    try {
      const format = await sp.sys.get(sysKey(SYS_FORMAT))
      let fresh = false
      if (format === undefined) {
        const any = await db.keys({ limit: 1 }).all()
        if (any.length > 0) throw new TierfsError('STORE', `${this.path} is not a tierfs metadata store (no format record)`)
        fresh = true
      } else if (format.length !== 1 || !READABLE_FORMATS.includes(format[0]!)) {
        throw new TierfsError('STORE', `metadata store ${this.path} has unknown format version ${format.toString('hex')}`, {
          detail: { path: this.path, format: format.toString('hex') },
        })
      }
      const last = await sp.sys.get(sysKey(SYS_VERSION))
      const ino = await sp.sys.get(sysKey(SYS_INO))
      const lastVersion = last === undefined ? 0n : last.readBigUInt64BE(0)
      this.clock = new HybridClock({ now: this.now, last: lastVersion })
      this.headVersion = lastVersion
      this.persistedIno = ino === undefined ? 1 : ino.readUInt32BE(0)
      this.nextIno = Math.max(this.persistedIno, 1) + 1
      if (fresh) await this.locked(() => this.apply(this.rootOps(), true))
      else if (format![0]! < FORMAT_VERSION) await upgradeDeadIndex(db, sp)
      if (this.state !== 'opening') throw this.closedError()
      this.state = 'open'
    } catch (err) {
      this.db = undefined
      await db.close()
      this.release()
      if (err instanceof TierfsError) throw err
      const message = `cannot read metadata store ${this.path}: ${(err as Error)?.message ?? String(err)}`
      throw new TierfsError('STORE', message, { cause: err, detail: { path: this.path } })
    }
  }

  private rootOps(): TxnOp[] {
    const ns = BigInt(Math.floor(this.now())) * 1_000_000n
    const root: InodeAttrs = {
      ino: ROOT_INO, type: 'dir', mode: 0o755, uid: 0, gid: 0, size: 0, blocks: 0, nlink: 2, rdev: 0,
      atimeNs: ns, mtimeNs: ns, ctimeNs: ns, btimeNs: ns, tier: asTierId('block'),
    }
    return [
      { t: 'version', space: 'inode', key: inodeKey(ROOT_INO), value: encodeInode(root), cacheKey: ROOT_INO, cacheValue: root },
      { t: 'plain', space: 'sys', key: sysKey(SYS_FORMAT), value: Buffer.from([FORMAT_VERSION]) },
    ]
  }

  private release(): void {
    if (this.realPath !== undefined) openPaths.delete(this.realPath)
    this.realPath = undefined
  }

  private closedError(): TierfsError {
    return new TierfsError('CLOSED', `metadata store ${this.path} is not open`)
  }

  private assertOpen(): void {
    if (this.state !== 'open') throw this.closedError()
  }

  /** Any failure of the store below becomes a TierfsError (CLOSED once closing). */
  private fail(err: unknown, what: string): TierfsError {
    if (err instanceof TierfsError) return err
    if (this.state === 'closing' || this.state === 'closed') return new TierfsError('CLOSED', `${what}: store closed`, { cause: err })
    return TierfsError.io(`${what}: ${(err as Error)?.message ?? String(err)}`, err)
  }

  // Reads

  async getInode(ino: Ino, asOf?: AsOf): Promise<InodeAttrs | undefined> {
    this.assertOpen()
    if (asOf === undefined) {
      const hit = this.cache.get(ino)
      if (hit !== undefined) return hit === null ? undefined : { ...(hit as InodeAttrs) }
    }
    const key = inodeKey(ino)
    const read = async (): Promise<InodeAttrs | null> => {
      const value = await readVersion(this.sp.inode, key, asOf)
      return value === undefined ? null : decodeInode(ino, value)
    }
    try {
      const attrs = asOf === undefined ? await this.readThrough(ino, read) : await read()
      return attrs === null ? undefined : { ...attrs }
    } catch (err) {
      throw this.fail(err, `read inode ${ino}`)
    }
  }

  async getInodeVersioned(ino: Ino, asOf?: AsOf): Promise<{ attrs: InodeAttrs; version: Version } | undefined> {
    this.assertOpen()
    try {
      const row = await readVersionStamped(this.sp.inode, inodeKey(ino), asOf)
      return row === undefined ? undefined : { attrs: decodeInode(ino, row.value), version: asVersion(row.version) }
    } catch (err) {
      throw this.fail(err, `read inode ${ino}`)
    }
  }

  async lookup(parent: Ino, name: string, asOf?: AsOf): Promise<Ino | undefined> {
    this.assertOpen()
    const ck = dentryCacheKey(parent, name)
    if (asOf === undefined) {
      const hit = this.cache.get(ck)
      if (hit !== undefined) return hit === null ? undefined : (hit as Ino)
    }
    const key = dentryKey(parent, name)
    const read = async (): Promise<Ino | null> => {
      const value = await readVersion(this.sp.dentry, key, asOf)
      return value === undefined ? null : decodeDentry(value)
    }
    try {
      const ino = asOf === undefined ? await this.readThrough(ck, read) : await read()
      return ino ?? undefined
    } catch (err) {
      throw this.fail(err, `lookup ${parent}/${name}`)
    }
  }

  /** Reads a current record and fills the cache, unless a commit touched the key meanwhile. */
  private async readThrough<T extends CacheValue>(ck: CacheKey, read: () => Promise<T>): Promise<T> {
    let flight = this.inflight.get(ck)
    if (flight === undefined) {
      flight = { readers: 0, stale: false }
      this.inflight.set(ck, flight)
    }
    flight.readers++
    try {
      const value = await read()
      if (!flight.stale && this.state === 'open') this.cache.set(ck, value)
      return value
    } finally {
      if (--flight.readers === 0 && this.inflight.get(ck) === flight) this.inflight.delete(ck)
    }
  }

  /**
   * See MetaReader.readdir. A listing of the present also fills the dentry cache (the lookup of
   * each name that usually follows, as in `ls -l` or `cp -a`, then needs no read), but only while
   * no commit has run since the scan began: then what the scan sees is what is current.
   */
  async *readdir(parent: Ino, asOf?: AsOf, after?: string): AsyncIterable<DirEntry> {
    this.assertOpen()
    const range = dentryRange(parent, after)
    const head = asOf === undefined && this.applying === 0 ? this.headVersion : undefined
    try {
      for await (const [logical, value] of scanVisible(this.sp.dentry, range, asOf)) {
        const e = { name: dentryName(logical), ino: decodeDentry(value) }
        if (head !== undefined && head === this.headVersion && this.applying === 0) this.cache.set(dentryCacheKey(parent, e.name), e.ino)
        yield e
      }
    } catch (err) {
      throw this.fail(err, `readdir ${parent}`)
    }
  }

  async hasChildren(parent: Ino, asOf?: AsOf): Promise<boolean> {
    for await (const _ of this.readdir(parent, asOf)) return true
    return false
  }

  async getFileMap(ino: Ino, asOf?: AsOf): Promise<FileMap | undefined> {
    this.assertOpen()
    try {
      const value = await readVersion(this.sp.filemap, filemapKey(ino), asOf)
      return value === undefined ? undefined : decodeFileMap(value)
    } catch (err) {
      throw this.fail(err, `read file map ${ino}`)
    }
  }

  async getXattr(ino: Ino, name: string, asOf?: AsOf): Promise<Buffer | undefined> {
    this.assertOpen()
    try {
      const value = await readVersion(this.sp.xattr, xattrKey(ino, name), asOf)
      return value === undefined ? undefined : decodeXattr(value)
    } catch (err) {
      throw this.fail(err, `read xattr ${ino} ${name}`)
    }
  }

  async listXattrs(ino: Ino, asOf?: AsOf): Promise<string[]> {
    this.assertOpen()
    const names: string[] = []
    try {
      for await (const [logical] of scanVisible(this.sp.xattr, xattrRange(ino), asOf)) names.push(xattrName(logical))
    } catch (err) {
      throw this.fail(err, `list xattrs ${ino}`)
    }
    return names
  }

  async *listXattrsIn(first: Ino, last: Ino, asOf?: AsOf): AsyncIterable<{ ino: Ino; name: string }> {
    this.assertOpen()
    try {
      for await (const [logical] of scanVisible(this.sp.xattr, xattrRange(first, last), asOf)) yield { ino: inoOfKey(logical), name: xattrName(logical) }
    } catch (err) {
      throw this.fail(err, `list xattrs ${first}..${last}`)
    }
  }

  async getChunk(id: ChunkId): Promise<ChunkRecord | undefined> {
    this.assertOpen()
    const key = chunkKey(id)
    try {
      const value = await this.sp.chunk.get(key)
      return value === undefined ? undefined : decodeChunk(id, value)
    } catch (err) {
      throw this.fail(err, `read chunk ${id}`)
    }
  }

  async getChunks(ids: readonly ChunkId[]): Promise<Array<ChunkRecord | undefined>> {
    this.assertOpen()
    if (ids.length === 0) return []
    try {
      const values = await this.sp.chunk.getMany(ids.map((id) => chunkKey(id)))
      return values.map((value, i) => (value === undefined ? undefined : decodeChunk(ids[i]!, value)))
    } catch (err) {
      throw this.fail(err, `read ${ids.length} chunks`)
    }
  }

  async getPack(id: PackId): Promise<PackRecord | undefined> {
    this.assertOpen()
    const key = packKey(id)
    try {
      const value = await this.sp.pack.get(key)
      return value === undefined ? undefined : decodePack(id, value)
    } catch (err) {
      throw this.fail(err, `read pack ${id}`)
    }
  }

  async *chunks(): AsyncIterable<ChunkRecord> {
    this.assertOpen()
    try {
      for await (const [key, value] of this.sp.chunk.iterator()) yield decodeChunk(chunkIdOf(key), value)
    } catch (err) {
      throw this.fail(err, 'list chunks')
    }
  }

  async *deadChunks(opts: { batch?: number } = {}): AsyncIterable<ChunkId[]> {
    this.assertOpen()
    const it = this.sp.dead.keys({ fillCache: false } as IteratorOptions)
    try {
      for (;;) {
        const keys = await it.nextv(opts.batch ?? 1024)
        if (keys.length === 0) break
        yield keys.map((k) => chunkIdOf(k))
      }
    } catch (err) {
      throw this.fail(err, 'list dead chunks')
    } finally {
      await it.close()
    }
  }

  async *packs(): AsyncIterable<PackRecord> {
    this.assertOpen()
    try {
      for await (const [key, value] of this.sp.pack.iterator()) yield decodePack(packIdOf(key), value)
    } catch (err) {
      throw this.fail(err, 'list packs')
    }
  }

  async *fileMapVersions(): AsyncIterable<{ ino: Ino; version: Version; map: FileMap }> {
    this.assertOpen()
    const opts: IteratorOptions = { highWaterMarkBytes: 256 * 1024 }
    try {
      for await (const [key, value] of this.sp.filemap.iterator(opts)) {
        if (!isTombstone(value)) yield { ino: inoOfKey(key), version: keyVersion(key), map: decodeFileMap(value) }
      }
    } catch (err) {
      throw this.fail(err, 'list file map versions')
    }
  }

  async *fileMapRows(from?: Ino): AsyncIterable<FileMapRow> {
    this.assertOpen()
    const opts: IteratorOptions = { highWaterMarkBytes: 256 * 1024, fillCache: false, ...(from === undefined ? {} : { gte: filemapKey(from) }) }
    try {
      for await (const [key, value] of this.sp.filemap.iterator(opts)) {
        yield { ino: inoOfKey(key), version: keyVersion(key), tombstone: isTombstone(value), chunkIds: () => fileMapChunkIds(value) }
      }
    } catch (err) {
      throw this.fail(err, 'list file map rows')
    }
  }

  async *inodes(asOf?: AsOf): AsyncIterable<InodeAttrs> {
    this.assertOpen()
    try {
      for await (const [logical, value] of scanVisible(this.sp.inode, {}, asOf, false)) yield decodeInode(inoOfKey(logical), value)
    } catch (err) {
      throw this.fail(err, 'list inodes')
    }
  }

  async *pins(workflow?: string): AsyncIterable<Pin> {
    this.assertOpen()
    try {
      for await (const [key, value] of this.sp.pin.iterator(pinRange(workflow))) {
        const { workflow: wf, timeMs } = parsePinKey(key)
        yield decodePin(wf, timeMs, value)
      }
    } catch (err) {
      throw this.fail(err, 'list pins')
    }
  }

  async getSys(name: string): Promise<Buffer | undefined> {
    this.assertOpen()
    try {
      return await this.sp.sys.get(sysKey(name))
    } catch (err) {
      throw this.fail(err, `read sys ${name}`)
    }
  }

  async sysNames(prefix: string): Promise<string[]> {
    this.assertOpen()
    const gte = sysKey(prefix)
    const lt = prefixEnd(gte)
    const names: string[] = []
    try {
      for await (const key of this.sp.sys.keys(lt === undefined ? { gte } : { gte, lt })) names.push(key.toString('utf8'))
    } catch (err) {
      throw this.fail(err, `list sys ${prefix}`)
    }
    return names
  }

  // Writes

  begin(): Txn {
    this.assertOpen()
    return new LevelTxn((ops, sync) => {
      if (this.state !== 'open') return Promise.reject(this.closedError())
      return this.locked(() => this.apply(ops, sync))
    })
  }

  allocIno(): Ino {
    this.assertOpen()
    if (this.nextIno > MAX_INO) throw new TierfsError('NO_SPACE', 'inode numbers exhausted')
    return asIno(this.nextIno++)
  }

  versionAt(ms: number): Version {
    return this.clock.versionAt(ms)
  }

  settled(v: Version): boolean {
    if (v <= this.headVersion) return true
    // clock.last above the head: a commit holds a version it has not made visible yet.
    return this.clock.last === this.headVersion && versionMs(v) < Math.floor(this.clock.nowMs())
  }

  private locked<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.lock.then(fn)
    this.lock = run.catch(() => undefined)
    return run
  }

  /** Commits a transaction as one batch under a new version. Runs under the commit lock. */
  private async apply(ops: readonly TxnOp[], sync: boolean): Promise<Version> {
    this.applying++
    try {
      return await this.applyNow(ops, sync)
    } finally {
      this.applying--
    }
  }

  private async applyNow(ops: readonly TxnOp[], sync: boolean): Promise<Version> {
    const version = this.clock.next()
    const allocated = this.nextIno - 1
    let cacheSets: Array<[CacheKey, CacheValue]>
    try {
      const built = await buildCommitBatch(this.sp, ops, version)
      cacheSets = built.cacheSets
      const batch = built.batch
      if (allocated > this.persistedIno) {
        const b = Buffer.allocUnsafe(4)
        b.writeUInt32BE(allocated)
        batch.push({ type: 'put', sublevel: this.sp.sys, key: sysKey(SYS_INO), value: b })
      }
      const vb = Buffer.allocUnsafe(8)
      vb.writeBigUInt64BE(version)
      batch.push({ type: 'put', sublevel: this.sp.sys, key: sysKey(SYS_VERSION), value: vb })
      await this.db!.batch(batch, { sync })
    } catch (err) {
      throw this.fail(err, 'commit')
    }
    if (allocated > this.persistedIno) this.persistedIno = allocated
    this.headVersion = version
    if (ops.some((op) => op.t === 'plain' && op.space === 'pin')) this.pinChanges++
    for (const [ck, value] of cacheSets) {
      this.cache.set(ck, value)
      const flight = this.inflight.get(ck)
      if (flight !== undefined) flight.stale = true
    }
    return version
  }

  // Checkpoints

  /**
   * See Meta.dump. One explicit LevelDB snapshot (classic-level `db.snapshot()`) serves the read
   * of the head version and the iterator over all rows, so both see the same sequence number.
   * Every commit is one LevelDB write batch, which a snapshot holds entirely or not at all: the
   * dump never tears a transaction, whatever commits run while it is read. LevelDB keeps the
   * rows the snapshot sees (compaction cannot drop them) until `close()`: disk, not memory.
   */
  async dump(): Promise<MetaDump> {
    this.assertOpen()
    const db = this.db!
    const snapshot = db.snapshot()
    let head: Version
    try {
      const v = await this.sp.sys.get(sysKey(SYS_VERSION), { snapshot })
      head = asVersion(v === undefined ? 0n : v.readBigUInt64BE(0))
    } catch (err) {
      await snapshot.close()
      throw this.fail(err, 'dump')
    }
    let iterated = false
    const fail = (err: unknown): TierfsError => this.fail(err, 'dump')
    return {
      head,
      async *rows() {
        if (iterated) throw TierfsError.internal('a metadata dump can be iterated once')
        iterated = true
        const it = db.iterator({ snapshot, fillCache: false, highWaterMarkBytes: 256 * 1024 } as IteratorOptions)
        try {
          for (;;) {
            const rows = await it.nextv(1024)
            if (rows.length === 0) return
            yield* rows
          }
        } catch (err) {
          throw fail(err)
        } finally {
          await it.close()
        }
      },
      close: () => snapshot.close(),
    }
  }

  // Garbage collection

  /**
   * See Meta.collect. `horizon` above the head counts as the head (a pin made during the pass
   * sees the versions current then). Pins are read when the pass starts: a pin made during the
   * pass for a version older than `horizon` is not protected.
   */
  collect(horizon: Version, opts: CollectOptions = {}): Promise<CollectResult> {
    if (this.state !== 'open') return Promise.reject(this.closedError())
    const ignored = new Set((opts.ignorePins ?? []).map((p) => `${p.workflow}\0${p.timeMs}`))
    const run = this.collecting.then(async () => {
      this.assertOpen()
      const pins = new Set<bigint>()
      for await (const pin of this.pins()) if (!ignored.has(`${pin.workflow}\0${pin.timeMs}`)) pins.add(pin.version)
      try {
        return await collectPass({
          spaces: this.sp,
          head: this.headVersion,
          pins: [...pins].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0)),
          locked: (fn) => this.locked(fn),
          write: (ops) => this.db!.batch(ops),
          aborted: () => this.state !== 'open',
          batchOps: this.collectBatchOps,
          dryRun: opts.dryRun === true,
        }, horizon)
      } catch (err) {
        throw this.fail(err, 'collect')
      }
    })
    this.collecting = run.catch(() => undefined)
    return run
  }
}

/**
 * Format 1 -> 2: builds the dead index from one pass over the chunk index (an entry for every
 * record with refs 0), then records format 2. Runs at open, before anything else writes; a crash
 * part way leaves format 1, and the next open builds it again (the puts are idempotent).
 */
async function upgradeDeadIndex(db: RootDb, sp: Spaces): Promise<void> {
  const it = sp.chunk.iterator({ fillCache: false, highWaterMarkBytes: 1 << 20 } as IteratorOptions)
  try {
    for (;;) {
      const rows = await it.nextv(4096)
      if (rows.length === 0) break
      const ops = rows.filter(([key, value]) => decodeChunk(chunkIdOf(key), value).refs === 0)
        .map(([key]) => ({ type: 'put' as const, sublevel: sp.dead, key, value: DEAD }))
      if (ops.length > 0) await db.batch(ops)
    }
  } finally {
    await it.close()
  }
  await db.batch([{ type: 'put', sublevel: sp.sys, key: sysKey(SYS_FORMAT), value: Buffer.from([FORMAT_VERSION]) }], { sync: true })
}
