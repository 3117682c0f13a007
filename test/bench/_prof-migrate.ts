import { randomBytes } from 'node:crypto'
import { asTierId } from '../../src/ids.js'
import { silentLogger } from '../../src/log.js'
import { Migrator } from '../../src/policy/migrator.js'
import { S3rverProcess } from '../support/s3rver-process.js'
import { vfsStore, ROOT_CALLER } from '../support/vfs-store.js'
import { s3Target, useTieringCredentials } from '../support/tiering-fixture.js'

await useTieringCredentials()
const s3 = await S3rverProcess.start({ buckets: ['prof'] })
const fx = await vfsStore({ targets: { s3: s3Target(s3.endpoint, 'prof', process.env.MPT ? { multipartThreshold: Number(process.env.MPT) } : {}) } as never })
const { vfs, store } = fx
const MiB = 1 << 20
const inos = []
for (let f = 0; f < 8; f++) {
  const h = await vfs.create(`/f${f}`, 0o644, 0o1 | 0o100, ROOT_CALLER as never)
  for (let off = 0; off < 32 * MiB; off += MiB) await vfs.write(h, randomBytes(MiB), off)
  await vfs.release(h)
}
await vfs.sealAll()
for (let f = 0; f < 8; f++) inos.push({ ino: await vfs.resolve(`/f${f}`), path: `/f${f}`, to: asTierId('s3') })
const mig = new Migrator({ meta: store.meta, chunks: store.chunks, tiers: store.tiers, lock: vfs.lock, log: silentLogger, outgoing: fx.dir + '/block/outgoing', deleteFile: async () => {}, setTier: async () => {} },
  { objectPackSize: 32 * MiB, coldPackSize: 256 * MiB, maxBytesPerPass: 1e15, compress: process.env.NOZ === undefined })
const { Session } = await import('node:inspector/promises')
const session = new Session(); session.connect(); await session.post('Profiler.enable'); await session.post('Profiler.start')
const t0 = performance.now()
const r = await mig.moveFiles(inos)
const { profile } = await session.post('Profiler.stop') as { profile: unknown }
await (await import('node:fs/promises')).writeFile('/tmp/prof/mig.cpuprofile', JSON.stringify(profile))
console.log('moved', r.filesMoved, r.packsWritten, ((performance.now() - t0) / 1000).toFixed(2), 's', (256 / ((performance.now() - t0) / 1000)).toFixed(1), 'MiB/s')
await fx.close()
await s3.destroy()
