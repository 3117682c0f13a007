import { TierfsError } from '../errors.js'
import type { Ino, Version } from '../ids.js'
import type { AsOf, Meta } from '../meta/meta.js'
import type { InodeAttrs } from '../meta/types.js'
import type { Mutex } from './mutex.js'
import { XATTR_CREATE, XATTR_REPLACE } from './vfs.js'

/** Read-only attributes answered from the inode, never stored, never listed (so cp -a skips them). */
const VIRTUAL = new Set(['user.tierfs.tier', 'user.tierfs.state'])
const MAX_VALUE = 64 * 1024

/** Xattr reads as of a version (ViewReader). */
export interface PastXattrs {
  getXattr(ino: Ino, name: string, asOf: Version): Promise<Buffer | undefined>
  listXattrs(ino: Ino, asOf: Version): Promise<readonly string[]>
}

/**
 * Extended attributes: `user.*` and `trusted.*` are stored (versioned, like the rest of the
 * namespace); `security.*` and `system.*` (ACLs, capabilities) are not supported, answered at
 * once so the kernel's per-write security.capability probe stays cheap. Reads as of a version
 * (the read-only views) go through `past`, which may cache them.
 */
export class XattrOps {
  constructor(
    private readonly meta: Meta,
    private readonly past: PastXattrs,
    private readonly lock: Mutex,
    private readonly inode: (ino: Ino, asOf?: AsOf) => Promise<InodeAttrs>,
    private readonly now: () => bigint,
    private readonly tierState: (a: InodeAttrs, asOf?: AsOf) => Promise<{ tier: string; state: string }> =
      async (a) => ({ tier: String(a.tier), state: 'resident' }),
  ) {}

  async get(ino: Ino, name: string, asOf?: AsOf): Promise<Buffer> {
    if (VIRTUAL.has(name)) return Buffer.from(await this.virtual(ino, name, asOf))
    if (!stored(name)) throw noAttr(name)
    const v = asOf === undefined ? await this.meta.getXattr(ino, name) : await this.past.getXattr(ino, name, asOf)
    if (v === undefined) throw noAttr(name)
    return v
  }

  async list(ino: Ino, asOf?: AsOf): Promise<readonly string[]> {
    return asOf === undefined ? this.meta.listXattrs(ino) : this.past.listXattrs(ino, asOf)
  }

  async set(ino: Ino, name: string, value: Buffer, flags: number): Promise<void> {
    this.checkWritable(name, value)
    await this.lock.run(async () => {
      const a = await this.inode(ino)
      checkType(a, name)
      const exists = (await this.meta.getXattr(ino, name)) !== undefined
      if ((flags & XATTR_CREATE) !== 0 && exists) throw TierfsError.exists(`xattr ${name}`)
      if ((flags & XATTR_REPLACE) !== 0 && !exists) throw noAttr(name)
      await this.meta.begin().putXattr(ino, name, Buffer.from(value)).putInode({ ...a, ctimeNs: this.now() }).commit()
    })
  }

  async remove(ino: Ino, name: string): Promise<void> {
    this.checkWritable(name, Buffer.alloc(0))
    await this.lock.run(async () => {
      const a = await this.inode(ino)
      if ((await this.meta.getXattr(ino, name)) === undefined) throw noAttr(name)
      await this.meta.begin().deleteXattr(ino, name).putInode({ ...a, ctimeNs: this.now() }).commit()
    })
  }

  private checkWritable(name: string, value: Buffer): void {
    if (VIRTUAL.has(name)) throw TierfsError.perm(`xattr ${name} is read-only`)
    if (!stored(name)) throw new TierfsError('NOT_SUPPORTED', `xattr ${name}: namespace not supported`)
    if (Buffer.byteLength(name) > 255) throw new TierfsError('RANGE', `xattr name too long`)
    if (value.length > MAX_VALUE) throw new TierfsError('NO_SPACE', `xattr ${name}: value over ${MAX_VALUE} bytes`)
  }

  private async virtual(ino: Ino, name: string, asOf?: AsOf): Promise<string> {
    const st = await this.tierState(await this.inode(ino, asOf), asOf)
    return name === 'user.tierfs.tier' ? st.tier : st.state
  }
}

function stored(name: string): boolean {
  return name.startsWith('user.') || name.startsWith('trusted.')
}

/** Linux allows user.* only on regular files and directories. */
function checkType(a: InodeAttrs, name: string): void {
  if (name.startsWith('user.') && a.type !== 'file' && a.type !== 'dir') {
    throw TierfsError.perm(`xattr ${name} on a ${a.type}`)
  }
}

function noAttr(name: string): TierfsError {
  return new TierfsError('NO_XATTR', `xattr ${name}: no such attribute`)
}
