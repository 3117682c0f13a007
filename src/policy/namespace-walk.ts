import { ROOT_INO, type Ino } from '../ids.js'
import type { AsOf, MetaReader } from '../meta/meta.js'
import type { InodeAttrs } from '../meta/types.js'

export interface WalkedFile {
  path: string
  attrs: InodeAttrs
}

/** Directory entries whose inodes are read at once (the metadata store answers them in parallel). */
const BATCH = 128

interface Frame {
  path: string
  ino: Ino
  /** Opened when the frame is first on top, so pending directories hold no open iterator. */
  it?: AsyncIterator<{ name: string; ino: Ino }>
}

/**
 * Every regular file of the namespace (as of `asOf`) with its path, directory by directory, in no
 * particular order. Streams: memory holds, per level of depth, a batch of entries and the
 * directories found in it, never the whole tree. Inodes are read a batch at a time, concurrently:
 * one lookup after another would leave the metadata store's threads idle between them. A file
 * with several hard links is visited once per name (callers that move data dedupe by inode).
 */
export async function* walkFiles(meta: MetaReader, asOf?: AsOf, root: Ino = ROOT_INO, rootPath = '/'): AsyncIterable<WalkedFile> {
  const stack: Frame[] = [{ path: rootPath === '/' ? '' : rootPath, ino: root }]
  while (stack.length > 0) {
    const top = stack[stack.length - 1] as Frame
    top.it ??= meta.readdir(top.ino, asOf)[Symbol.asyncIterator]()
    const batch: Array<{ name: string; ino: Ino }> = []
    while (batch.length < BATCH) {
      const next = await top.it.next()
      if (next.done === true) break
      batch.push(next.value)
    }
    if (batch.length === 0) {
      stack.pop()
      continue
    }
    const attrs = await Promise.all(batch.map((e) => meta.getInode(e.ino, asOf)))
    for (let i = 0; i < batch.length; i++) {
      const a = attrs[i]
      if (a === undefined) continue
      const path = `${top.path}/${(batch[i] as { name: string }).name}`
      if (a.type === 'dir') stack.push({ path, ino: a.ino })
      else if (a.type === 'file') yield { path, attrs: a }
    }
  }
}
