import { isAbsolute, join, resolve } from 'node:path'
import type { StoreConfig } from './config.js'

/**
 * On-disk layout of a store (documented in the README):
 *   STORE/tierfs.json        configuration
 *   STORE/meta/              LevelDB metadata (one process at a time)
 *   STORE/<block>/packs/     packs on the block tier (packs/<2 hex>/<32 hex>.pack)
 *   STORE/<block>/staging/   staging files of files being written (one per inode)
 *   STORE/<object>/, STORE/<cold>/   local object and cold tiers of the embedded default
 *   STORE/log/tierfs.log     the daemon's JSON-lines log
 *   STORE/run/control.sock   the running daemon's control socket
 */
export class StoreLayout {
  readonly root: string

  constructor(root: string) {
    this.root = resolve(root)
  }

  get config(): string { return join(this.root, 'tierfs.json') }
  get meta(): string { return join(this.root, 'meta') }
  get logDir(): string { return join(this.root, 'log') }
  get log(): string { return join(this.logDir, 'tierfs.log') }
  get runDir(): string { return join(this.root, 'run') }
  get socket(): string { return join(this.runDir, 'control.sock') }

  tierDir(cfg: StoreConfig, tier: keyof StoreConfig['tiers']): string {
    const p = cfg.tiers[tier].path
    return isAbsolute(p) ? p : join(this.root, p)
  }

  staging(cfg: StoreConfig): string {
    return join(this.tierDir(cfg, 'block'), 'staging')
  }
}
