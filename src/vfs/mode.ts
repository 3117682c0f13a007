import type { NodeType } from '../meta/types.js'

export const S_IFMT = 0o170000
export const S_IFSOCK = 0o140000
export const S_IFLNK = 0o120000
export const S_IFREG = 0o100000
export const S_IFBLK = 0o060000
export const S_IFDIR = 0o040000
export const S_IFCHR = 0o020000
export const S_IFIFO = 0o010000
export const S_ISGID = 0o2000

const TYPE_BITS: Record<NodeType, number> = {
  file: S_IFREG, dir: S_IFDIR, symlink: S_IFLNK, fifo: S_IFIFO, socket: S_IFSOCK, chardev: S_IFCHR, blockdev: S_IFBLK,
}

export function typeBits(type: NodeType): number {
  return TYPE_BITS[type]
}

/** Node type from st_mode's type bits; regular file when none are set (mknod(2) semantics). */
export function typeOf(mode: number): NodeType {
  switch (mode & S_IFMT) {
    case S_IFDIR: return 'dir'
    case S_IFLNK: return 'symlink'
    case S_IFIFO: return 'fifo'
    case S_IFSOCK: return 'socket'
    case S_IFCHR: return 'chardev'
    case S_IFBLK: return 'blockdev'
    default: return 'file'
  }
}
