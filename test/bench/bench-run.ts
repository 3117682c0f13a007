import { execFile } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { TS_LOADER } from './subjects.js'

/** Runs a command to completion; rejects with its stderr on a non-zero exit. Returns stdout. */
export function mustRun(cmd: string, args: string[]): Promise<string> {
  return new Promise((ok, fail) => {
    execFile(cmd, args, { maxBuffer: 256 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (err !== null) fail(new Error(`${cmd} ${args.join(' ')} failed: ${err.message}\n${String(stderr)}`))
      else ok(String(stdout))
    })
  })
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
