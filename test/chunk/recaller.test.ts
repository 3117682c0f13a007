import t from 'tap'
import { TierfsError } from '../../src/errors.js'
import { asTierId } from '../../src/ids.js'
import { Recaller } from '../../src/chunk/recaller.js'
import type { ObjectInfo, Tier, Warmth } from '../../src/tier/tier.js'

/**
 * A cold archive as the Recaller sees one (the Glacier and S3-archive backends are tested
 * against their servers in test/tier/): `warmup` starts a job that finishes after `jobMs`,
 * `expire()` ends the recalled copy's life as a real archive does after its retention days.
 */
class ScriptedArchive implements Tier {
  readonly id = asTierId('archive')
  readonly capabilities = { rangeReads: true, needsWarmup: true, maxConnections: 4, localFiles: false }
  warmups = 0
  private readyAt: number | undefined
  constructor(private readonly data: Buffer, private readonly jobMs: number) {}
  async ready(): Promise<void> {}
  async close(): Promise<void> {}
  async get(_key: string, range?: { offset: number; length: number }): Promise<Buffer> {
    if ((await this.warmth()) !== 'warm') throw new TierfsError('AGAIN', 'cold')
    return range === undefined ? this.data : this.data.subarray(range.offset, range.offset + range.length)
  }
  async put(): Promise<void> {}
  async head(key: string): Promise<ObjectInfo | undefined> { return { key, size: this.data.length } }
  async delete(): Promise<void> {}
  async *list(): AsyncIterable<ObjectInfo> {}
  async warmth(): Promise<Warmth> {
    if (this.readyAt === undefined) return 'cold'
    return Date.now() >= this.readyAt ? 'warm' : 'warming'
  }
  async warmup(): Promise<void> {
    this.warmups++
    this.readyAt ??= Date.now() + this.jobMs
  }
  async space(): Promise<undefined> { return undefined }
  localPath(): undefined { return undefined }
  expire(): void { this.readyAt = undefined }
}

const range = { offset: 2, length: 3 }

t.test('a cold read waits, answers AGAIN while the recall runs, then reads', async (t) => {
  const tier = new ScriptedArchive(Buffer.from('0123456789'), 400)
  const r = new Recaller(100, 20)
  const reads = await Promise.allSettled([r.get(tier, 'k', range), r.get(tier, 'k', range)])
  t.match(reads, [{ status: 'rejected', reason: { code: 'AGAIN' } }, { status: 'rejected', reason: { code: 'AGAIN' } }])
  t.equal(tier.warmups, 1, 'concurrent reads of one cold object send one warm-up')
  t.equal(r.recalling(tier, 'k'), true)
  t.equal(r.inFlight, 1)
  await new Promise((ok) => setTimeout(ok, 400))
  t.equal((await r.get(tier, 'k', range)).toString(), '234')
  t.equal(r.recalling(tier, 'k'), false, 'seen warm: the recall is over')
  t.equal(r.inFlight, 0)
})

t.test('a read that waits long enough gets the data without AGAIN', async (t) => {
  const tier = new ScriptedArchive(Buffer.from('0123456789'), 100)
  const r = new Recaller(2000, 20)
  t.equal((await r.get(tier, 'k', range)).toString(), '234')
  t.equal(r.inFlight, 0)
})

t.test('a recalled copy that expired is recalled again by the next read', async (t) => {
  const tier = new ScriptedArchive(Buffer.from('0123456789'), 50)
  const r = new Recaller(1000, 10)
  t.equal((await r.get(tier, 'k', range)).toString(), '234')
  tier.expire()
  t.equal(await r.warmth(tier, 'k'), 'cold')
  await r.recall(tier, 'k')
  t.equal(r.recalling(tier, 'k'), true)
  tier.expire()
  t.equal(await r.warmth(tier, 'k'), 'cold', 'a job that vanished')
  t.equal(r.recalling(tier, 'k'), false, 'is forgotten, not reported as recalling forever')
  t.equal((await r.get(tier, 'k', range)).toString(), '234', 'the next read starts a new recall and gets the data')
  t.equal(tier.warmups, 3)
})
