import type { Test } from 'tap'
import { asTierId } from '../../src/ids.js'
import { silentLogger } from '../../src/log.js'
import { openStore } from '../../src/store/open-store.js'
import type { TestMount } from './tierfs-mount.js'
import { sha256File } from './e2e-io.js'
import { dropCaches, fsck } from './tiering-fixture.js'

/** What a kill left, read from the metadata (offline, with no recovery) before anything mends it. */
export interface Leftovers {
  /** Noted uploads or frees without their record: killed between note and commit, or commit and delete. */
  strays: string[]
  /** Each noted stray's tier and key, and whether its object exists there now. */
  strayObjects: Array<{ tier: string; key: string; exists: boolean }>
  /** Sealed packs with no live bytes off the cold tiers: killed between a commit and the free. */
  deadPacks: number
  /** Files marked as being moved: killed before their move was seen through. */
  unsettled: number
  /** Files by tier as user.tierfs.tier will say. */
  tiers: Record<string, number>
  /** Sealed packs by tier. */
  packs: Record<string, number>
}

export async function leftovers(m: TestMount): Promise<Leftovers> {
  const store = await openStore(m.store, silentLogger, { recover: false })
  try {
    const strays = await store.meta.sysNames('stray/')
    const out: Leftovers = { strays, strayObjects: [], deadPacks: 0, unsettled: (await store.meta.sysNames('moving/')).length, tiers: {}, packs: {} }
    for (const name of strays) {
      const [, tier, ...rest] = name.split('/')
      const key = rest.join('/')
      const t = store.tiers.get(asTierId(tier as string))
      await t.ready()
      out.strayObjects.push({ tier: tier as string, key, exists: (await t.head(key)) !== undefined })
    }
    for await (const p of store.meta.packs()) {
      if (p.state !== 'sealed') continue
      out.packs[p.tier] = (out.packs[p.tier] ?? 0) + 1
      if (p.liveBytes === 0) out.deadPacks++
    }
    for await (const a of store.meta.inodes()) if (a.type === 'file') out.tiers[a.tier] = (out.tiers[a.tier] ?? 0) + 1
    return out
  } finally {
    await store.close()
  }
}

/** Every file reads back with its SHA-256, page cache dropped first. */
export async function readsExact(t: Test, files: Map<string, string>, label: string): Promise<void> {
  await dropCaches()
  let bad = 0
  for (const [p, sha] of files) {
    const got = await sha256File(p).catch((err: NodeJS.ErrnoException) => `read failed: ${err.code}`)
    if (got !== sha) { bad++; t.fail(`${label}: ${p}: ${got.startsWith('read failed') ? got : 'contents differ'}`) }
  }
  t.equal(bad, 0, `${label}: all ${files.size} files read back exact`)
}

/** Offline fsck of an unmounted store must find no problem; returns the strays it saw pending. */
export async function fsckNoProblems(t: Test, m: TestMount, label: string): Promise<number> {
  const f = await fsck(m)
  if (f.problems.length > 0 || f.code !== 0) t.fail(`${label}: fsck exit ${f.code}: ${JSON.stringify(f.problems).slice(0, 2000)}`)
  return (f as unknown as { pendingStrays?: number }).pendingStrays ?? 0
}
