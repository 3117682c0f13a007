import { open, type FileHandle } from 'node:fs/promises'
import { TierfsError } from '../errors.js'

/** pread until `length` bytes or end of file (a shorter buffer then). */
export async function preadFully(fh: FileHandle, offset: number, length: number): Promise<Buffer> {
  const buf = Buffer.allocUnsafe(length)
  let got = 0
  while (got < length) {
    const { bytesRead } = await fh.read(buf, got, length - got, offset + got)
    if (bytesRead === 0) break
    got += bytesRead
  }
  return got === length ? buf : buf.subarray(0, got)
}

/**
 * `length` bytes of an open file from `start`, in one buffer: an upload body the SDK can hash
 * (a stream body goes unsigned, unchecked by the service). Throws if the file ends sooner (it
 * changed under the upload): IO.
 */
export async function readFilePart(fh: FileHandle, start: number, length: number): Promise<Buffer> {
  const buf = await preadFully(fh, start, length)
  if (buf.length !== length) throw TierfsError.io(`the file ended at ${start + buf.length} bytes while it was uploaded (expected ${start + length})`)
  return buf
}

/** The first `length` bytes of a file, read whole (`readFilePart` of a file opened and closed here). */
export async function readFileHead(file: string, length: number): Promise<Buffer> {
  const fh = await open(file, 'r')
  try {
    return await readFilePart(fh, 0, length)
  } finally {
    await fh.close()
  }
}
