import { randomBytes } from 'node:crypto'
import { mkdir, rm } from 'node:fs/promises'
import { dirname } from 'node:path'
import { TierfsError } from '../errors.js'
import { asPackId } from '../ids.js'
import type { Meta } from '../meta/meta.js'
import type { ChunkRecord, PackRecord } from '../meta/types.js'
import type { Tier } from '../tier/tier.js'
import { packKey } from './chunk-store.js'
import { RECORD_HEADER_SIZE, type PackEntry } from './pack-format.js'
import { packEntryOf, readRecord, recordCopy, type RandomAccess } from './pack-reader.js'
import { PackWriter } from './pack-writer.js'

export type RepackerDeps = {
  meta: Pick<Meta, 'begin' | 'getChunk' | 'getPack'>
  /** The write tier: output packs are local files appended in place. */
  tier: Tier
  /** An output pack is finished once it reaches this many bytes. */
  packSize: number
}

export interface RepackOutcome {
  /** The source pack was marked 'deleting' in the same commit (no record points into it). */
  retired: boolean
  /** Live chunks copied and repointed. */
  moved: number
  /** Bytes appended to output packs (record headers included). */
  bytesWritten: number
  /** Dead records (refs 0) of the source removed on the way. */
  deadRemoved: number
}

interface Output {
  writer: PackWriter
  record: PackRecord
  /** A commit has recorded the pack: on failure it is finished, not removed. */
  recorded: boolean
}

/**
 * Copies the live chunks of sparse packs into fresh output packs on the write tier and repoints
 * them, so the sources can be deleted. Its output packs are its own, not the chunk store's open
 * pack: the sealer never waits for a repack, and a crash leaves either an unrecorded output file
 * (removed at start-up) or a recorded 'open' one (finished at start-up).
 *
 * Contract: one `repack` at a time (callers run them in sequence); `finish()` seals the current
 * output pack and must be called when done, `abandon()` on error paths.
 * Each chunk's stored bytes are copied verbatim after full verification (record CRC, decode,
 * SHA-256): a damaged chunk is never copied, and its source pack is left for fsck.
 */
export class Repacker {
  private out: Output | undefined

  constructor(private readonly deps: RepackerDeps, private readonly nowMs: () => number = Date.now) {}

  /**
   * Repacks `source` (sealed, on the write tier), whose records `entries` lists (its trailer),
   * reading its bytes through `src`. In one synced commit: every live chunk still at its place
   * in `source` is moved (compare-and-set on the source location), dead records still pointing
   * there are removed (only if still unreferenced), and `source` is retired unless one of
   * `entries` is still referenced there by then.
   */
  async repack(source: PackRecord, entries: readonly PackEntry[], src: RandomAccess): Promise<RepackOutcome> {
    const { meta } = this.deps
    const outcome: RepackOutcome = { retired: false, moved: 0, bytesWritten: 0, deadRemoved: 0 }
    const txn = meta.begin()
    const live: ChunkRecord[] = []
    for (const e of entries) {
      const rec = await meta.getChunk(e.id)
      if (rec === undefined || rec.pack !== source.id || rec.offset !== e.offset) continue
      if (rec.refs > 0) live.push(rec)
      else {
        txn.deleteChunk(rec.id, { ifUnreferenced: true })
        outcome.deadRemoved++
      }
    }
    const touched = new Set<Output>()
    try {
      for (const rec of live) {
        const copy = recordCopy(await readRecord(src, packEntryOf(rec)))
        const out = await this.output(txn)
        const entry = await out.writer.append(rec.id, copy, rec.rawLength)
        out.record.chunkCount += 1
        out.record.size = out.writer.size
        touched.add(out)
        txn.moveChunk(rec.id, { pack: out.record.id, offset: entry.offset, length: entry.length, codec: entry.codec },
          { from: { pack: source.id, offset: rec.offset } })
        outcome.moved++
        outcome.bytesWritten += RECORD_HEADER_SIZE + entry.length
      }
      for (const out of touched) {
        if (out.record.state === 'open') await out.writer.sync()
        txn.putPack(out.record)
      }
      txn.retirePack(source.id, { unlessReferenced: entries.map((e) => e.id) })
      await txn.commit({ sync: true })
    } catch (err) {
      await this.abandon()
      throw err
    }
    for (const out of touched) out.recorded = true
    outcome.retired = (await meta.getPack(source.id))?.state === 'deleting'
    return outcome
  }

  /** Seals the current output pack (trailer, fsync) and records it; idempotent. */
  async finish(): Promise<void> {
    const out = this.out
    if (out === undefined) return
    this.out = undefined
    if (!out.recorded) {
      await out.writer.close()
      await rm(out.writer.path, { force: true })
      return
    }
    const { size } = await out.writer.finish()
    await this.deps.meta.begin().putPack({ ...out.record, state: 'sealed', size }).commit({ sync: true })
  }

  /** After a failure: seals what a commit recorded, removes what none did. Never throws. */
  async abandon(): Promise<void> {
    await this.finish().catch(async () => {
      await this.out?.writer.close().catch(() => undefined)
      this.out = undefined
    })
  }

  /** The output pack to append to, rotated (finished and recorded in `txn`) when full. */
  private async output(txn: ReturnType<Meta['begin']>): Promise<Output> {
    const cur = this.out
    if (cur !== undefined && cur.writer.size < this.deps.packSize) return cur
    if (cur !== undefined) {
      const { size } = await cur.writer.finish()
      cur.record.state = 'sealed'
      cur.record.size = size
      txn.putPack(cur.record)
    }
    const id = asPackId(randomBytes(16).toString('hex'))
    const key = packKey(id)
    const path = this.deps.tier.localPath(key)
    if (path === undefined) throw TierfsError.internal(`tier ${this.deps.tier.id} cannot hold packs being written`)
    await mkdir(dirname(path), { recursive: true })
    const writer = await PackWriter.create(path, id)
    const record: PackRecord = {
      id, tier: this.deps.tier.id, key, state: 'open', size: writer.size, liveBytes: 0, chunkCount: 0, createdMs: this.nowMs(),
    }
    txn.putPack(record)
    this.out = { writer, record, recorded: false }
    return this.out
  }
}
