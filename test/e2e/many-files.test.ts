import t from 'tap'
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { run, tempMount } from '../support/tierfs-mount.js'
import { pseudoRandom, waitSealed } from '../support/e2e-io.js'

/** The daemon's descriptor limit for this test: far below the files created. */
const FD_LIMIT = 1024

/** Writes `count` files through the mount, `concurrency` at a time, into `dirs` directories. */
async function createMany(root: string, prefix: string, count: number, dirs: number, body: (i: number) => Buffer, concurrency = 4): Promise<void> {
  for (let d = 0; d < dirs; d++) await mkdir(join(root, `${prefix}${d}`), { recursive: true })
  let next = 0
  const worker = async (): Promise<void> => {
    for (let i = next++; i < count; i = next++) await writeFile(join(root, `${prefix}${i % dirs}`, `f${i}`), body(i))
  }
  await Promise.all(Array.from({ length: concurrency }, worker))
}

t.test('thousands of files written faster than they are sealed never exhaust the daemon\'s descriptors', async (t) => {
  const m = await tempMount()
  t.teardown(() => m.cleanup())
  const pid = await m.pid()
  const lim = await run('prlimit', [`--pid=${pid}`, `--nofile=${FD_LIMIT}:${FD_LIMIT}`])
  t.equal(lim.code, 0, `daemon limited to ${FD_LIMIT} descriptors ${lim.stderr}`)

  let mostFds = 0
  const sampler = setInterval(() => {
    void readdir(`/proc/${pid}/fd`).then((l) => { mostFds = Math.max(mostFds, l.length) }, () => undefined)
  }, 200)
  t.teardown(() => clearInterval(sampler))

  // Small files (staged in memory, committed inline at close) and larger ones (staging files).
  const small = (i: number): Buffer => Buffer.from(`small file ${i}\n`)
  const larger = (i: number): Buffer => pseudoRandom(`larger ${i}`, 12 * 1024 + (i % 7) * 1000)
  await createMany(m.mnt, 's', 4 * FD_LIMIT, 20, small)
  await createMany(m.mnt, 'l', 3 * FD_LIMIT, 20, larger)
  clearInterval(sampler)
  t.comment(`most descriptors open in the daemon while writing: ${mostFds}`)
  t.ok(mostFds < FD_LIMIT / 2, `descriptors stay bounded (${mostFds})`)

  const st = await waitSealed(m)
  t.equal(st.files, 7 * FD_LIMIT, 'every file exists')
  let bad = 0
  for (let i = 0; i < 4 * FD_LIMIT; i += 37) if (!(await readFile(join(m.mnt, `s${i % 20}`, `f${i}`))).equals(small(i))) bad++
  for (let i = 0; i < 3 * FD_LIMIT; i += 29) if (!(await readFile(join(m.mnt, `l${i % 20}`, `f${i}`))).equals(larger(i))) bad++
  t.equal(bad, 0, 'sampled files read back exact')

  await m.umount()
  await m.mount()
  let bad2 = 0
  for (let i = 1; i < 3 * FD_LIMIT; i += 31) if (!(await readFile(join(m.mnt, `l${i % 20}`, `f${i}`))).equals(larger(i))) bad2++
  for (let i = 1; i < 4 * FD_LIMIT; i += 41) if (!(await readFile(join(m.mnt, `s${i % 20}`, `f${i}`))).equals(small(i))) bad2++
  t.equal(bad2, 0, 'and after a remount')
})
