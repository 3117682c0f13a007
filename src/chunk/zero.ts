const ZEROS = Buffer.alloc(64 * 1024)

/** True when every byte of `data` is zero (holes and zero-filled regions). */
export function isAllZero(data: Buffer): boolean {
  for (let off = 0; off < data.length; off += ZEROS.length) {
    const n = Math.min(ZEROS.length, data.length - off)
    if (ZEROS.compare(data, off, off + n, 0, n) !== 0) return false
  }
  return true
}

/** Granularity of `dataBlocks`: a local filesystem's block. */
const PAGE = 4096

/**
 * 512-byte blocks a local filesystem would allocate for `data` written at a page-aligned offset:
 * every 4 KiB page that holds a non-zero byte counts whole (the last one as far as it goes), zero
 * pages count nothing, as holes. st_blocks of a sparse file stays small after it is sealed.
 */
export function dataBlocks(data: Buffer): number {
  let blocks = 0
  for (let off = 0; off < data.length; off += PAGE) {
    const n = Math.min(PAGE, data.length - off)
    if (ZEROS.compare(data, off, off + n, 0, n) !== 0) blocks += Math.ceil(n / 512)
  }
  return blocks
}
