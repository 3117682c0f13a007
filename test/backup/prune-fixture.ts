import { createCipheriv, createHash } from 'node:crypto'
import type { PruneDeps } from '../../src/backup/prune.js'
import type { ChunkId, Version } from '../../src/ids.js'
import type { Meta } from '../../src/meta/meta.js'
import { fsck } from '../../src/store/fsck.js'
import { Staging } from '../../src/vfs/staging.js'
import { O_RDONLY } from '../../src/vfs/vfs.js'
import { ROOT_CALLER, type VfsFixture } from '../support/vfs-store.js'

/** Shared by the prune tests (no tests of its own). */

const MiB = 1024 * 1024

/** Small chunks and 1 MiB packs: a few MiB of data make many chunks and several packs. */
export const PRUNE_CONFIG = {
  packSize: MiB,
  chunker: { minSize: 16 * 1024, avgSize: 64 * 1024, maxSize: 256 * 1024 },
  inlineMax: 1024,
}

/** `size` deterministic pseudo-random bytes for `seed` (AES-CTR keystream). */
export function det(seed: string, size: number): Buffer {
  const key = createHash('sha256').update(seed).digest().subarray(0, 16)
  return createCipheriv('aes-128-ctr', key, Buffer.alloc(16)).update(Buffer.alloc(size))
}

export async function putFile(fx: VfsFixture, path: string, data: Buffer): Promise<void> {
  const fh = await fx.vfs.create(path, 0o644, 0o1101, ROOT_CALLER)
  for (let at = 0; at < data.length; at += 256 * 1024) await fx.vfs.write(fh, data.subarray(at, at + 256 * 1024), at)
  await fx.vfs.release(fh)
  await sealAllNow(fx)
}

/**
 * Seals every closed file. A seal that failed (a concurrent prune removed a dead chunk it had
 * deduplicated against: NOT_FOUND) is retried after a backoff, or at once by the next drain.
 */
export async function sealAllNow(fx: VfsFixture): Promise<void> {
  for (let round = 0; round < 10; round++) {
    const failures = fx.vfs.sealer.failures
    // sealAll throws when files are left unsealed after its own retries: try again here.
    await fx.vfs.sealAll().catch(() => undefined)
    if (fx.vfs.sealer.failures === failures) return
  }
  throw new Error('files keep failing to seal')
}

export async function readWhole(fx: VfsFixture, path: string): Promise<Buffer> {
  const fh = await fx.vfs.open(path, O_RDONLY, ROOT_CALLER)
  const parts: Buffer[] = []
  try {
    for (let at = 0; ; ) {
      const buf = Buffer.alloc(300 * 1024)
      const n = await fx.vfs.read(fh, buf, at)
      if (n === 0) break
      parts.push(buf.subarray(0, n))
      at += n
    }
  } finally {
    await fx.vfs.release(fh)
  }
  return Buffer.concat(parts)
}

export function pruneDeps(fx: VfsFixture, meta: Meta = fx.store.meta): PruneDeps {
  return {
    meta, chunks: fx.store.chunks, tiers: fx.store.tiers, packSize: fx.store.config.packSize,
    invalidateViews: () => fx.vfs.views.invalidate(),
  }
}

/** Chunks referenced by the current namespace and by every pinned version: what must survive. */
export async function referencedChunks(meta: Meta): Promise<Set<ChunkId>> {
  const views: Array<Version | undefined> = [undefined]
  for await (const pin of meta.pins()) views.push(pin.version)
  const out = new Set<ChunkId>()
  for (const asOf of views) {
    for await (const a of meta.inodes(asOf)) {
      if (a.type !== 'file') continue
      const map = await meta.getFileMap(a.ino, asOf)
      if (map?.kind === 'extents') for (const e of map.extents) out.add(e.id)
    }
  }
  return out
}

/** Everything a prune could change, as comparable data. */
export async function storeState(fx: VfsFixture): Promise<unknown> {
  const meta = fx.store.meta
  const all = async <T>(it: AsyncIterable<T>): Promise<T[]> => { const out: T[] = []; for await (const x of it) out.push(x); return out }
  const files: string[] = []
  for await (const o of fx.store.block.list('packs/')) files.push(`${o.key} ${o.size}`)
  return {
    pins: await all(meta.pins()),
    chunks: await all(meta.chunks()),
    packs: await all(meta.packs()),
    fileMaps: (await all(meta.fileMapVersions())).map((f) => `${f.ino}@${f.version}`),
    inodes: (await all(meta.inodes())).length,
    files: files.sort(),
  }
}

export async function fsckReport(fx: VfsFixture): Promise<{ ok: boolean; problems: string[] }> {
  const r = await fsck({ meta: fx.store.meta, tiers: fx.store.tiers, staging: new Staging(fx.store.layout.staging(fx.store.config)) }, { repair: false })
  return { ok: r.ok, problems: r.problems.map((p) => `${p.kind}: ${p.message}`) }
}

/** Pack file keys on the block tier. */
export async function packFiles(fx: VfsFixture): Promise<Set<string>> {
  const keys = new Set<string>()
  for await (const o of fx.store.block.list('packs/')) if (o.key.endsWith('.pack')) keys.add(o.key)
  return keys
}
