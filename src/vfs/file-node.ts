import type { Ino } from '../ids.js'
import type { FileMap } from '../meta/types.js'
import type { StagedFile } from './staged-file.js'

/**
 * In-memory state of a file that is open, being written, or waiting to be sealed.
 * While `staging` is set, it holds the file's current bytes and `size`, `mtimeNs` and `ctimeNs`
 * here override the committed attributes.
 */
export class FileNode {
  handles = 0
  staging: StagedFile | undefined
  /** Resolves when staging exists (creation and materialisation run once). */
  stagingReady: Promise<StagedFile> | undefined
  size = 0
  mtimeNs = 0n
  ctimeNs = 0n
  /** Staging differs from the committed version. */
  dirty = false
  /** Bumped by every change to the staged bytes, before the change lands (commits of a
   *  snapshot compare it to tell whether they captured the latest bytes). */
  generation = 0
  /** Committed contents, loaded lazily for reads of sealed data. */
  map: FileMap | undefined
  /** The load of `map` under way (FileTable.mapOf). */
  mapLoad: Promise<FileMap> | undefined
  sealTimer: NodeJS.Timeout | undefined
  /** Set while a seal runs; opens wait for it. */
  sealing: Promise<void> | undefined
  /** Consecutive failed seals (backoff). */
  sealFailures = 0
  /** The last name is gone while handles were open: delete on last release. */
  orphan = false

  constructor(readonly ino: Ino) {}

  get idle(): boolean {
    return this.handles === 0 && !this.dirty && this.sealing === undefined && this.stagingReady === undefined
  }
}
