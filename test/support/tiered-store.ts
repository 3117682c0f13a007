import type { Test } from 'tap'
import { Tiering } from '../../daemon/tiering.js'
import { silentLogger } from '../../src/log.js'
import type { PolicySet } from '../../src/policy/decide.js'
import type { StoreConfig } from '../../src/store/config.js'
import { PRUNE_CONFIG } from '../backup/prune-fixture.js'
import { removeFixture, ROOT_CALLER, vfsStore, type VfsFixture } from './vfs-store.js'

const DAY = 86_400_000

export interface TieredStore {
  fx: VfsFixture
  /** The daemon's Tiering over the store; its passes see `clock.now`. */
  tiering: Tiering
  clock: { now: number }
  /** Sets the clock `days` after the store was made. */
  at(days: number): void
}

/**
 * A store with small chunks and packs (PRUNE_CONFIG plus `over`), the directories `dirs`, and the
 * daemon's Tiering under `policies` on an injected clock; closed and removed at the end of `t`.
 */
export async function tieredStore(t: Test, policies: PolicySet, dirs: string[], over: Partial<StoreConfig> = {}): Promise<TieredStore> {
  const fx = await vfsStore({ ...PRUNE_CONFIG, ...over })
  t.teardown(async () => { await fx.close().catch(() => undefined); await removeFixture(fx) })
  const t0 = Date.now()
  const clock = { now: t0 }
  const tiering = new Tiering({ store: fx.store, vfs: fx.vfs, log: silentLogger, policies: () => policies, nowMs: () => clock.now })
  for (const d of dirs) await fx.vfs.mkdir(d, 0o755, ROOT_CALLER)
  return { fx, tiering, clock, at: (days) => { clock.now = t0 + days * DAY } }
}
