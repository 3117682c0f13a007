import { asIno, type Ino } from '../ids.js'
import type { Txn } from '../meta/meta.js'

/**
 * libfuse 2's high-level API (without hard_remove) does not unlink a file that is still open: it
 * renames it to `.fuse_hidden<node id><counter>` (16 hex digits) in the same directory and unlinks
 * that name after the last release. A crash in between would leave the name for good, so renames
 * to such a name are recorded in the sys space (in the rename's own transaction) and the names are
 * removed at the next start: no process can still hold a file open through an earlier daemon.
 */
const HIDDEN_NAME = /^\.fuse_hidden[0-9a-f]{16}$/
export const HIDDEN_PREFIX = 'hidden/'

export function isHiddenName(name: string): boolean {
  return HIDDEN_NAME.test(name)
}

export function hiddenKey(dir: Ino, name: string): string {
  return `${HIDDEN_PREFIX}${dir}/${name}`
}

export function parseHiddenKey(key: string): { dir: Ino; name: string } {
  const rest = key.slice(HIDDEN_PREFIX.length)
  const slash = rest.indexOf('/')
  return { dir: asIno(Number(rest.slice(0, slash))), name: rest.slice(slash + 1) }
}

/** Records (or forgets) hidden names a rename creates (or moves away from). */
export function noteRename(txn: Txn, srcDir: Ino, srcName: string, dstDir: Ino, dstName: string): void {
  if (isHiddenName(srcName)) txn.deleteSys(hiddenKey(srcDir, srcName))
  if (isHiddenName(dstName)) txn.putSys(hiddenKey(dstDir, dstName), Buffer.alloc(0))
}

/** Forgets a hidden name that is being removed. */
export function noteRemove(txn: Txn, dir: Ino, name: string): void {
  if (isHiddenName(name)) txn.deleteSys(hiddenKey(dir, name))
}
