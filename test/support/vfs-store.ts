import { mkdtemp, rm, writeFile, mkdir } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { RestorePoints } from '../../src/backup/restore-points.js'
import { jsonLogger, silentLogger } from '../../src/log.js'
import { DEFAULT_CONFIG, type StoreConfig } from '../../src/store/config.js'
import { openStore, type OpenStore } from '../../src/store/open-store.js'
import { Staging } from '../../src/vfs/staging.js'
import { TierfsVfs } from '../../src/vfs/tierfs-vfs.js'

export const ROOT_CALLER = { uid: 0, gid: 0, pid: 1 }

export interface VfsFixture {
  dir: string
  store: OpenStore
  vfs: TierfsVfs
  /** Closes without sealing or flushing anything (a crash, as far as the store can tell). */
  crash(): Promise<void>
  /** Opens the same store again (after close or crash). */
  reopen(): Promise<VfsFixture>
  close(): Promise<void>
}

/** TIERFS_TEST_LOG=1 prints the vfs's log (warnings and errors) to stderr, to see why a seal failed. */
const TEST_LOG = process.env.TIERFS_TEST_LOG === '1' ? jsonLogger((l) => process.stderr.write(l + '\n'), 'warn') : silentLogger

/** A TierfsVfs over a fresh store in a temp dir: the whole core without a kernel. */
export async function vfsStore(over: Partial<StoreConfig> = {}, dir?: string): Promise<VfsFixture> {
  const root = dir ?? (await mkdtemp(join(tmpdir(), 'tierfs-vfs-')))
  if (dir === undefined) {
    const config = { ...DEFAULT_CONFIG, ...over, seal: { ...DEFAULT_CONFIG.seal, debounceMs: 0, ...(over.seal ?? {}) } }
    await mkdir(join(root, 'block'), { recursive: true })
    await writeFile(join(root, 'tierfs.json'), JSON.stringify(config))
  }
  const store = await openStore(root, silentLogger)
  const vfs = new TierfsVfs(
    { meta: store.meta, chunks: store.chunks, staging: new Staging(store.layout.staging(store.config)), blockTier: store.block, log: TEST_LOG },
    { inlineMax: store.config.inlineMax, ...store.config.seal },
  )
  await vfs.ready()
  const fx: VfsFixture = {
    dir: root, store, vfs,
    async crash() {
      vfs.sealer.close()
      for (const n of vfs.files.allNodes()) await n.staging?.park()
      await store.chunks.close()
      await store.meta.close()
    },
    reopen: () => vfsStore(over, root),
    async close() {
      await vfs.close()
      await store.close()
    },
  }
  return fx
}

export async function removeFixture(fx: VfsFixture): Promise<void> {
  await rm(fx.dir, { recursive: true, force: true })
}

/** Restore points of the fixture's store, taken at `nowMs()`, as the daemon wires them. */
export function restorePoints(fx: VfsFixture, nowMs: () => number): RestorePoints {
  const v = fx.vfs
  return new RestorePoints({
    meta: fx.store.meta, sealAll: () => v.sealAll(), invalidateViews: () => v.views.invalidate(),
    resolveDir: (p) => v.resolve(p), nowMs,
  })
}
