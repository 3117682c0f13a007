import t from 'tap'
import { open, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { tempMount } from '../support/tierfs-mount.js'
import { pseudoRandom, sha256, sha256File, waitSealed } from '../support/e2e-io.js'

const MiB = 1024 * 1024

t.test('dedup through the mount', async (t) => {
  const m = await tempMount()
  t.teardown(() => m.cleanup())
  const data = pseudoRandom('dedup', 32 * MiB)
  const s0 = await waitSealed(m)
  t.equal(s0.storedBytes, 0, 'an empty store stores nothing')

  await writeFile(join(m.mnt, 'first'), data)
  const s1 = await waitSealed(m)
  t.comment(`first copy: storedBytes ${s1.storedBytes}, ${s1.chunks} chunks, dedupRatio ${s1.dedupRatio}`)
  t.ok(s1.storedBytes >= data.length && s1.storedBytes < data.length * 1.01, 'the first copy is stored once (random data, no compression gain)')
  t.ok(s1.dedupRatio > 0.99 && s1.dedupRatio < 1.01, `dedupRatio about 1 (${s1.dedupRatio})`)

  await writeFile(join(m.mnt, 'second'), data)
  const s2 = await waitSealed(m)
  const grew = s2.storedBytes - s1.storedBytes
  t.comment(`second copy: storedBytes +${grew}, ${s2.chunks} chunks, dedupRatio ${s2.dedupRatio}`)
  t.ok(grew < data.length * 0.01, `the second copy adds < 1% (${grew} bytes)`)
  t.equal(s2.chunks, s1.chunks, 'no new chunks')
  t.ok(Math.abs(s2.dedupRatio - 2) < 0.02, `dedupRatio about 2 (${s2.dedupRatio})`)
  t.equal(s2.logicalBytes, 2 * data.length)

  // One byte inserted in the middle: content-defined chunking re-synchronises after it.
  const mid = 16 * MiB + 12345
  const fh = await open(join(m.mnt, 'inserted'), 'w')
  await fh.write(data, 0, mid, 0)
  await fh.write(Buffer.from([0x5a]), 0, 1, mid)
  await fh.write(data, mid, data.length - mid, mid + 1)
  await fh.close()
  const s3 = await waitSealed(m)
  const grew3 = s3.storedBytes - s2.storedBytes
  const newChunks = s3.chunks - s2.chunks
  const avgChunk = s1.storedBytes / s1.chunks
  t.comment(`1 byte inserted: storedBytes +${grew3} (${(grew3 / avgChunk).toFixed(2)} average chunks), ${newChunks} new chunks`)
  t.ok(newChunks >= 1 && newChunks <= 3, `only the chunks around the insertion are new (${newChunks})`)
  t.ok(grew3 <= 3 * avgChunk, `the insertion costs at most ~3 average chunks (${grew3} bytes, average chunk ${Math.round(avgChunk)})`)

  const expected = Buffer.concat([data.subarray(0, mid), Buffer.from([0x5a]), data.subarray(mid)])
  t.equal(await sha256File(join(m.mnt, 'first')), sha256(data))
  t.equal(await sha256File(join(m.mnt, 'second')), sha256(data))
  t.equal(await sha256File(join(m.mnt, 'inserted')), sha256(expected))
  await m.umount()
  await m.mount()
  t.equal(await sha256File(join(m.mnt, 'inserted')), sha256(expected), 'after remount')
  await m.umount()
  const fsck = await m.cli(['fsck', m.store, '--json'])
  t.equal(fsck.code, 0, `fsck clean: ${fsck.stdout}${fsck.stderr}`)
})
