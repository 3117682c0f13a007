import { ROOT_INO, type ChunkId, type Ino } from '../ids.js'
import type { AsOf, MetaReader } from '../meta/meta.js'
import { walkFiles } from '../policy/namespace-walk.js'
import { timeName } from '../snapshot/time-name.js'

/** Files whose data is gone, by path: in the current tree and in each restore point. */
export interface LostFiles {
  /** Paths from the root of the mount. */
  current: string[]
  /** Paths inside `/.snapshots/<workflow>/<name>/`; only restore points with losses are listed. */
  restorePoints: Array<{ workflow: string; name: string; files: string[] }>
}

/**
 * Finds the files that reference a lost chunk: walks the current tree and every restore point,
 * reading the filemap only of inodes in `suspects` (inodes with some filemap version that
 * references a lost chunk). Memory: the walk's stack and the paths found.
 */
export async function lostFiles(meta: MetaReader, lost: ReadonlySet<ChunkId>, suspects: ReadonlySet<Ino>): Promise<LostFiles> {
  const out: LostFiles = { current: [], restorePoints: [] }
  if (lost.size === 0) return out
  out.current = await lostIn(meta, lost, suspects, undefined, ROOT_INO)
  for await (const pin of meta.pins()) {
    const files = await lostIn(meta, lost, suspects, pin.version, pin.root ?? ROOT_INO)
    if (files.length > 0) out.restorePoints.push({ workflow: pin.workflow, name: timeName(pin.timeMs), files })
  }
  return out
}

async function lostIn(meta: MetaReader, lost: ReadonlySet<ChunkId>, suspects: ReadonlySet<Ino>, asOf: AsOf, root: Ino): Promise<string[]> {
  const paths: string[] = []
  for await (const f of walkFiles(meta, asOf, root)) {
    if (!suspects.has(f.attrs.ino)) continue
    const map = await meta.getFileMap(f.attrs.ino, asOf)
    if (map?.kind === 'extents' && map.extents.some((e) => lost.has(e.id))) paths.push(f.path)
  }
  return paths
}
