import { TierfsError } from '../errors.js'
import type { Ino } from '../ids.js'
import type { Meta } from '../meta/meta.js'
import { timeName } from '../snapshot/time-name.js'

export interface RestorePointInfo {
  workflow: string
  /** Directory name under /.snapshots/<workflow>/. */
  name: string
  timeMs: number
  version: string
  /** Directory of the namespace the restore point shows. */
  root: number
}

export type RestorePointDeps = {
  meta: Pick<Meta, 'begin' | 'pins' | 'head'>
  /** Seals closed files so the restore point holds everything written and closed before it. */
  sealAll: () => Promise<void>
  /** Resolves a live directory path to its inode (READ_ONLY/NOT_FOUND/NOT_DIR as the vfs says). */
  resolveDir: (path: string) => Promise<Ino>
  /** Forgets cached view lookups after a restore point disappears. */
  invalidateViews: () => void
  nowMs: () => number
}

const WORKFLOW_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/

/**
 * Restore points are pins of a committed metadata version: creating one is O(1) whatever the
 * number of files (a seal of closed files first, then one small commit); the tree stays readable
 * under /.snapshots/<workflow>/<time>/ until the pin is deleted and the collector drops versions
 * nothing else needs.
 */
export class RestorePoints {
  constructor(private readonly deps: RestorePointDeps) {}

  async create(workflow: string, path: string): Promise<RestorePointInfo> {
    checkWorkflow(workflow)
    const root = await this.deps.resolveDir(path)
    await this.deps.sealAll()
    const taken = new Set<number>()
    for await (const p of this.deps.meta.pins(workflow)) taken.add(p.timeMs)
    let timeMs = Math.floor(this.deps.nowMs() / 1000) * 1000
    while (taken.has(timeMs)) timeMs += 1000
    const version = this.deps.meta.head
    await this.deps.meta.begin().putPin({ workflow, timeMs, version, root }).commit({ sync: true })
    return { workflow, name: timeName(timeMs), timeMs, version: version.toString(), root }
  }

  async list(workflow?: string): Promise<RestorePointInfo[]> {
    if (workflow !== undefined) checkWorkflow(workflow)
    const out: RestorePointInfo[] = []
    for await (const p of this.deps.meta.pins(workflow)) {
      out.push({ workflow: p.workflow, name: timeName(p.timeMs), timeMs: p.timeMs, version: p.version.toString(), root: p.root ?? 1 })
    }
    return out.sort((a, b) => a.workflow.localeCompare(b.workflow) || a.timeMs - b.timeMs)
  }

  async delete(workflow: string, name: string): Promise<RestorePointInfo> {
    const found = (await this.list(workflow)).find((p) => p.name === name)
    if (found === undefined) throw TierfsError.notFound(`restore point ${workflow}/${name}`)
    await this.deps.meta.begin().deletePin(workflow, found.timeMs).commit({ sync: true })
    this.deps.invalidateViews()
    return found
  }
}

function checkWorkflow(name: string): void {
  if (!WORKFLOW_RE.test(name)) {
    throw new TierfsError('CONFIG', `workflow name ${JSON.stringify(name)}: use letters, digits, '.', '_' or '-' (max 128)`)
  }
}
