import { spawn, type ChildProcess } from 'node:child_process'
import { cp, mkdir, readFile, readdir, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { ROOT, run, tempMount, type TestMount } from '../support/tierfs-mount.js'

export type SubjectName = 'native' | 'passthrough' | 'tierfs'

/** One filesystem under test, as the benchmark drives it. */
export interface Subject {
  readonly name: SubjectName
  /** The directory the workloads use. */
  readonly root: string
  /**
   * Makes the next access cold: the kernel's page, dentry and inode caches are dropped, and a
   * daemon with caches of its own (tierfs: chunk and metadata caches) is restarted first.
   * Returns false when the kernel refused to drop its caches (not root).
   */
  cold(): Promise<boolean>
  /** Waits for background work the last workload caused (tierfs: sealing); returns ms waited. */
  settle(): Promise<number>
  /** Peak resident set of the serving daemon so far (kB, VmHWM), or undefined without one. */
  peakRssKb(): Promise<number | undefined>
  /** Resident set of the serving daemon right after its first mount (kB). */
  readonly idleRssKb: number | undefined
  /** The serving daemon's pid now (tierfs: changes at every remount), or undefined without one. */
  daemonPid(): Promise<number | undefined>
  close(): Promise<void>
}

/** Subjects not closed yet, so an interrupted bench can unmount what it mounted. */
export const liveSubjects = new Set<Subject>()

function track<S extends Subject>(s: S): S {
  const close = s.close.bind(s)
  s.close = async () => {
    liveSubjects.delete(s)
    await close()
  }
  liveSubjects.add(s)
  return s
}

/** Keeps the logs of every open tierfs subject before a failed run cleans up; returns `err` annotated. */
export async function keepLogsOnFailure(err: unknown): Promise<unknown> {
  const kept: string[] = []
  for (const s of liveSubjects) if ('keepLogs' in s) kept.push(await (s as TierfsSubject).keepLogs())
  if (kept.length > 0 && err instanceof Error) err.message += `\n(tierfs daemon logs kept in ${kept.join(', ')})`
  return err
}

/** The TypeScript loader the bench and its children run under. */
export const TS_LOADER = import.meta.resolve('@tapjs/typescript/import')

/** `sync` + drop page, dentry and inode caches; false when the kernel refuses (not root). */
export async function dropCaches(): Promise<boolean> {
  await run('sync', [])
  try {
    await writeFile('/proc/sys/vm/drop_caches', '3')
    return true
  } catch {
    return false
  }
}

/** VmHWM / VmRSS of a process in kB. */
export async function procMemKb(pid: number): Promise<{ hwm: number; rss: number } | undefined> {
  try {
    const s = await readFile(`/proc/${pid}/status`, 'utf8')
    const field = (k: string): number => Number(new RegExp(`^${k}:\\s+(\\d+)`, 'm').exec(s)?.[1] ?? NaN)
    return { hwm: field('VmHWM'), rss: field('VmRSS') }
  } catch {
    return undefined
  }
}

/** CPU seconds (user + system, all threads) a process has used so far. */
export async function cpuSeconds(pid: number): Promise<number | undefined> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8')
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    return (Number(f[11]) + Number(f[12])) / CLK_TCK
  } catch {
    return undefined
  }
}

/** Clock ticks per second of /proc/<pid>/stat (USER_HZ, 100 on every Linux build we run on). */
const CLK_TCK = 100

/** A plain directory on the disk that holds the stores. */
export async function nativeSubject(base: string): Promise<Subject> {
  const root = join(base, 'native')
  await mkdir(root, { recursive: true })
  return track({
    name: 'native', root,
    cold: dropCaches,
    settle: async () => 0,
    peakRssKb: async () => undefined,
    idleRssKb: undefined,
    daemonPid: async () => undefined,
    close: () => rm(root, { recursive: true, force: true }),
  })
}

/** PassthroughVfs over a plain directory, mounted by test/bench/passthrough-mount.ts in a child. */
export async function passthroughSubject(base: string): Promise<Subject> {
  const backing = join(base, 'passthrough-backing')
  const root = join(base, 'passthrough-mnt')
  await mkdir(backing, { recursive: true })
  await mkdir(root, { recursive: true })
  const mount = await startPassthrough(backing, root)
  return track({
    name: 'passthrough', root,
    cold: dropCaches,
    settle: async () => 0,
    idleRssKb: (await procMemKb(mount.pid))?.rss,
    daemonPid: async () => mount.pid,
    peakRssKb: async () => (await procMemKb(mount.pid))?.hwm,
    async close() {
      await mount.stop()
      await rm(backing, { recursive: true, force: true })
      await rm(root, { recursive: true, force: true })
    },
  })
}

/**
 * Mounts a passthrough of `backing` at `root` (test/bench/passthrough-mount.ts, in a process of
 * its own: the binding's ceiling); `stop` unmounts it and waits for the process to end.
 */
export async function startPassthrough(backing: string, root: string): Promise<{ pid: number; stop(): Promise<void> }> {
  const script = fileURLToPath(new URL('./passthrough-mount.ts', import.meta.url))
  const child = spawn(process.execPath, ['--import', TS_LOADER, script, backing, root], { stdio: ['ignore', 'pipe', 'inherit'] })
  const exited = new Promise((ok) => child.once('exit', ok))
  await readyLine(child)
  return {
    pid: child.pid as number,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM')
        await exited
      }
    },
  }
}

function readyLine(child: ChildProcess): Promise<void> {
  return new Promise((ok, fail) => {
    let out = ''
    const onExit = (code: number | null): void => fail(new Error(`passthrough mount exited (${code}) before it was ready: ${out}`))
    child.once('exit', onExit)
    child.stdout?.on('data', (d: Buffer) => {
      out += d.toString()
      if (/^ready \d+$/m.test(out)) {
        child.off('exit', onExit)
        ok()
      }
    })
  })
}

export interface TierfsSubject extends Subject {
  readonly mount: TestMount
  status(): Promise<Record<string, any>>
  /** Copies the daemon's logs to the bench output directory (before a failed run cleans up); returns where. */
  keepLogs(): Promise<string>
}

/** Where results (and the logs of failed runs) go: $BENCH_OUT_DIR, else bench-out/ in the project. */
export const OUT_DIR = process.env.BENCH_OUT_DIR ?? join(ROOT, 'bench-out')

/** A fresh tierfs store mounted through the CLI (detached daemon), via the test harness. */
export async function tierfsSubject(config?: Record<string, unknown>): Promise<TierfsSubject> {
  const m = await tempMount(config === undefined ? {} : { config })
  let peak = 0
  const notePeak = async (): Promise<number> => {
    const mem = await procMemKb(await m.pid())
    if (mem !== undefined) peak = Math.max(peak, mem.hwm)
    return peak
  }
  const stagingDir = join(m.store, 'block', 'staging')
  return track({
    name: 'tierfs', root: m.mnt, mount: m,
    idleRssKb: (await procMemKb(await m.pid()))?.rss,
    daemonPid: () => m.pid(),
    status: () => m.status(),
    async cold() {
      await notePeak()
      await m.umount()
      await m.mount()
      return dropCaches()
    },
    async settle() {
      const t0 = performance.now()
      // The staging directory empties as seals commit; listing it costs the daemon nothing,
      // unlike `status`, which scans every inode.
      for (;;) {
        const left = await readdir(stagingDir).catch(() => [])
        if (left.length === 0 && (await m.status()).stagingFiles === 0) break
        await new Promise((r) => setTimeout(r, 100))
      }
      return performance.now() - t0
    },
    peakRssKb: notePeak,
    async keepLogs() {
      const dest = join(OUT_DIR, `tierfs-failed-${new Date().toISOString().replace(/[:.]/g, '-')}`)
      await mkdir(dest, { recursive: true })
      await cp(join(m.store, 'log'), dest, { recursive: true }).catch(() => undefined)
      return dest
    },
    close: () => m.cleanup(),
  })
}
