import type { FileHandle } from 'node:fs/promises'
import { TierfsError } from '../errors.js'

/**
 * `length` bytes of an open file from `start`, in one buffer: an upload body the SDK can hash
 * (a stream body goes unsigned, unchecked by the service). Throws if the file ends sooner (it
 * changed under the upload): IO.
 */
export async function readFilePart(fh: FileHandle, start: number, length: number): Promise<Buffer> {
  const buf = Buffer.allocUnsafe(length)
  let got = 0
  while (got < length) {
    const { bytesRead } = await fh.read(buf, got, length - got, start + got)
    if (bytesRead === 0) throw TierfsError.io(`the file ended at ${start + got} bytes while it was uploaded (expected ${start + length})`)
    got += bytesRead
  }
  return buf
}
