import { createCipheriv, createHash } from 'node:crypto'
import { createReadStream } from 'node:fs'
import { open } from 'node:fs/promises'
import type { TestMount } from './tierfs-mount.js'

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))

/**
 * Waits until the daemon holds nothing in staging and no handle is open (every closed file is
 * sealed). There is no CLI flush command: this polls `status --json`.
 */
export async function waitSealed(m: TestMount, timeoutMs = 120_000): Promise<Record<string, any>> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const s = await m.status()
    if (s.stagingFiles === 0 && s.openHandles === 0) return s
    if (Date.now() > deadline) throw new Error(`still staging after ${timeoutMs} ms: ${JSON.stringify(s)}`)
    await sleep(100)
  }
}

/** SHA-256 (hex) of a file, streamed. */
export async function sha256File(path: string): Promise<string> {
  const h = createHash('sha256')
  for await (const b of createReadStream(path, { highWaterMark: 1 << 20 })) h.update(b as Buffer)
  return h.digest('hex')
}

export function sha256(data: Buffer | string): string {
  return createHash('sha256').update(data).digest('hex')
}

/** Deterministic incompressible bytes (AES-256-CTR keystream of `seed`): same seed, same data. */
export function pseudoRandom(seed: string, length: number): Buffer {
  const key = createHash('sha256').update(seed).digest()
  const cipher = createCipheriv('aes-256-ctr', key, Buffer.alloc(16))
  return Buffer.concat([cipher.update(Buffer.alloc(length)), cipher.final()])
}

/** Reads the first bytes of a file through the mount: the error code, or 'ok'. */
export async function firstRead(path: string): Promise<string> {
  const fh = await open(path, 'r')
  try {
    await fh.read(Buffer.alloc(64 * 1024), 0, 64 * 1024, 0)
    return 'ok'
  } catch (err) {
    return (err as NodeJS.ErrnoException).code ?? String(err)
  } finally {
    await fh.close()
  }
}
