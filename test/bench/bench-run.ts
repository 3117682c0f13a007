import { execFile } from 'node:child_process'
import { readFile, rm } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { TS_LOADER } from './subjects.js'

const MiB = 1024 * 1024

export interface RunOpts { cwd?: string; env?: NodeJS.ProcessEnv }

function execOpts(opts: RunOpts): RunOpts & { maxBuffer: number } {
  return { maxBuffer: 512 * MiB, ...(opts.cwd === undefined ? {} : { cwd: opts.cwd }), ...(opts.env === undefined ? {} : { env: opts.env }) }
}

function failure(cmd: string, args: string[], err: Error, stderr: unknown, stdout: unknown): Error {
  return new Error(`${cmd} ${args.join(' ')} failed: ${err.message}\n${String(stderr).slice(-4000)}${String(stdout).slice(-4000)}`)
}

/** Runs a command to completion; rejects with its output on a non-zero exit. Returns stdout. */
export function mustRun(cmd: string, args: string[], opts: RunOpts = {}): Promise<string> {
  return new Promise((ok, fail) => {
    execFile(cmd, args, execOpts(opts), (err, stdout, stderr) => {
      if (err !== null) fail(failure(cmd, args, err, stderr, stdout))
      else ok(String(stdout))
    })
  })
}

/** A command's wall seconds, user+sys CPU seconds and peak RSS (/usr/bin/time), and its output. */
export interface Proc { seconds: number; cpuS: number; maxRssKb: number; stdout: string; stderr: string }

/** Runs a command under /usr/bin/time (its report goes to a file in `tmp`). Rejects on failure. */
export async function timedProc(cmd: string, args: string[], opts: RunOpts & { tmp: string }): Promise<Proc> {
  const tfile = join(opts.tmp, `time-${process.pid}-${Math.random().toString(36).slice(2)}.txt`)
  const t0 = performance.now()
  const { stdout, stderr } = await new Promise<{ stdout: string; stderr: string }>((ok, fail) => {
    execFile('/usr/bin/time', ['-f', '%U %S %M', '-o', tfile, cmd, ...args], execOpts(opts), (err, out, errOut) => {
      if (err !== null) fail(failure(cmd, args, err, errOut, out))
      else ok({ stdout: String(out), stderr: String(errOut) })
    })
  })
  const seconds = (performance.now() - t0) / 1000
  const [u, s, m] = (await readFile(tfile, 'utf8')).trim().split('\n').pop()!.split(' ').map(Number)
  await rm(tfile, { force: true })
  return { seconds, cpuS: (u ?? 0) + (s ?? 0), maxRssKb: m ?? 0, stdout, stderr }
}

/** Bytes under `paths` together (du -sbc). */
export async function duBytes(...paths: string[]): Promise<number> {
  const out = await mustRun('du', ['-sbc', ...paths])
  return Number((out.trim().split('\n').pop() ?? '').split(/\s+/)[0])
}

/** Wall-clock seconds of a command (a shell line when `cmd` is 'sh'). */
export async function timed(cmd: string, args: string[]): Promise<number> {
  const t0 = performance.now()
  await mustRun(cmd, args)
  return (performance.now() - t0) / 1000
}

/** Seconds of a shell line. */
export function timedSh(line: string): Promise<number> {
  return timed('sh', ['-c', line])
}

/** Single-quotes a path for a shell line. */
export function q(path: string): string {
  return `'${path.replace(/'/g, `'\\''`)}'`
}

export interface WorkloadResult { ms: number; bytes: number; files: number }

/** Runs test/bench/workload.ts in a child node (its own timing excludes node's start-up). */
export async function workload(args: string[]): Promise<WorkloadResult> {
  const script = fileURLToPath(new URL('./workload.ts', import.meta.url))
  const out = await mustRun(process.execPath, ['--import', TS_LOADER, script, ...args])
  return JSON.parse(out.trim().split('\n').pop() as string) as WorkloadResult
}

/** 4 KiB random reads with fio (psync, one job) for `seconds`; returns IOPS. */
export async function fioRandRead(file: string, bytes: number, seconds: number, invalidate: boolean): Promise<number> {
  const out = await mustRun('fio', [
    '--name=r', '--rw=randread', '--bs=4k', `--size=${bytes}`, `--filename=${file}`, `--runtime=${seconds}`,
    '--time_based', '--ioengine=psync', '--readonly', `--invalidate=${invalidate ? 1 : 0}`, '--output-format=json',
  ])
  const json = JSON.parse(out.slice(out.indexOf('{'))) as { jobs: Array<{ read: { iops: number } }> }
  const iops = json.jobs[0]?.read.iops
  if (iops === undefined) throw new Error(`fio printed no read figures for ${file}`)
  return iops
}

/** A progress line on stderr (stdout carries the report). */
export function log(msg: string): void {
  process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${msg}\n`)
}

/** Set once SIGINT/SIGTERM cut the run short: failures of the work it interrupted are not reported. */
let interrupted = false

/** On SIGINT/SIGTERM: runs `cleanup` (unmount what the run mounted), removes `base`, exits 130. */
export function cleanupOnInterrupt(base: string, cleanup: () => Promise<unknown>): void {
  const stop = (sig: string): void => {
    interrupted = true
    log(`${sig}: unmounting and removing ${base}`)
    void cleanup()
      .then(() => rm(base, { recursive: true, force: true }))
      .finally(() => process.exit(130))
  }
  process.once('SIGINT', stop)
  process.once('SIGTERM', stop)
}

/** The end of a benchmark: a failure is printed and exits 1, unless an interrupt caused it. */
export function benchFailed(err: unknown): void {
  if (interrupted) return
  process.stderr.write(`${err instanceof Error ? err.stack ?? err.message : String(err)}\n`)
  process.exitCode = 1
}
