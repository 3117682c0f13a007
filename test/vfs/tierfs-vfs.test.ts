import t from 'tap'
import { createHash, randomBytes } from 'node:crypto'
import { readdir } from 'node:fs/promises'
import { TierfsError } from '../../src/errors.js'
import { O_RDONLY, O_RDWR, O_TRUNC, RENAME_NOREPLACE, XATTR_CREATE, XATTR_REPLACE } from '../../src/vfs/vfs.js'
import { removeFixture, ROOT_CALLER, vfsStore, type VfsFixture } from '../support/vfs-store.js'

const user = { uid: 1000, gid: 1000, pid: 2 }

async function writeFile(fx: VfsFixture, path: string, data: Buffer, caller = ROOT_CALLER): Promise<void> {
  const fh = await fx.vfs.create(path, 0o644, 0o101, caller)
  for (let off = 0; off < data.length; off += 128 * 1024) {
    await fx.vfs.write(fh, data.subarray(off, Math.min(data.length, off + 128 * 1024)), off)
  }
  await fx.vfs.release(fh)
}

async function readAll(fx: VfsFixture, path: string): Promise<Buffer> {
  const fh = await fx.vfs.open(path, O_RDONLY, ROOT_CALLER)
  const parts: Buffer[] = []
  let off = 0
  for (;;) {
    const buf = Buffer.alloc(128 * 1024)
    const n = await fx.vfs.read(fh, buf, off)
    if (n === 0) break
    parts.push(buf.subarray(0, n))
    off += n
  }
  await fx.vfs.release(fh)
  return Buffer.concat(parts)
}

const code = (p: Promise<unknown>): Promise<string> => p.then(() => 'ok', (e: unknown) => (e instanceof TierfsError ? e.code : String(e)))

t.test('files: write, read from staging, seal, read from chunks', async (t) => {
  const fx = await vfsStore()
  t.teardown(async () => { await fx.close(); await removeFixture(fx) })
  const small = Buffer.from('hello tierfs\n')
  const big = randomBytes(5 * 1024 * 1024 + 123)
  await writeFile(fx, '/small', small)
  await writeFile(fx, '/big', big)
  t.same(await readAll(fx, '/big'), big, 'readable before the seal')
  await fx.vfs.sealAll()
  t.equal((await readdir(`${fx.dir}/block/staging`)).length, 0, "staging emptied after seal")
  t.same(await readAll(fx, '/small'), small)
  t.same(await readAll(fx, '/big'), big, 'readable from chunks')
  const st = await fx.vfs.getattr('/big')
  t.equal(st.size, big.length)
  t.equal(st.mode & 0o170000, 0o100000)
  t.ok(st.blocks >= Math.floor(big.length / 512), 'blocks cover the data')
  const map = await fx.store.meta.getFileMap(st.ino as never)
  t.equal(map?.kind, 'extents')
  const smallMap = await fx.store.meta.getFileMap((await fx.vfs.getattr('/small')).ino as never)
  t.equal(smallMap?.kind, 'inline', 'small files stay inline')
})

t.test('overwrite in the middle of a sealed file, truncate grow and shrink', async (t) => {
  const fx = await vfsStore()
  t.teardown(async () => { await fx.close(); await removeFixture(fx) })
  const data = randomBytes(3 * 1024 * 1024)
  await writeFile(fx, '/f', data)
  await fx.vfs.sealAll()
  const fh = await fx.vfs.open('/f', O_RDWR, ROOT_CALLER)
  await fx.vfs.write(fh, Buffer.from('XYZ'), 1_000_000)
  await fx.vfs.release(fh)
  data.write('XYZ', 1_000_000)
  await fx.vfs.sealAll()
  t.same(await readAll(fx, '/f'), data, 'partial overwrite keeps the rest')
  await fx.vfs.truncate('/f', 10)
  await fx.vfs.sealAll()
  t.same(await readAll(fx, '/f'), data.subarray(0, 10), 'shrink')
  await fx.vfs.truncate('/f', 100_000)
  await fx.vfs.sealAll()
  const grown = await readAll(fx, '/f')
  t.equal(grown.length, 100_000)
  t.same(grown.subarray(0, 10), data.subarray(0, 10))
  t.ok(grown.subarray(10).every((b) => b === 0), 'grown part reads as zeros')
  const fh2 = await fx.vfs.open('/f', O_RDWR | O_TRUNC, ROOT_CALLER)
  t.equal((await fx.vfs.fgetattr(fh2)).size, 0, 'O_TRUNC')
  await fx.vfs.release(fh2)
})

t.test('sparse file beyond 4 GiB costs no space', async (t) => {
  const fx = await vfsStore()
  t.teardown(async () => { await fx.close(); await removeFixture(fx) })
  const fh = await fx.vfs.create('/sparse', 0o644, 0o101, ROOT_CALLER)
  const off = 5 * 1024 * 1024 * 1024
  await fx.vfs.write(fh, Buffer.from('end'), off)
  await fx.vfs.release(fh)
  await fx.vfs.sealAll()
  const st = await fx.vfs.getattr('/sparse')
  t.equal(st.size, off + 3)
  t.ok(st.blocks < 64, `sealed sparse file has few blocks (${st.blocks})`)
  const rfh = await fx.vfs.open('/sparse', O_RDONLY, ROOT_CALLER)
  const buf = Buffer.alloc(8)
  t.equal(await fx.vfs.read(rfh, buf, off - 5), 8)
  t.same(buf, Buffer.concat([Buffer.alloc(5), Buffer.from('end')]))
  await fx.vfs.release(rfh)
  const status = fx.store.meta
  let stored = 0
  for await (const p of status.packs()) stored += p.size
  t.ok(stored < 16 * 1024 * 1024, `5 GiB of holes stored in ${stored} bytes`)
})

t.test('dedup: the same data under two names is stored once', async (t) => {
  const fx = await vfsStore()
  t.teardown(async () => { await fx.close(); await removeFixture(fx) })
  const data = randomBytes(8 * 1024 * 1024)
  const packBytes = async (): Promise<number> => { let n = 0; for await (const p of fx.store.meta.packs()) n += p.size; return n }
  await writeFile(fx, '/a', data)
  await fx.vfs.sealAll()
  const first = await packBytes()
  await writeFile(fx, '/b', data)
  await fx.vfs.sealAll()
  const second = await packBytes()
  t.ok(first >= data.length, 'first copy stored')
  t.ok(second - first < data.length / 100, `second copy added ${second - first} bytes`)
  let refs = 0
  for await (const c of fx.store.meta.chunks()) refs += c.refs
  const map = await fx.store.meta.getFileMap((await fx.vfs.getattr('/a')).ino as never)
  t.equal(refs, 2 * (map?.kind === 'extents' ? map.extents.length : 0), 'each chunk referenced by both files')
})

t.test('namespace: mkdir, rename rules, links, nlink', async (t) => {
  const fx = await vfsStore()
  t.teardown(async () => { await fx.close(); await removeFixture(fx) })
  const v = fx.vfs
  await v.mkdir('/d1', 0o755, ROOT_CALLER)
  await v.mkdir('/d1/sub', 0o755, ROOT_CALLER)
  await v.mkdir('/d2', 0o755, ROOT_CALLER)
  t.equal((await v.getattr('/')).nlink, 4, 'root: 2 + two subdirs')
  t.equal((await v.getattr('/d1')).nlink, 3)
  await writeFile(fx, '/d1/f', Buffer.from('one'))
  await writeFile(fx, '/d2/g', Buffer.from('two'))
  t.equal(await code(v.mkdir('/d1', 0o755, ROOT_CALLER)), 'EXISTS')
  t.equal(await code(v.rename('/d1', '/d1/sub/x', 0)), 'INVALID', 'into own subtree')
  t.equal(await code(v.rename('/d1/f', '/d2/g', RENAME_NOREPLACE)), 'EXISTS')
  t.equal(await code(v.rename('/d1', '/d2', 0)), 'NOT_EMPTY')
  t.equal(await code(v.rename('/d1/f', '/d2', 0)), 'IS_DIR')
  t.equal(await code(v.rename('/d2', '/d1/f', 0)), 'NOT_DIR')
  await v.rename('/d1/f', '/d2/g', 0)
  t.same(await readAll(fx, '/d2/g'), Buffer.from('one'), 'rename over a file replaces it')
  t.equal(await code(v.getattr('/d1/f')), 'NOT_FOUND')
  await v.rename('/d1/sub', '/d2/sub', 0)
  t.equal((await v.getattr('/d1')).nlink, 2, 'source parent lost a subdir')
  t.equal((await v.getattr('/d2')).nlink, 3, 'destination parent gained one')
  await v.mkdir('/empty', 0o755, ROOT_CALLER)
  await v.rename('/d2/sub', '/empty', 0)
  t.equal((await v.getattr('/')).nlink, 5, 'rename over an empty dir removes it')
  await v.link('/d2/g', '/d1/hard')
  t.equal((await v.getattr('/d2/g')).nlink, 2)
  t.equal((await v.getattr('/d1/hard')).ino, (await v.getattr('/d2/g')).ino)
  await v.unlink('/d2/g')
  t.equal((await v.getattr('/d1/hard')).nlink, 1)
  t.same(await readAll(fx, '/d1/hard'), Buffer.from('one'))
  await v.symlink('../d1/hard', '/d2/sym', ROOT_CALLER)
  t.equal(await v.readlink('/d2/sym'), '../d1/hard')
  t.equal((await v.getattr('/d2/sym')).mode & 0o170000, 0o120000)
  t.equal(await code(v.rmdir('/d1')), 'NOT_EMPTY')
  t.equal(await code(v.unlink('/d1')), 'IS_DIR')
  t.equal(await code(v.rmdir('/d1/hard')), 'NOT_DIR')
  t.equal(await code(v.getattr('/d1/hard/x')), 'NOT_DIR')
  t.same((await v.readdir('/d2')).map((e) => e.name).sort(), ['sym'])
})

t.test('ownership from the caller, setgid directories, times', async (t) => {
  const fx = await vfsStore()
  t.teardown(async () => { await fx.close(); await removeFixture(fx) })
  const v = fx.vfs
  await v.mkdir('/pub', 0o2777, ROOT_CALLER)
  await v.chown('/pub', 0, 50)
  await writeFile(fx, '/pub/mine', Buffer.from('x'), user)
  const st = await v.getattr('/pub/mine')
  t.equal(st.uid, 1000)
  t.equal(st.gid, 50, 'setgid dir: group inherited')
  await v.mkdir('/pub/sub', 0o755, user)
  t.equal((await v.getattr('/pub/sub')).mode & 0o2000, 0o2000, 'setgid propagates to subdirs')
  await v.utimens('/pub/mine', 1_000_000_000_123_456_789n, 1_100_000_000_987_654_321n)
  const t1 = await v.getattr('/pub/mine')
  t.equal(t1.atimeNs, 1_000_000_000_123_456_789n)
  t.equal(t1.mtimeNs, 1_100_000_000_987_654_321n, 'nanosecond mtime')
  await v.utimens('/pub/mine', 'omit', 'now')
  const t2 = await v.getattr('/pub/mine')
  t.equal(t2.atimeNs, t1.atimeNs, 'UTIME_OMIT keeps atime')
  t.ok(t2.mtimeNs > t1.mtimeNs, 'UTIME_NOW sets mtime')
  const before = await v.getattr('/pub/mine')
  await new Promise((r) => setTimeout(r, 5))
  await v.chmod('/pub/mine', 0o600)
  const after = await v.getattr('/pub/mine')
  t.equal(after.mode & 0o7777, 0o600)
  t.ok(after.ctimeNs > before.ctimeNs, 'chmod updates ctime')
  t.equal(after.mtimeNs, before.mtimeNs, 'chmod keeps mtime')
  const dirBefore = (await v.getattr('/pub')).mtimeNs
  await new Promise((r) => setTimeout(r, 5))
  await v.rename('/pub/mine', '/pub/yours', 0)
  t.ok((await v.getattr('/pub')).mtimeNs > dirBefore, 'rename updates the parent mtime')
})

t.test('xattrs', async (t) => {
  const fx = await vfsStore()
  t.teardown(async () => { await fx.close(); await removeFixture(fx) })
  const v = fx.vfs
  await writeFile(fx, '/f', Buffer.from('x'))
  await v.setxattr('/f', 'user.a', Buffer.from('1'), 0)
  t.equal(await code(v.setxattr('/f', 'user.a', Buffer.from('2'), XATTR_CREATE)), 'EXISTS')
  t.equal(await code(v.setxattr('/f', 'user.b', Buffer.from('2'), XATTR_REPLACE)), 'NO_XATTR')
  t.same(await v.getxattr('/f', 'user.a'), Buffer.from('1'))
  t.same(await v.listxattr('/f'), ['user.a'])
  t.equal((await v.getxattr('/f', 'user.tierfs.tier')).toString(), 'block')
  t.equal(await code(v.setxattr('/f', 'user.tierfs.tier', Buffer.from('cold'), 0)), 'PERM')
  t.equal(await code(v.getxattr('/f', 'security.capability')), 'NO_XATTR')
  await v.removexattr('/f', 'user.a')
  t.equal(await code(v.getxattr('/f', 'user.a')), 'NO_XATTR')
  t.equal(await code(v.removexattr('/f', 'user.a')), 'NO_XATTR')
})

t.test('unlinked open file stays readable until the last close', async (t) => {
  const fx = await vfsStore()
  t.teardown(async () => { await fx.close(); await removeFixture(fx) })
  const v = fx.vfs
  await writeFile(fx, '/f', Buffer.from('still here'))
  await v.sealAll()
  const fh = await v.open('/f', O_RDONLY, ROOT_CALLER)
  const ino = (await v.fgetattr(fh)).ino
  await v.unlink('/f')
  t.equal(await code(v.getattr('/f')), 'NOT_FOUND')
  const buf = Buffer.alloc(32)
  const n = await v.read(fh, buf, 0)
  t.equal(buf.subarray(0, n).toString(), 'still here')
  t.equal((await v.fgetattr(fh)).nlink, 0)
  await v.release(fh)
  t.equal(await fx.store.meta.getInode(ino as never), undefined, 'inode gone after the last close')
})

t.test('crash recovery: staging left behind is resealed, nothing acknowledged is lost', async (t) => {
  const fx = await vfsStore({ seal: { debounceMs: 60_000, batchFiles: 512, batchBytes: 1 << 28 } })
  const data = randomBytes(2 * 1024 * 1024 + 7)
  await writeFile(fx, '/kept', data)
  await fx.vfs.mkdir('/dir', 0o755, ROOT_CALLER)
  t.equal(fx.vfs.files.stagingBytes().files, 1, 'not sealed yet (long debounce)')
  await fx.crash()
  const again = await fx.reopen()
  t.teardown(async () => { await again.close(); await removeFixture(again) })
  t.same(createHash('sha256').update(await readAll(again, '/kept')).digest('hex'), createHash('sha256').update(data).digest('hex'))
  await again.vfs.sealAll()
  t.same(await readAll(again, '/kept'), data, 'sealed after recovery')
  t.equal((await again.vfs.getattr('/dir')).mode & 0o170000, 0o040000)
})
