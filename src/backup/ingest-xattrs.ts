import { TierfsError, type ErrorCode } from '../errors.js'
import type { Logger } from '../log.js'
import type { TierfsVfs } from '../vfs/tierfs-vfs.js'
import { dumpXattrs, missingXattrTools, type DumpResult, type XattrBlock } from './xattr-dump.js'

export type XattrVfs = Pick<TierfsVfs, 'setxattr' | 'getxattr' | 'listxattr' | 'removexattr'>

export interface IngestXattrsDeps {
  vfs: XattrVfs
  log: Logger
  /** A source entry whose xattrs could not be read or stored (the run counts and logs it, and goes on). */
  onError(src: string, err: unknown): void
  /** An entry (relative path) whose xattrs could not be read: its copy must not be recorded as complete. */
  onUnread(rel: string): void
}

/** Paths per getfattr, and their bytes (well under the kernel's argument limit). */
const BATCH_PATHS = 256
const BATCH_BYTES = 128 * 1024
/** What the store refuses to hold (a read-only virtual name, an oversized value): that xattr is skipped. */
const REFUSED = new Set<ErrorCode>(['PERM', 'NOT_SUPPORTED', 'NO_SPACE', 'RANGE'])
const GONE = 'No such file or directory'

/**
 * The user.* xattrs of an ingest: the run queues the entries it copied or visited (`add`), and
 * each `flush` reads the queued entries' xattrs from the source with one getfattr and makes their
 * copies under `destRoot` hold exactly those (setting what differs; for entries whose copy existed
 * before the run, also removing user.* names the source no longer has). A queue of `BATCH_PATHS`
 * paths is `full`: the run flushes it then, and before each manifest record is committed, so a
 * recorded file always has its xattrs. Without getfattr nothing is copied and `summary` says so.
 *
 * Entries are regular files and directories (Linux allows user.* on nothing else). A source entry
 * getfattr cannot read keeps its copy's xattrs as they are and goes to `onUnread` (a file is then
 * copied again by the next run); an xattr the store refuses (a read-only virtual name) goes to
 * `onError`; other store failures are thrown.
 */
export class IngestXattrs {
  private pending = new Map<string, boolean>()
  private pendingBytes = 0
  private missing: string | undefined
  private set = 0
  private removed = 0

  constructor(private readonly deps: IngestXattrsDeps, private readonly srcRoot: string, private readonly destRoot: string) {}

  /** Looks for getfattr once per run; logs a warning when it is missing. */
  async ready(workflow: string): Promise<void> {
    this.missing = await missingXattrTools(['getfattr'])
    if (this.missing !== undefined) this.deps.log.warn('ingest: xattrs are not copied', { workflow, why: this.missing })
  }

  /**
   * Queues a source entry (relative to the source root, '' for the root). `existed`: its copy was
   * there before this run, so it may hold xattrs the source no longer has (a new copy has none).
   */
  add(rel: string, existed: boolean): void {
    if (this.missing !== undefined || this.pending.has(rel)) return
    this.pending.set(rel, existed)
    this.pendingBytes += Buffer.byteLength(rel) + 1
  }

  get full(): boolean {
    return this.pending.size >= BATCH_PATHS || this.pendingBytes >= BATCH_BYTES
  }

  async flush(): Promise<void> {
    const batch = this.pending
    this.pending = new Map()
    this.pendingBytes = 0
    if (batch.size === 0) return
    const args = [...batch.keys()].map((rel) => (rel === '' ? '.' : rel))
    const seen = new Set<string>()
    let storeErr: unknown
    let result: DumpResult
    try {
      result = await dumpXattrs(this.srcRoot, args, async (b) => {
        const rel = b.path === '.' ? '' : b.path
        const existed = batch.get(rel)
        if (existed === undefined) return
        seen.add(rel)
        await this.apply(rel, b.attrs, existed).catch((err: unknown) => { storeErr = err; throw err })
      })
    } catch (err) {
      if (err === storeErr) throw err
      // getfattr itself failed: the copies keep their xattrs until a later run.
      this.deps.onError(this.srcRoot, err)
      for (const rel of batch.keys()) this.deps.onUnread(rel)
      return
    }
    for (const [path, message] of result.failed) {
      const rel = path === '.' ? '' : path
      seen.add(rel)
      this.deps.onUnread(rel)
      if (!message.startsWith(GONE)) this.deps.onError(this.src(rel), new Error(`getfattr: ${message}`))
    }
    for (const message of result.other) this.deps.onError(this.srcRoot, new Error(message))
    for (const [rel, existed] of batch) {
      if (existed && !seen.has(rel)) await this.apply(rel, [], true)
    }
  }

  /** "user.* copied (N set, M removed)", or why not. */
  summary(): string {
    return this.missing === undefined ? `user.* copied (${this.set} set, ${this.removed} removed)` : `not copied: ${this.missing}`
  }

  private async apply(rel: string, attrs: XattrBlock['attrs'], existed: boolean): Promise<void> {
    const { vfs } = this.deps
    const dest = rel === '' ? this.destRoot : this.destRoot === '/' ? `/${rel}` : `${this.destRoot}/${rel}`
    try {
      const had = existed ? (await vfs.listxattr(dest)).filter((n) => n.startsWith('user.')) : []
      for (const { name, value } of attrs) {
        if (had.includes(name) && (await vfs.getxattr(dest, name)).equals(value)) continue
        try {
          await vfs.setxattr(dest, name, value, 0)
          this.set++
        } catch (err) {
          if (!(err instanceof TierfsError) || !REFUSED.has(err.code)) throw err
          this.deps.onError(this.src(rel), err)
        }
      }
      for (const name of had) {
        if (attrs.some((a) => a.name === name)) continue
        await vfs.removexattr(dest, name)
        this.removed++
      }
    } catch (err) {
      // The copy is gone (its source vanished mid-run): the next run settles it.
      if (err instanceof TierfsError && err.code === 'NOT_FOUND') return
      throw err
    }
  }

  private src(rel: string): string {
    return rel === '' ? this.srcRoot : `${this.srcRoot}/${rel}`
  }
}
