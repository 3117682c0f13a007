/**
 * Workloads the foundation benchmark runs in a child process, so the bench's own event loop never
 * competes with them and every filesystem sees the same client:
 *   gen FILE BYTES SEED            write BYTES of incompressible data (AES-CTR keystream) in 1 MiB
 *                                  blocks with fs.promises, then fsync
 *   create DIR FILES DIRS SIZE [CONCURRENCY]
 *                                  create DIRS subdirectories and FILES files of SIZE random bytes
 *                                  spread over them, with fs.promises.writeFile, CONCURRENCY
 *                                  writers (default 1)
 * Prints one JSON line: { ms, bytes, files }; `ms` covers the work only, not node's start-up.
 */
import { createCipheriv, createHash, randomBytes } from 'node:crypto'
import { mkdir, open, writeFile } from 'node:fs/promises'
import { join } from 'node:path'

const MiB = 1024 * 1024

function keystream(seed: string): (n: number) => Buffer {
  const key = createHash('sha256').update(seed).digest().subarray(0, 16)
  const c = createCipheriv('aes-128-ctr', key, Buffer.alloc(16))
  const zeros = Buffer.alloc(MiB)
  return (n) => c.update(n === MiB ? zeros : zeros.subarray(0, n))
}

async function gen(file: string, bytes: number, seed: string): Promise<{ bytes: number; files: number }> {
  const next = keystream(seed)
  const fh = await open(file, 'w')
  try {
    for (let off = 0; off < bytes; off += MiB) {
      const block = next(Math.min(MiB, bytes - off))
      let done = 0
      while (done < block.length) done += (await fh.write(block, done, block.length - done, off + done)).bytesWritten
    }
    await fh.sync()
  } finally {
    await fh.close()
  }
  return { bytes, files: 1 }
}

async function create(dir: string, files: number, dirs: number, size: number, concurrency: number): Promise<{ bytes: number; files: number }> {
  await mkdir(dir, { recursive: true })
  for (let d = 0; d < dirs; d++) await mkdir(join(dir, `d${d}`))
  // Distinct content per file (a pool sliced at a moving offset) so nothing dedups by accident.
  const pool = randomBytes(MiB + size)
  let next = 0
  const worker = async (): Promise<void> => {
    for (let i = next++; i < files; i = next++) {
      const off = (i * 4099) % MiB
      await writeFile(join(dir, `d${i % dirs}`, `f${i}`), pool.subarray(off, off + size))
    }
  }
  await Promise.all(Array.from({ length: Math.max(1, concurrency) }, worker))
  return { bytes: files * size, files }
}

const [cmd, ...args] = process.argv.slice(2)
const t0 = performance.now()
let r: { bytes: number; files: number }
if (cmd === 'gen' && args.length === 3) {
  r = await gen(args[0] as string, Number(args[1]), args[2] as string)
} else if (cmd === 'create' && args.length >= 4) {
  r = await create(args[0] as string, Number(args[1]), Number(args[2]), Number(args[3]), Number(args[4] ?? 1))
} else {
  process.stderr.write('usage: workload.ts gen FILE BYTES SEED | create DIR FILES DIRS SIZE [CONCURRENCY]\n')
  process.exit(2)
}
process.stdout.write(JSON.stringify({ ms: performance.now() - t0, ...r }) + '\n')
