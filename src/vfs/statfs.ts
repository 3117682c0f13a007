import type { MetaReader } from '../meta/meta.js'
import type { StatFs } from './vfs.js'

const U32 = 0xffffffff
const FREE_INODES = 0x7fffffff

/**
 * statfs for the mount: space is the block tier's (where new data lands). The binding carries
 * 32-bit fields, so the fragment size grows in powers of two until the block counts fit.
 */
export async function statfsOf(space: { free: number; total: number } | undefined, meta: MetaReader): Promise<StatFs> {
  const total = space?.total ?? 0
  const free = space?.free ?? 0
  let frsize = 4096
  while (total / frsize > U32) frsize *= 2
  const used = Number((await meta.getSys('nextIno'))?.readBigUInt64BE?.(0) ?? 0n)
  return {
    bsize: frsize, frsize, blocks: Math.floor(total / frsize), bfree: Math.floor(free / frsize), bavail: Math.floor(free / frsize),
    files: Math.min(U32, used + FREE_INODES), ffree: FREE_INODES, favail: FREE_INODES, namemax: 255,
  }
}
