const ZEROS = Buffer.alloc(64 * 1024)

/** True when every byte of `data` is zero (holes and zero-filled regions). */
export function isAllZero(data: Buffer): boolean {
  for (let off = 0; off < data.length; off += ZEROS.length) {
    const n = Math.min(ZEROS.length, data.length - off)
    if (ZEROS.compare(data, off, off + n, 0, n) !== 0) return false
  }
  return true
}
