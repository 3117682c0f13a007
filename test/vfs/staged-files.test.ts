import t from 'tap'
import { randomBytes } from 'node:crypto'
import { readdir, readFile, rm, writeFile as fsWriteFile } from 'node:fs/promises'
import { join } from 'node:path'
import { DiskStaged } from '../../src/vfs/staged-file.js'
import { MemoryStaged } from '../../src/vfs/memory-staged.js'
import { O_RDONLY, O_RDWR } from '../../src/vfs/vfs.js'
import { removeFixture, ROOT_CALLER, vfsStore, type VfsFixture } from '../support/vfs-store.js'

const KiB = 1024
const LONG_DEBOUNCE = { debounceMs: 60_000, batchFiles: 512, batchBytes: 1 << 28 }

const openFds = async (): Promise<number> => (await readdir('/proc/self/fd')).length

async function readAll(fx: VfsFixture, path: string): Promise<Buffer> {
  const fh = await fx.vfs.open(path, O_RDONLY, ROOT_CALLER)
  const buf = Buffer.alloc((await fx.vfs.getattr(path)).size + 10)
  const n = await fx.vfs.read(fh, buf, 0)
  await fx.vfs.release(fh)
  return buf.subarray(0, n)
}

/** create, write, flush (close(2)), release: what the kernel sends for one small file. */
async function writeClose(fx: VfsFixture, path: string, data: Buffer): Promise<void> {
  const fh = await fx.vfs.create(path, 0o644, 0o101, ROOT_CALLER)
  await fx.vfs.write(fh, data, 0)
  await fx.vfs.flush(fh)
  await fx.vfs.release(fh)
}

t.test('memory staging: bounded, readable, spills with every byte', async (t) => {
  const m = new MemoryStaged(8 * KiB, Buffer.from('abc'))
  await m.write(Buffer.from('XY'), 5)
  const out = Buffer.alloc(10)
  t.equal(await m.read(out, 10, 0), 7)
  t.same(out.subarray(0, 7), Buffer.from('abc\0\0XY'), 'a gap reads as zeros')
  await m.truncate(4)
  t.same(m.bytes(6), Buffer.from('abc\0\0\0'), 'truncate zeroes what it cut; bytes() pads')
  t.equal(await m.blocks(4), 1)
  await m.truncate(0)
  await m.truncate(600)
  t.equal(await m.blocks(600), 0, 'all zeros hold no blocks')
  await t.rejects(m.write(Buffer.alloc(10), 8 * KiB - 5), { code: 'INTERNAL' }, 'the owner must spill before going past capacity')

  const spilled: Buffer[] = []
  const target = new MemoryStaged(1 << 20)
  let finish!: () => void
  const gate = new Promise<void>((r) => { finish = r })
  const moved = m.spill(async (bytes) => {
    spilled.push(bytes)
    await gate
    await target.write(bytes, 0)
    return target
  })
  // Calls made while the spill runs wait for it and land in the new home.
  const late = m.write(Buffer.from('late'), 100)
  finish()
  t.equal(await moved, target)
  await late
  t.equal(spilled[0]?.length, 600, 'the spill takes the logical size')
  t.same(target.bytes(104).subarray(100), Buffer.from('late'), 'a write racing the spill is not lost')
})

t.test('disk staging: the descriptor is opened on use and closed by park', async (t) => {
  const fx = await vfsStore()
  t.teardown(async () => { await fx.close(); await removeFixture(fx) })
  const path = join(fx.dir, 'block', 'staging', 'probe')
  await fsWriteFile(path, 'hello')
  const base = await openFds()
  const d = new DiskStaged(path)
  t.equal(await openFds(), base, 'nothing open before use')
  const buf = Buffer.alloc(5)
  t.equal(await d.read(buf, 5, 0), 5)
  t.equal(await openFds(), base + 1)
  await d.park()
  await d.park()
  t.equal(await openFds(), base, 'park closes (idempotent)')
  await d.write(Buffer.from('J'), 0)
  await d.park()
  t.equal(await readFile(path, 'utf8'), 'Jello', 'reopened for the write')
  t.equal(await openFds(), base)
})

t.test('a small file is committed inline at close: no staging file, no seal, survives a crash', async (t) => {
  const fx = await vfsStore({ seal: LONG_DEBOUNCE })
  const data = Buffer.from('small and precious\n')
  await writeClose(fx, '/s', data)
  t.same(await readdir(join(fx.dir, 'block', 'staging')), [], 'never touched the staging directory')
  t.equal(fx.vfs.files.stagingBytes().files, 0, 'nothing waits for a seal')
  t.equal(fx.vfs.sealer.sealedFiles, 0)
  const ino = (await fx.vfs.getattr('/s')).ino
  t.same(await fx.store.meta.getFileMap(ino as never), { kind: 'inline', data }, 'committed inline')

  // A truncate by path is acknowledged when it returns: committed too.
  await fx.vfs.truncate('/s', 5)
  await fx.crash()
  const again = await fx.reopen()
  t.teardown(async () => { await again.close(); await removeFixture(again) })
  t.same(await readAll(again, '/s'), data.subarray(0, 5), 'closed and truncated bytes survive a crash')
  t.equal((await again.vfs.getattr('/s')).size, 5)
})

t.test('a write racing a flush is never lost', async (t) => {
  const fx = await vfsStore({ seal: LONG_DEBOUNCE })
  t.teardown(async () => { await fx.close(); await removeFixture(fx) })
  const fh = await fx.vfs.create('/race', 0o644, 0o102, ROOT_CALLER)
  const fh2 = await fx.vfs.open('/race', O_RDWR, ROOT_CALLER)
  await fx.vfs.write(fh, Buffer.from('first'), 0)
  // The flush snapshots 'first'; the second write lands before its commit returns.
  const flushing = fx.vfs.flush(fh)
  await fx.vfs.write(fh2, Buffer.from('-second'), 5)
  await flushing
  await fx.vfs.release(fh)
  t.same(await readAll(fx, '/race'), Buffer.from('first-second'), 'the open handle still sees both')
  await fx.vfs.flush(fh2)
  await fx.vfs.release(fh2)
  const ino = (await fx.vfs.getattr('/race')).ino
  t.same(await fx.store.meta.getFileMap(ino as never), { kind: 'inline', data: Buffer.from('first-second') }, 'both committed')
})

t.test('a small file that grows past the inline limit moves to disk with its bytes', async (t) => {
  const fx = await vfsStore({ seal: LONG_DEBOUNCE })
  const data = randomBytes(40 * KiB)
  const fh = await fx.vfs.create('/grow', 0o644, 0o101, ROOT_CALLER)
  for (let off = 0; off < data.length; off += 4 * KiB) await fx.vfs.write(fh, data.subarray(off, off + 4 * KiB), off)
  t.same(await readdir(join(fx.dir, 'block', 'staging')), [(await fx.vfs.getattr('/grow')).ino.toString()], 'now a staging file')
  await fx.vfs.flush(fh)
  await fx.vfs.release(fh)
  t.same(await readAll(fx, '/grow'), data)

  // A committed small file reopened and grown: the move to disk is published whole.
  await writeClose(fx, '/grown', Buffer.from('0123456789'))
  const fh2 = await fx.vfs.open('/grown', O_RDWR, ROOT_CALLER)
  await fx.vfs.write(fh2, data, 10)
  await fx.vfs.release(fh2)
  await fx.crash()
  const again = await fx.reopen()
  t.teardown(async () => { await again.close(); await removeFixture(again) })
  t.same(await readAll(again, '/grown'), Buffer.concat([Buffer.from('0123456789'), data]), 'resealed after a crash')
})

t.test('files waiting for their seal hold no descriptors; the backlog is bounded', async (t) => {
  const fx = await vfsStore({ seal: { debounceMs: 300, batchFiles: 4, batchBytes: 1 << 28 } })
  t.teardown(async () => { await fx.close(); await removeFixture(fx) })
  const base = await openFds()
  const data = randomBytes(20 * KiB)
  let most = 0
  for (let i = 0; i < 60; i++) {
    const fh = await fx.vfs.create(`/f${i}`, 0o644, 0o101, ROOT_CALLER)
    await fx.vfs.write(fh, data, 0)
    await fx.vfs.flush(fh)
    await fx.vfs.release(fh)
    most = Math.max(most, fx.vfs.files.stagingBytes().files)
  }
  t.ok(await openFds() <= base + 2, `descriptors: ${await openFds()} now, ${base} before`)
  t.ok(most <= fx.vfs.sealer.maxBacklog + 1, `unsealed files at most ${most} (backlog limit ${fx.vfs.sealer.maxBacklog})`)
  t.ok(fx.vfs.sealer.sealedFiles > 0, 'the writer waited for seals')
  await fx.vfs.sealAll()
  for (let i = 0; i < 60; i += 13) t.same(await readAll(fx, `/f${i}`), data)
})

t.test('memory staging is bounded: past 8,192 open small files, new ones get staging files', async (t) => {
  const fx = await vfsStore({ seal: LONG_DEBOUNCE })
  t.teardown(async () => { await fx.close(); await removeFixture(fx) })
  const fhs: number[] = []
  for (let i = 0; i < 8192 + 10; i++) {
    const fh = await fx.vfs.create(`/m${i}`, 0o644, 0o101, ROOT_CALLER)
    await fx.vfs.write(fh, Buffer.from(`file ${i}`), 0)
    fhs.push(fh)
  }
  const onDisk = await readdir(join(fx.dir, 'block', 'staging'))
  t.equal(onDisk.length, 10, 'the last 10 went to disk')
  for (const fh of fhs) {
    await fx.vfs.flush(fh)
    await fx.vfs.release(fh)
  }
  await fx.vfs.sealAll()
  for (const i of [0, 8191, 8192, 8201]) t.same(await readAll(fx, `/m${i}`), Buffer.from(`file ${i}`))
})

t.test('a sparse file keeps a small st_blocks once sealed (pages with data count, zero pages do not)', async (t) => {
  const fx = await vfsStore()
  t.teardown(async () => { await fx.close(); await removeFixture(fx) })
  const size = 40 * 1024 * KiB
  const fh = await fx.vfs.create('/sparse', 0o644, 0o101, ROOT_CALLER)
  await fx.vfs.write(fh, Buffer.from('head'), 0)
  await fx.vfs.write(fh, Buffer.from('middle'), 17 * 1024 * KiB + 5)
  await fx.vfs.write(fh, Buffer.from('tail'), size - 4)
  await fx.vfs.flush(fh)
  await fx.vfs.release(fh)
  const staged = await fx.vfs.getattr('/sparse')
  await fx.vfs.sealAll()
  const sealed = await fx.vfs.getattr('/sparse')
  t.equal(sealed.size, size)
  t.ok(staged.blocks <= 32, `staged: ${staged.blocks} blocks`)
  t.ok(sealed.blocks <= 32, `sealed: ${sealed.blocks} blocks (three pages of data)`)
})

t.test('sealAll fails, naming the cause, while a closed file cannot be sealed; it is sealed once it can', async (t) => {
  const fx = await vfsStore({ seal: LONG_DEBOUNCE })
  t.teardown(async () => { await fx.close(); await removeFixture(fx) })
  const packs = join(fx.dir, 'block', 'packs')
  await rm(packs, { recursive: true, force: true })
  await fsWriteFile(packs, 'not a directory')
  const data = randomBytes(100 * KiB)
  const fh = await fx.vfs.create('/blocked', 0o644, 0o101, ROOT_CALLER)
  await fx.vfs.write(fh, data, 0)
  await fx.vfs.flush(fh)
  await fx.vfs.release(fh)
  await t.rejects(fx.vfs.sealAll(), { message: /1 closed file\(s\) could not be sealed/ }, 'no silent success')
  t.same(await readAll(fx, '/blocked'), data, 'the file reads from staging meanwhile')
  await rm(packs)
  await fx.vfs.sealAll()
  t.equal(fx.vfs.files.stagingBytes().files, 0, 'sealed once packs can be written')
  t.same(await readAll(fx, '/blocked'), data)
})
