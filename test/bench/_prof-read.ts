import { randomBytes, createHash } from 'node:crypto'
import { asTierId } from '../../src/ids.js'
import { silentLogger } from '../../src/log.js'
import { Migrator } from '../../src/policy/migrator.js'
import { S3rverProcess } from '../support/s3rver-process.js'
import { vfsStore, ROOT_CALLER } from '../support/vfs-store.js'
import { s3Target, useTieringCredentials } from '../support/tiering-fixture.js'

await useTieringCredentials()
const s3 = await S3rverProcess.start({ buckets: ['prof'] })
const fx = await vfsStore({ targets: { s3: s3Target(s3.endpoint, 'prof') } as never })
const MiB = 1 << 20
{
  const { vfs, store } = fx
  const h = await vfs.create(`/big`, 0o644, 0o1 | 0o100, ROOT_CALLER as never)
  for (let off = 0; off < 256 * MiB; off += MiB) await vfs.write(h, randomBytes(MiB), off)
  await vfs.release(h)
  await vfs.sealAll()
  const mig = new Migrator({ meta: store.meta, chunks: store.chunks, tiers: store.tiers, lock: vfs.lock, log: silentLogger, outgoing: fx.dir + '/block/outgoing', deleteFile: async () => {}, setTier: async () => {} },
    { objectPackSize: 32 * MiB, coldPackSize: 256 * MiB, maxBytesPerPass: 1e15, compress: true })
  await mig.moveFiles([{ ino: await vfs.resolve('/big'), path: '/big', to: asTierId('s3') }])
}
await fx.close()
const fx2 = await fx.reopen()
const fh = await fx2.vfs.open('/big', 0, ROOT_CALLER as never)
const buf = Buffer.alloc(128 * 1024)
const hash = createHash('sha256')
const t0 = performance.now()
for (let off = 0; off < 256 * MiB; off += buf.length) { const n = await fx2.vfs.read(fh, buf, off); hash.update(buf.subarray(0, n)) }
console.log('vfs read 256 MiB from s3:', (256 / ((performance.now() - t0) / 1000)).toFixed(1), 'MiB/s')
await fx2.close()
await s3.destroy()
