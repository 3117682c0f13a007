import { TierfsError } from '../errors.js'
import type { Logger } from '../log.js'
import type { Meta } from '../meta/meta.js'
import type { PolicySet } from '../policy/decide.js'
import type { WorkflowSpec } from '../policy/policy-file.js'
import { diffVersions, type DiffEntry, type DiffSide } from './diff.js'
import { runIngest, type IngestVfs } from './ingest.js'
import { pointLabel, pointView, resolvePoint, type PointRef } from './point-ref.js'
import type { RestorePoints } from './restore-points.js'
import { BackupScheduler, type RunSummary, type WorkflowState } from './scheduler.js'

export type BackupServiceDeps = {
  meta: Meta
  vfs: IngestVfs & { getattr(path: string): Promise<{ ino: number }> }
  restorePoints: Pick<RestorePoints, 'create'>
  log: Logger
  /** Wall clock (ms), with any injected offset. */
  nowMs: () => number
  historyWindowMs: number
  /** Absolute paths an ingest never copies (the mount point, the store). */
  excludeFromIngest?: string[]
  /** Re-reads the policy files (a manual run uses the workflow as the files say now). */
  reloadPolicies?: () => Promise<void>
}

/** One page of a diff, as the `diff` control command answers. */
export interface DiffPage {
  from: string
  to: string
  /** Namespace paths of the views that show each side (what `tierfs restore` copies from). */
  fromView: string
  toView: string
  entries: DiffEntry[]
  /** Pass as `after` for the next page; absent on the last page. */
  next?: string
}

const PAGE = 1000
const MAX_PAGE = 10_000
const MAX_INODE_PATHS = 4096

/**
 * The backup engine inside the daemon: the scheduler of the policy set's workflows, what one run
 * does (restore point or ingest), and the control commands that need the metadata (diff, run,
 * state, inode numbers for restore's hard links). The daemon calls `start`/`stop` and
 * `setPolicies`; `handle` answers the commands it knows and returns undefined for the rest.
 */
export class BackupService {
  readonly scheduler: BackupScheduler

  constructor(private readonly deps: BackupServiceDeps) {
    this.scheduler = new BackupScheduler({ run: (wf, signal) => this.runWorkflow(wf, signal), log: deps.log, nowMs: deps.nowMs })
  }

  /** Takes the workflows (`backup:` sections) of a newly loaded policy set. */
  setPolicies(set: PolicySet): void {
    this.scheduler.update(set.policies.flatMap((p) => (p.backup === undefined ? [] : [p.backup])))
  }

  start(): void {
    this.scheduler.start()
  }

  stop(): Promise<void> {
    return this.scheduler.stop()
  }

  status(): WorkflowState[] {
    return this.scheduler.state()
  }

  /** One run of a workflow: a restore point of its source, or an ingest that ends with one. */
  async runWorkflow(wf: WorkflowSpec, signal?: AbortSignal): Promise<RunSummary> {
    const { deps } = this
    if (wf.source.kind === 'namespace') {
      const restorePoint = await deps.restorePoints.create(wf.name, wf.source.path)
      return { mode: 'snapshot', restorePoint }
    }
    const summary = await runIngest(
      { vfs: deps.vfs, meta: deps.meta, restorePoints: deps.restorePoints, log: deps.log, nowMs: deps.nowMs },
      { workflow: wf.name, dir: wf.source.dir, dest: wf.source.dest, exclude: deps.excludeFromIngest ?? [] },
      signal === undefined ? {} : { signal },
    )
    return { mode: 'ingest', ...summary }
  }

  /** Answers a backup control command, or returns undefined when `cmd` is not one. */
  handle(cmd: string, args: Record<string, unknown>): Promise<unknown> | undefined {
    switch (cmd) {
      case 'backup-run':
        return (async () => {
          await this.deps.reloadPolicies?.()
          return this.scheduler.runNow(str(args, 'workflow'))
        })()
      case 'backup-status':
        return Promise.resolve(this.status())
      case 'diff':
        return this.diffPage(args)
      case 'point':
        return this.point(str(args, 'point'))
      case 'inodes':
        return this.inodes(args.paths)
      default:
        return undefined
    }
  }

  private resolve(text: string): Promise<PointRef> {
    return resolvePoint({ meta: this.deps.meta, nowMs: this.deps.nowMs, historyWindowMs: this.deps.historyWindowMs }, text)
  }

  private async point(text: string): Promise<{ label: string; view: string; version: string }> {
    const p = await this.resolve(text)
    return { label: pointLabel(p), view: pointView(p), version: p.version.toString() }
  }

  /**
   * args: from, to (points), path (default /), after (resume), limit, rootOf (a point whose view
   * the paths must match, e.g. the source of a restore: its root applies to both sides).
   */
  private async diffPage(args: Record<string, unknown>): Promise<DiffPage> {
    const a = await this.resolve(str(args, 'from'))
    const b = await this.resolve(str(args, 'to'))
    const hint = typeof args.rootOf === 'string' ? await this.resolve(args.rootOf) : undefined
    // Paths are relative to one root on both sides: the root of `rootOf`'s view when given (the
    // namespace root for an instant), else each restore point's own root (an instant side takes
    // the other side's).
    const rootFor = (p: PointRef, other: PointRef): DiffSide => {
      const root = hint !== undefined
        ? (hint.kind === 'pin' ? hint.root : undefined)
        : p.kind === 'pin' ? p.root : other.kind === 'pin' ? other.root : undefined
      return root === undefined ? { version: p.version } : { version: p.version, root }
    }
    const limit = Math.min(MAX_PAGE, Math.max(1, Number(args.limit ?? PAGE) || PAGE))
    const path = typeof args.path === 'string' && args.path !== '' ? args.path : '/'
    const after = typeof args.after === 'string' ? args.after : undefined
    const entries: DiffEntry[] = []
    let more = false
    for await (const e of diffVersions(this.deps.meta, rootFor(a, b), rootFor(b, a), path, after)) {
      if (entries.length === limit) {
        more = true
        break
      }
      entries.push(e)
    }
    const page: DiffPage = { from: pointLabel(a), to: pointLabel(b), fromView: pointView(a), toView: pointView(b), entries }
    if (more) page.next = (entries.at(-1) as DiffEntry).path
    return page
  }

  /** Inode numbers of namespace paths (views included); hard links share one. Null: no such path. */
  private async inodes(paths: unknown): Promise<Array<number | null>> {
    if (!Array.isArray(paths) || paths.length > MAX_INODE_PATHS || !paths.every((p) => typeof p === 'string')) {
      throw TierfsError.invalid(`inodes: paths must be a list of at most ${MAX_INODE_PATHS} strings`)
    }
    return Promise.all((paths as string[]).map((p) => this.deps.vfs.getattr(p).then((s) => s.ino, () => null)))
  }
}

function str(args: Record<string, unknown>, key: string): string {
  const v = args[key]
  if (typeof v !== 'string' || v === '') throw new TierfsError('INVALID', `${key}: a non-empty string is required`)
  return v
}
