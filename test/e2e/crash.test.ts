import t, { type Test } from 'tap'
import { spawn } from 'node:child_process'
import { createReadStream } from 'node:fs'
import { open, readFile, readdir, stat, writeFile } from 'node:fs/promises'
import { createHash, randomInt } from 'node:crypto'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { childEnv, ROOT, tempMount, type TestMount } from '../support/tierfs-mount.js'
import { pseudoRandom, sha256, sha256File, sleep, waitSealed } from '../support/e2e-io.js'

const WRITER = join(ROOT, 'test/e2e/fixtures/crash-writer.mjs')
const ITERATIONS = Number(process.env.TIERFS_CRASH_ITERATIONS ?? 20)
const MiB = 1024 * 1024

interface Begin { ev: 'begin'; path: string; kind: string; keep: Array<{ offset: number; length: number; sha256: string }>; minSize: number }
interface Done { ev: 'done'; path: string; sha256: string; size: number; how: 'fsync' | 'close' }
type Line = Begin | Done

interface WriterRun {
  lines: Line[]
  /** Resolves once the writer has made its directory on the mount. */
  ready: Promise<void>
  exit: Promise<{ code: number | null; signal: string | null; stderr: string }>
  kill(): void
  pid: number | undefined
}

function startWriter(dir: string, seed: number, budget: number): WriterRun {
  const child = spawn(process.execPath, [WRITER, dir, String(seed), String(budget)], { stdio: ['ignore', 'pipe', 'pipe'], env: childEnv() })
  const lines: Line[] = []
  let onReady!: () => void
  const ready = new Promise<void>((ok) => { onReady = ok })
  createInterface({ input: child.stdout }).on('line', (l) => {
    const line = JSON.parse(l) as Line | { ev: 'ready' }
    if (line.ev === 'ready') onReady()
    else lines.push(line)
  })
  let stderr = ''
  child.stderr.setEncoding('utf8')
  child.stderr.on('data', (d: string) => { stderr += d })
  const exit = new Promise<{ code: number | null; signal: string | null; stderr: string }>((ok) => {
    // 'close' waits for stdout to end, so every line is in `lines`.
    child.on('close', (code, signal) => ok({ code, signal, stderr }))
  })
  void exit.then(() => onReady())
  return { lines, ready, exit, kill: () => child.kill('SIGKILL'), pid: child.pid }
}

async function hashRange(path: string, offset: number, length: number): Promise<string> {
  const h = createHash('sha256')
  if (length > 0) for await (const b of createReadStream(path, { start: offset, end: offset + length - 1, highWaterMark: 1 << 20 })) h.update(b as Buffer)
  return h.digest('hex')
}

/** Last event per path: what the file must hold now. */
function lastEvents(lines: Line[]): Map<string, Line> {
  const last = new Map<string, Line>()
  for (const l of lines) last.set(l.path, l)
  return last
}

/**
 * Checks every file the writer touched: acknowledged ones exactly, in-progress ones against
 * their keep ranges. Returns the hash each file has now (the expectation from here on).
 */
async function verify(t: Test, dir: string, lines: Line[], label: string): Promise<Map<string, string>> {
  const now = new Map<string, string>()
  let acked = 0
  let fsynced = 0
  const inProgress: string[] = []
  for (const [path, ev] of lastEvents(lines)) {
    const full = join(dir, path)
    const st = await stat(full).catch((err: NodeJS.ErrnoException) => err)
    if (ev.ev === 'done') {
      acked++
      if (ev.how === 'fsync') fsynced++
      if (st instanceof Error) { t.fail(`${label} ${path}: acknowledged (${ev.how}) but ${st.code}`); continue }
      const got = await sha256File(full).catch((err: NodeJS.ErrnoException) => `read failed: ${err.code}`)
      if (st.size !== ev.size || got !== ev.sha256) {
        t.fail(`${label} ${path}: acknowledged (${ev.how}) ${ev.size} bytes, found ${st.size} bytes, contents ${got === ev.sha256 ? 'match' : 'differ'}`)
      }
      now.set(path, got)
      continue
    }
    inProgress.push(ev.kind)
    if (st instanceof Error) {
      if (ev.kind !== 'create' || st.code !== 'ENOENT') t.fail(`${label} ${path}: ${ev.kind} in progress, file ${st.code}`)
      continue
    }
    if (st.size < ev.minSize) t.fail(`${label} ${path}: ${ev.kind} in progress: ${st.size} bytes, below the ${ev.minSize} it had`)
    for (const k of ev.keep) {
      const got = await hashRange(full, k.offset, k.length).catch((err: NodeJS.ErrnoException) => `read failed: ${err.code}`)
      if (got !== k.sha256) t.fail(`${label} ${path}: ${ev.kind} in progress destroyed bytes ${k.offset}..${k.offset + k.length} it never wrote`)
    }
    now.set(path, await sha256File(full))
  }
  t.comment(`${label}: ${acked} acknowledged files (${fsynced} fsynced), in progress at the kill: ${inProgress.join(', ') || 'none'}`)
  return now
}

async function fsckClean(t: Test, m: TestMount, label: string): Promise<void> {
  const r = await m.cli(['fsck', m.store, '--json'])
  if (r.code !== 0) t.fail(`${label}: fsck exit ${r.code}: ${r.stdout}${r.stderr}`)
  else {
    const rep = JSON.parse(r.stdout) as { problems: unknown[]; pendingStaging: number }
    if (rep.problems.length > 0) t.fail(`${label}: fsck problems ${JSON.stringify(rep.problems)}`)
  }
}

t.test(`kill -9 of the daemon under a writer, ${ITERATIONS} times`, async (t) => {
  const m = await tempMount()
  t.teardown(() => m.cleanup())
  const seed = Number(process.env.TIERFS_CRASH_SEED ?? randomInt(2 ** 31))
  t.comment(`seed ${seed} (TIERFS_CRASH_SEED to repeat the writers; kill times vary)`)
  const expected = new Map<string, string>()
  const failuresBefore = (): number => t.counts.fail
  for (let i = 0; i < ITERATIONS; i++) {
    const dir = join(m.mnt, `it${i}`)
    const writer = startWriter(dir, seed + i, 6 * MiB)
    // The kill is timed from the writer's first operation (node start-up varies under load).
    await writer.ready
    const delay = randomInt(1500)
    await sleep(delay)
    const t0 = Date.now()
    await m.kill9()
    const killedAt = writer.lines.length
    const timer = setTimeout(() => {
      void (async () => {
        const pid = writer.pid
        const wchan = await readFile(`/proc/${pid}/wchan`, 'utf8').catch(() => '?')
        const stack = await readFile(`/proc/${pid}/stack`, 'utf8').catch(() => '?')
        t.comment(`writer ${pid} still running 15 s after the kill: wchan ${wchan} ${stack}`)
        writer.kill()
      })()
    }, 15_000)
    const ex = await writer.exit
    clearTimeout(timer)
    t.comment(`iteration ${i}: killed after ${delay} ms, ${killedAt} events; writer exit ${ex.code ?? ex.signal} ${ex.stderr.trim()}`)
    const leftovers = await readdir(m.mnt).catch(() => [])
    t.same(leftovers, [], 'nothing was written beside the mount (the writer worked through it)')
    const t1 = Date.now()
    await m.mount()
    const t2 = Date.now()
    const now = await verify(t, dir, writer.lines, `iteration ${i}`)
    for (const [p, h] of now) expected.set(join(`it${i}`, p), h)
    const t3 = Date.now()
    await m.umount()
    const t4 = Date.now()
    await fsckClean(t, m, `iteration ${i}`)
    const t5 = Date.now()
    await m.mount()
    t.comment(`iteration ${i} ms: kill+writer exit ${t1 - t0}, mount ${t2 - t1}, verify ${t3 - t2}, umount ${t4 - t3}, fsck ${t5 - t4}, mount ${Date.now() - t5}`)
    if (failuresBefore() > 0 && i >= 2) break
  }
  // Later crashes and recoveries must not disturb what earlier iterations left.
  let bad = 0
  for (const [p, h] of expected) {
    const got = await sha256File(join(m.mnt, p)).catch((err: NodeJS.ErrnoException) => `read failed: ${err.code}`)
    if (got !== h) { bad++; t.fail(`${p} changed after later crashes`) }
  }
  t.equal(bad, 0, `${expected.size} files from all iterations intact at the end`)
  await waitSealed(m)
  await m.umount()
  await fsckClean(t, m, 'final')
  t.equal(t.counts.fail, 0, 'no acknowledged data lost, fsck clean after every crash')
})

t.test('kill -9 while a sealed file is copied back into staging for a write', async (t) => {
  // The first write to a sealed file copies its committed bytes into a staging file. A crash
  // during that copy must not make the partial copy the file's contents.
  const m = await tempMount()
  t.teardown(() => m.cleanup())
  const size = 48 * MiB
  const data = pseudoRandom('materialize', size)
  const path = join(m.mnt, 'base')
  await writeFile(path, data)
  await waitSealed(m)
  const stagingDir = join(m.store, 'block/staging')
  const fh = await open(path, 'a')
  const write = fh.write(Buffer.from('!')).then(() => 'written', (err: NodeJS.ErrnoException) => `failed ${err.code}`)
  let seen = 0
  const deadline = Date.now() + 20_000
  while (Date.now() < deadline) {
    const names = await readdir(stagingDir).catch(() => [])
    const sizes = await Promise.all(names.map((n) => stat(join(stagingDir, n)).then((s) => s.size, () => 0)))
    seen = Math.max(0, ...sizes)
    if (seen > 0) break
    await sleep(2)
  }
  await m.kill9()
  const outcome = await write
  await fh.close().catch(() => undefined)
  t.comment(`killed with ${seen} of ${size} bytes copied into staging; the write ${outcome}`)
  t.ok(seen > 0 && seen < size, 'the kill hit the copy')
  await m.mount()
  const got = await sha256File(path)
  const appended = sha256(Buffer.concat([data, Buffer.from('!')]))
  t.ok(got === sha256(data) || (outcome === 'written' && got === appended), `the file holds its sealed contents (${(await stat(path)).size} bytes)`)
  await waitSealed(m)
  await m.umount()
  await fsckClean(t, m, 'after the kill during the copy')
})

t.test('kill -9 while a 30 MiB file is being sealed', async (t) => {
  const m = await tempMount()
  t.teardown(() => m.cleanup())
  const delays = [100, 170, 250, 330, 450, 600]
  const files: Array<{ path: string; sum: string }> = []
  for (const [i, delay] of delays.entries()) {
    const data = pseudoRandom(`seal-${i}`, 30 * MiB)
    const path = join(m.mnt, `big${i}`)
    await writeFile(path, data)
    const closedAt = Date.now()
    await sleep(delay - (Date.now() - closedAt))
    await m.kill9()
    await m.mount()
    const log = await readFile(join(m.store, 'log/tierfs.log'), 'utf8')
    const resealed = log.split('\n').filter((l) => l.includes('resealing')).length
    t.comment(`kill ${delay} ms after close: ${resealed} reseal lines in the log so far`)
    files.push({ path, sum: sha256(data) })
    for (const f of files) t.equal(await sha256File(f.path), f.sum, `${f.path} intact after the kill at ${delay} ms`)
    await waitSealed(m)
    await m.umount()
    await fsckClean(t, m, `kill ${delay} ms after close`)
    await m.mount()
  }
  // An overwrite in place of a sealed file, killed while it is resealed.
  const target = files[0]!
  const fh = await open(target.path, 'r+')
  const patch = pseudoRandom('patch', 1 * MiB)
  await fh.write(patch, 0, patch.length, 7 * MiB)
  await fh.close()
  await sleep(260)
  await m.kill9()
  await m.mount()
  const expectedData = pseudoRandom('seal-0', 30 * MiB)
  patch.copy(expectedData, 7 * MiB)
  t.equal(await sha256File(target.path), sha256(expectedData), 'patched file intact after a kill during its reseal')
  await waitSealed(m)
  await m.umount()
  await fsckClean(t, m, 'after the patch')
})
