import t from 'tap'
import { chmod, link, lstat, mkdir, readdir, readlink, rm, symlink, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { run, tempMount } from '../support/tierfs-mount.js'
import { pseudoRandom, sha256File, sleep, waitSealed } from '../support/e2e-io.js'

/**
 * Four nights of a small HBase-like table backed up in ingest mode (the source is an external
 * directory), one restore point a night, then: each restore point copied out with cp -a equals
 * that night's source; the compaction night costs almost nothing; /.history between two nights;
 * diff and restore --changed-between; kill -9 during an ingest.
 */

type Entry = { type: string; mode: number; size: number; mtimeNs: bigint; sha?: string; target?: string }
type Tree = Map<string, Entry>

/** Every entry under `root` ('' is the root itself): type, mode, size, mtime, contents. */
async function treeOf(root: string): Promise<Tree> {
  const out: Tree = new Map()
  const walk = async (rel: string): Promise<void> => {
    const p = rel === '' ? root : join(root, rel)
    const st = await lstat(p, { bigint: true })
    const e: Entry = { type: st.isDirectory() ? 'dir' : st.isSymbolicLink() ? 'symlink' : st.isFile() ? 'file' : 'other', mode: Number(st.mode), size: Number(st.size), mtimeNs: st.mtimeNs }
    if (st.isFile()) e.sha = await sha256File(p)
    if (st.isSymbolicLink()) e.target = await readlink(p)
    if (st.isDirectory()) {
      e.size = 0
      for (const name of (await readdir(p)).sort()) await walk(rel === '' ? name : `${rel}/${name}`)
    }
    out.set(rel, e)
  }
  await walk('')
  return out
}

/** Differences between two trees as readable lines (empty: equal). */
function treeDiff(got: Tree, want: Tree): string[] {
  const out: string[] = []
  for (const [p, w] of want) {
    const g = got.get(p)
    if (g === undefined) { out.push(`missing ${p}`); continue }
    for (const k of ['type', 'mode', 'size', 'mtimeNs', 'sha', 'target'] as const) {
      if (g[k] !== w[k]) out.push(`${p || '.'}: ${k} ${String(g[k])} != ${String(w[k])}`)
    }
  }
  for (const p of got.keys()) if (!want.has(p)) out.push(`extra ${p}`)
  return out
}

/** What `tierfs diff` should list between two trees (paths from the root, walk order not implied). */
function expectedChanges(a: Tree, b: Tree): string[] {
  const out: string[] = []
  for (const [p, y] of b) {
    if (p === '') continue
    const x = a.get(p)
    if (x === undefined) out.push(`added ${y.type} /${p}`)
    else if (x.type !== y.type) out.push(`modified ${y.type} /${p}`)
    else if (y.type === 'file' && (x.sha !== y.sha || x.size !== y.size || x.mtimeNs !== y.mtimeNs)) out.push(`modified file /${p}`)
    else if (y.type === 'symlink' && x.target !== y.target) out.push(`modified symlink /${p}`)
  }
  for (const [p, x] of a) if (p !== '' && !b.has(p)) out.push(`deleted ${x.type} /${p}`)
  return out.sort()
}

const ROW = 100
let nextKey = 0

/** HBase-like store file: unique header, rows of the key range [first, first+count), unique trailer. */
function rows(first: number, count: number): Buffer {
  const vals = pseudoRandom(`rows-${first}-${count}`, count * 41)
  const lines: string[] = []
  for (let i = 0; i < count; i++) {
    const key = String(first + i).padStart(10, '0')
    lines.push(`r${key}\tcf:q\t${vals.subarray(i * 41, i * 41 + 41).toString('hex')}\n`)
  }
  return Buffer.from(lines.join(''))
}

function storeFile(name: string, parts: Buffer[]): Buffer {
  return Buffer.concat([pseudoRandom(`header-${name}`, 1024), ...parts, pseudoRandom(`trailer-${name}`, 512)])
}

/** Row ranges of each store file, so a compaction can merge the very same rows. */
const ranges = new Map<string, Array<[number, number]>>()

async function flush(dir: string, name: string, count: number): Promise<void> {
  const range: [number, number] = [nextKey, count]
  nextKey += count
  ranges.set(name, [range])
  await writeFile(join(dir, name), storeFile(name, [rows(range[0], range[1])]), { mode: 0o644 })
}

async function compact(dir: string, inputs: string[], name: string): Promise<number> {
  const parts = inputs.flatMap((n) => ranges.get(n) ?? [])
  const data = storeFile(name, parts.map(([a, c]) => rows(a, c)))
  await writeFile(join(dir, name), data, { mode: 0o644 })
  ranges.set(name, parts)
  for (const n of inputs) await rm(join(dir, n))
  return data.length
}

t.test('four nights of an HBase-like table in ingest mode', async (t) => {
  const m = await tempMount({ config: { chunker: { minSize: 4096, avgSize: 16 * 1024, maxSize: 64 * 1024 } } })
  t.teardown(() => m.cleanup())
  const src = join(m.dir, 'hbase-src')
  const table = join(src, 'data/default/usertable')
  const r1 = join(table, 'r1/cf')
  const r2 = join(table, 'r2/cf')
  await mkdir(r1, { recursive: true })
  await mkdir(r2, { recursive: true })
  await mkdir(join(src, 'archive'))
  await mkdir(join(m.store, 'policies'), { recursive: true })
  await writeFile(join(m.store, 'policies/hbase.yaml'), [
    'name: hbase', 'match: { path: "/hbase/**" }', 'tiers:', '  - { tier: block }',
    'backup:', `  source: ${src}`, '  dest: /hbase', '',
  ].join('\n'))
  await m.cli(['policy', 'reload', m.mnt])

  const nights: Array<{ tree: Tree; point: string; summary: Record<string, any> }> = []
  const backup = async (label: string): Promise<Record<string, any>> => {
    const tree = await treeOf(src)
    const r = await m.cli(['backup', 'run', m.mnt, 'hbase', '--json'])
    if (r.code !== 0) throw new Error(`backup run failed: ${r.stdout}${r.stderr}`)
    const rec = JSON.parse(r.stdout) as { ok: boolean; summary: Record<string, any> }
    t.ok(rec.ok, `${label}: backup ran`)
    const s = rec.summary
    t.comment(`${label}: ${s.filesNew} new, ${s.filesChanged} changed, ${s.filesUnchanged} unchanged, ${s.deleted} deleted; read ${s.bytesRead} B, stored ${s.bytesStored} B in ${s.elapsedMs} ms`)
    nights.push({ tree, point: `hbase/${s.restorePoint.name}`, summary: s })
    return s
  }

  // Night 1: 20 store files of 40 rows (4 KiB) to 30,000 rows (3 MiB), table and region info, a
  // symlink and an archived hard link.
  const sizes = [40, 100, 300, 700, 1000, 2000, 3000, 5000, 8000, 30000, 60, 25000, 25000, 25000, 400, 1500, 4000, 6000, 10000, 20000]
  for (let i = 0; i < 20; i++) await flush(i < 10 ? r1 : r2, `f${String(i + 1).padStart(2, '0')}`, sizes[i] as number)
  await writeFile(join(table, '.tableinfo'), 'usertable v1\n')
  await writeFile(join(table, 'r1/.regioninfo'), 'r1 [0, 50000)\n', { mode: 0o640 })
  await writeFile(join(table, 'r2/.regioninfo'), 'r2 [50000, inf)\n', { mode: 0o640 })
  await chmod(join(table, 'r1/.regioninfo'), 0o640)
  await chmod(join(table, 'r2/.regioninfo'), 0o640)
  await symlink('data/default/usertable', join(src, 'current'))
  await link(join(r1, 'f05'), join(src, 'archive/f05'))
  const s1 = await backup('night 1')
  t.match(s1, { filesNew: 23, filesChanged: 0, filesUnchanged: 0, deleted: 0, hardLinks: 1, symlinks: 1, errors: 0 })

  // Night 2: two flushes (10%), the table info rewritten.
  await sleep(20)
  await flush(r1, 'f21', 3000)
  await flush(r1, 'f22', 800)
  await writeFile(join(table, '.tableinfo'), 'usertable v2\n')
  const s2 = await backup('night 2')
  t.match(s2, { filesNew: 2, filesChanged: 1, filesUnchanged: 22, deleted: 0 })
  t.equal(s2.bytesRead, (nights[1]!.tree.get('data/default/usertable/r1/cf/f21')!.size + nights[1]!.tree.get('data/default/usertable/r1/cf/f22')!.size + 13), 'only new and changed files are read')
  await sleep(50)
  const between = new Date().toISOString()
  await sleep(50)

  // Night 3: compaction: three store files of r2 merged into one new file, the inputs removed.
  const before = await waitSealed(m)
  const merged = await compact(r2, ['f12', 'f13', 'f14'], 'f23')
  const s3 = await backup('night 3')
  const after = await waitSealed(m)
  const grew = after.storedBytes - before.storedBytes
  t.match(s3, { filesNew: 1, filesChanged: 0, deleted: 3 })
  t.comment(`compaction: merged file ${merged} B, store grew ${grew} B (${((100 * grew) / merged).toFixed(2)}%)`)
  t.ok(grew < merged * 0.05, `the compacted file costs < 5% of its size (${grew} of ${merged} bytes)`)
  t.equal(s3.bytesStored, grew, 'the run reports the same growth as status')

  // Night 4: two flushes, an old file deleted, a mode changed, the symlink moved.
  await sleep(20)
  await flush(r1, 'f24', 1200)
  await flush(r2, 'f25', 900)
  await rm(join(r1, 'f01'))
  await chmod(join(r2, 'f11'), 0o600)
  await rm(join(src, 'current'))
  await symlink('data/default/usertable/r2', join(src, 'current'))
  const s4 = await backup('night 4')
  t.match(s4, { filesNew: 2, filesChanged: 1, deleted: 1 })

  const restored = join(m.dir, 'out')
  await mkdir(restored)
  for (let n = 0; n < nights.length; n++) {
    const night = nights[n]!
    const name = night.point.split('/')[1]!
    const dest = join(restored, `cp-night-${n + 1}`)
    const cp = await run('cp', ['-a', join(m.mnt, '.snapshots/hbase', name), dest])
    t.equal(cp.code, 0, `cp -a night ${n + 1}: ${cp.stderr}`)
    t.same(treeDiff(await treeOf(dest), night.tree), [], `cp -a of restore point ${night.point} equals night ${n + 1}'s source`)
  }

  const hist = join(restored, 'history')
  const cpHist = await run('cp', ['-a', join(m.mnt, '.history', between, 'hbase'), hist])
  t.equal(cpHist.code, 0, cpHist.stderr)
  t.same(treeDiff(await treeOf(hist), nights[1]!.tree), [], `/.history/${between} (between nights 2 and 3) shows night 2`)

  for (let n = 1; n < nights.length; n++) {
    const r = await m.cli(['diff', m.mnt, nights[n - 1]!.point, nights[n]!.point, '--json'])
    t.equal(r.code, 0, r.stderr)
    const got = r.stdout.trim().split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as { change: string; type: string; path: string })
    t.same(got.map((e) => `${e.change} ${e.type} ${e.path}`).sort(), expectedChanges(nights[n - 1]!.tree, nights[n]!.tree), `diff night ${n} -> night ${n + 1} lists exactly the changes`)
  }
  const human = await m.cli(['diff', m.mnt, nights[1]!.point, nights[2]!.point])
  t.match(human.stdout, /1 added, 0 modified, 3 deleted/, 'the text form ends with counts')

  // restore --changed-between: only what was added or modified from night 1 to night 2.
  const partial = join(restored, 'changed')
  const rc = await m.cli(['restore', m.mnt, nights[1]!.point, partial, '--changed-between', nights[0]!.point, nights[1]!.point, '--json'])
  t.equal(rc.code, 0, rc.stderr)
  const want = expectedChanges(nights[0]!.tree, nights[1]!.tree).filter((l) => !l.startsWith('deleted')).map((l) => l.split(' ')[2]!.slice(1))
  const got = [...(await treeOf(partial)).entries()].filter(([, e]) => e.type !== 'dir').map(([p]) => p).sort()
  t.same(got, want.sort(), 'exactly the added and modified files are restored')
  for (const p of got) t.equal((await treeOf(join(partial, p))).get('')!.sha, nights[1]!.tree.get(p)!.sha, `${p} has night 2's contents`)

  // A whole restore point through `tierfs restore`: cp -a's result, plus the hard link.
  const full = join(restored, 'full-night-1')
  const rf = await m.cli(['restore', m.mnt, nights[0]!.point, full, '--json'])
  t.equal(rf.code, 0, rf.stderr)
  const sum = JSON.parse(rf.stdout) as Record<string, any>
  t.comment(`restore of night 1: ${sum.files} files, ${sum.bytes} B in ${sum.elapsedMs} ms (${(sum.bytesPerSecond / 1048576).toFixed(1)} MiB/s); times: ${sum.times}, ${sum.mtimeFallbacks} touch fallbacks`)
  t.same(treeDiff(await treeOf(full), nights[0]!.tree), [], 'tierfs restore equals night 1')
  const a = await lstat(join(full, 'archive/f05'))
  const b = await lstat(join(full, 'data/default/usertable/r1/cf/f05'))
  t.ok(a.ino === b.ino && a.nlink === 2, 'the archived hard link is a hard link again')

  // Night 5 is killed mid-ingest: no restore point of a half-copied tree; the next run completes.
  // 1,000 small new files in a new region keep the run going a while; the kill lands as soon as
  // the region's directory appears in the destination (the walk reaches it last).
  const r3 = join(table, 'r3/cf')
  await mkdir(r3, { recursive: true })
  for (let i = 0; i < 1000; i++) await flush(r3, `s${String(i).padStart(4, '0')}`, 1 + (i % 3))
  const night5 = await treeOf(src)
  const pid = await m.pid()
  const killed = m.cli(['backup', 'run', m.mnt, 'hbase'])
  // Poll a directory that exists: a lookup of a missing name would be cached negative by the kernel.
  const parent = join(m.mnt, 'hbase/data/default/usertable')
  for (let i = 0; i < 3000; i++) {
    if ((await readdir(parent).catch(() => [] as string[])).includes('r3')) break
    await sleep(5)
  }
  process.kill(pid, 'SIGKILL')
  const k = await killed
  t.not(k.code, 0, 'the run in flight died with the daemon')
  for (let i = 0; i < 200; i++) {
    try { process.kill(pid, 0) } catch { break }
    await sleep(25)
  }
  await run('fusermount', ['-uz', m.mnt])
  await m.mount()
  const list = await m.cli(['snapshot', 'list', m.mnt, '--workflow', 'hbase', '--json'])
  t.same((JSON.parse(list.stdout) as Array<{ name: string }>).map((p) => `hbase/${p.name}`), nights.map((n) => n.point), 'no restore point of the half-copied tree')
  for (const n of [0, 3]) {
    const dest = join(restored, `after-kill-${n + 1}`)
    await run('cp', ['-a', join(m.mnt, '.snapshots/hbase', nights[n]!.point.split('/')[1]!), dest])
    t.same(treeDiff(await treeOf(dest), nights[n]!.tree), [], `night ${n + 1}'s restore point is intact after the kill`)
  }
  await m.umount()
  const f1 = await m.cli(['fsck', m.store, '--json'])
  t.equal(f1.code, 0, `fsck clean after the kill: ${f1.stdout}${f1.stderr}`)
  await m.mount()
  const s5 = await backup('night 5 (rerun)')
  t.ok(s5.filesNew >= 1 && s5.filesNew + s5.filesUnchanged === 1024, `the rerun copies what the killed run had not recorded (${s5.filesNew} new, ${s5.filesUnchanged} unchanged)`)
  const dest5 = join(restored, 'night-5')
  await run('cp', ['-a', join(m.mnt, '.snapshots/hbase', nights[4]!.point.split('/')[1]!), dest5])
  t.same(treeDiff(await treeOf(dest5), night5), [], 'the completed night 5 equals its source')
  await m.umount()
  const f2 = await m.cli(['fsck', m.store, '--json'])
  t.equal(f2.code, 0, `fsck clean at the end: ${f2.stdout}${f2.stderr}`)
})

t.test('a scheduled snapshot workflow runs in the daemon; SIGHUP reloads policies, a broken file keeps the last good set', async (t) => {
  const m = await tempMount()
  t.teardown(() => m.cleanup())
  await mkdir(join(m.mnt, 'app'))
  await writeFile(join(m.mnt, 'app/state'), 'v1\n')
  await mkdir(join(m.store, 'policies'), { recursive: true })
  const file = join(m.store, 'policies/app.yaml')
  await writeFile(file, ['name: app', 'match: { path: "/app/**" }', 'tiers:', '  - { tier: block }', 'backup:', '  schedule: "*/2 * * * * *"', ''].join('\n'))
  process.kill(await m.pid(), 'SIGHUP')
  let points: Array<{ name: string }> = []
  for (let i = 0; i < 100 && points.length < 2; i++) {
    await sleep(100)
    const r = await m.cli(['snapshot', 'list', m.mnt, '--workflow', 'app', '--json'])
    if (r.code === 0) points = JSON.parse(r.stdout) as Array<{ name: string }>
  }
  t.ok(points.length >= 2, `the schedule made restore points (${points.length})`)
  const st = await m.cli(['backup', 'status', m.mnt, '--json'])
  t.match(JSON.parse(st.stdout), [{ name: 'app', mode: 'snapshot', schedule: '*/2 * * * * *', lastRun: { ok: true, trigger: 'schedule' } }])
  t.match((await m.status()).workflows, [{ name: 'app' }], 'status shows the workflows')

  await writeFile(file, ['name: app', 'match: { path: "/app/**" }', 'tiers:', '  - { tier: block }', 'backup:', '  schedule: [not, a, cron', ''].join('\n'))
  process.kill(await m.pid(), 'SIGHUP')
  let logged = ''
  for (let i = 0; i < 50 && !logged.includes('app.yaml:'); i++) {
    await sleep(100)
    logged = await readFileText(join(m.store, 'log/tierfs.log'))
  }
  t.match(logged, /policy file rejected[^\n]*app\.yaml:\d+:\d+: /, 'the broken file is logged as file:line:col')
  const before = points.length
  await sleep(2500)
  const r = await m.cli(['snapshot', 'list', m.mnt, '--workflow', 'app', '--json'])
  t.ok((JSON.parse(r.stdout) as unknown[]).length > before, 'the last good workflow keeps running')
  const manual = await m.cli(['backup', 'run', m.mnt, 'app'])
  t.equal(manual.code, 0, manual.stderr)
  t.match(manual.stdout, /restore point app\//)
  const missing = await m.cli(['backup', 'run', m.mnt, 'nope'])
  t.equal(missing.code, 1)
  t.match(missing.stderr, /backup workflow "nope"/)
})

async function readFileText(path: string): Promise<string> {
  const { readFile } = await import('node:fs/promises')
  return readFile(path, 'utf8').catch(() => '')
}

t.test('prune runs on the config schedule: retention removes old restore points without a command', async (t) => {
  const m = await tempMount({ config: { prune: { schedule: '*/2 * * * * *' } } })
  t.teardown(() => m.cleanup())
  await mkdir(join(m.mnt, 'app'))
  await mkdir(join(m.store, 'policies'), { recursive: true })
  await writeFile(join(m.store, 'policies/app.yaml'), ['name: app', 'match: { path: "/app/**" }', 'tiers:', '  - { tier: block }',
    'backup:', '  schedule: "0 0 2 1 1 *"', '  retain: { last: 2 }', ''].join('\n'))
  process.kill(await m.pid(), 'SIGHUP')
  for (let i = 0; i < 5; i++) {
    await writeFile(join(m.mnt, 'app/state'), `v${i}\n`)
    const r = await m.cli(['backup', 'run', m.mnt, 'app'])
    t.equal(r.code, 0, r.stderr)
    await sleep(1100) // restore point names are whole seconds
  }
  let names: string[] = []
  for (let i = 0; i < 60; i++) {
    const r = await m.cli(['snapshot', 'list', m.mnt, '--workflow', 'app', '--json'])
    names = (JSON.parse(r.stdout) as Array<{ name: string }>).map((p) => p.name)
    if (names.length <= 2) break
    await sleep(250)
  }
  t.equal(names.length, 2, `the scheduled prune kept the last 2 (${names.join(', ')})`)
  const logged = await readFileText(join(m.store, 'log/tierfs.log'))
  t.match(logged, /scheduled prune finished[^\n]*"pointsRemoved":[1-9]/, 'and logged what it removed')
  t.equal((await readFileText(join(m.mnt, '.snapshots/app/latest/state'))), 'v4\n', 'the newest point reads')
})
