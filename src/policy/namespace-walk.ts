import { ROOT_INO, type Ino } from '../ids.js'
import type { AsOf, MetaReader } from '../meta/meta.js'
import type { InodeAttrs } from '../meta/types.js'

export interface WalkedFile {
  path: string
  attrs: InodeAttrs
}

/**
 * Every regular file of the namespace (as of `asOf`), depth first, with its path. Streams: memory
 * holds one open directory listing per level of depth, never the whole tree. A file with several
 * hard links is visited once per name (callers that move data dedupe by inode).
 */
export async function* walkFiles(meta: MetaReader, asOf?: AsOf, root: Ino = ROOT_INO, rootPath = '/'): AsyncIterable<WalkedFile> {
  const stack: Array<{ path: string; it: AsyncIterator<{ name: string; ino: Ino }> }> = [
    { path: rootPath === '/' ? '' : rootPath, it: meta.readdir(root, asOf)[Symbol.asyncIterator]() },
  ]
  while (stack.length > 0) {
    const top = stack[stack.length - 1] as (typeof stack)[number]
    const next = await top.it.next()
    if (next.done === true) {
      stack.pop()
      continue
    }
    const attrs = await meta.getInode(next.value.ino, asOf)
    if (attrs === undefined) continue
    const path = `${top.path}/${next.value.name}`
    if (attrs.type === 'dir') stack.push({ path, it: meta.readdir(attrs.ino, asOf)[Symbol.asyncIterator]() })
    else if (attrs.type === 'file') yield { path, attrs }
  }
}
