import { execFile, spawn, type ChildProcessByStdio } from 'node:child_process'
import type { BigIntStats } from 'node:fs'
import type { Readable, Writable } from 'node:stream'

const BLOCK = 512

/**
 * Sets directories' mtimes to the nanosecond, which node's fs.utimes cannot (libuv keeps
 * microseconds), with one GNU tar for a whole restore instead of one `touch` per directory: each
 * directory becomes a member of a pax archive streamed into `tar -x`, which gives the existing
 * directory the member's mode, owner (with `owners`) and mtime, and leaves its atime alone. tar
 * applies directory attributes once it is past them or at the end, so a directory is added only
 * when nothing more will be written into it.
 * Memory: the pipe's buffer; tar keeps a small record per directory until it ends.
 */
export class DirTimes {
  private static gnuTar: Promise<boolean> | undefined

  /** Whether GNU tar runs here (checked once per process); DirTimes needs it. */
  static supported(): Promise<boolean> {
    DirTimes.gnuTar ??= new Promise((ok) => {
      execFile('tar', ['--version'], { env: { ...process.env, LC_ALL: 'C' } }, (err, out) => ok(err === null && String(out).includes('GNU tar')))
    })
    return DirTimes.gnuTar
  }

  private readonly tar: ChildProcessByStdio<Writable, null, Readable>
  private readonly exited: Promise<number | null>
  private stderr = ''
  private broken = false

  constructor(dest: string, owners: boolean) {
    const args = ['-x', '-f', '-', '-C', dest, '--preserve-permissions', '--numeric-owner', '--warning=no-timestamp',
      owners ? '--same-owner' : '--no-same-owner']
    this.tar = spawn('tar', args, { stdio: ['pipe', 'ignore', 'pipe'], env: { ...process.env, LC_ALL: 'C' } })
    this.exited = new Promise((ok) => {
      this.tar.on('error', (err) => { this.broken = true; this.stderr += `tar: ${err.message}\n`; ok(null) })
      this.tar.on('close', ok)
    })
    this.tar.stdin.on('error', () => { this.broken = true })
    this.tar.stderr.on('data', (b: Buffer) => { if (this.stderr.length < 1 << 20) this.stderr += b.toString('latin1') })
  }

  /** Queues the attributes of directory `rel` (relative to DEST, '' for DEST itself); false when tar is gone. */
  async add(rel: string, st: BigIntStats): Promise<boolean> {
    if (this.broken || this.tar.exitCode !== null) return false
    if (!this.tar.stdin.write(dirMember(rel === '' ? '.' : rel, st))) {
      await new Promise<void>((ok) => {
        const done = (): void => { this.tar.stdin.off('drain', done); this.tar.stdin.off('close', done); ok() }
        this.tar.stdin.on('drain', done).on('close', done)
      })
    }
    return !this.broken
  }

  /**
   * Ends the archive and waits for tar. Returns its complaints, by path where it names one
   * (`tar: PATH: message`, PATH relative to DEST) and under '' otherwise.
   */
  async close(): Promise<Array<{ rel: string; message: string }>> {
    if (!this.broken) this.tar.stdin.end(Buffer.alloc(2 * BLOCK))
    const code = await this.exited
    const out: Array<{ rel: string; message: string }> = []
    for (const line of this.stderr.split('\n')) {
      if (line === '' || /^tar: (Exiting with failure status|Error is not recoverable)/.test(line)) continue
      // "tar: a/b: Cannot utime: Operation not permitted"
      const m = /^tar: ([^/].*?)\/?: (Cannot .*)$/.exec(line)
      out.push(m === null ? { rel: '', message: line } : { rel: m[1] === '.' ? '' : (m[1] as string), message: m[2] as string })
    }
    if (out.length === 0 && code !== 0) out.push({ rel: '', message: `tar exited with ${code}` })
    return out
  }
}

/** A pax extended header (path, mtime to the nanosecond, owner) and the ustar header of directory `path`. */
export function dirMember(path: string, st: BigIntStats): Buffer {
  const ns = st.mtimeNs
  const abs = ns < 0n ? -ns : ns
  const mtime = `${ns < 0n ? '-' : ''}${abs / 1_000_000_000n}.${(abs % 1_000_000_000n).toString().padStart(9, '0')}`
  const records = Buffer.from(
    paxRecord('path', `${path}/`) + paxRecord('mtime', mtime) + paxRecord('uid', String(st.uid)) + paxRecord('gid', String(st.gid)),
    'utf8',
  )
  const padded = Math.ceil(records.length / BLOCK) * BLOCK
  const out = Buffer.alloc(2 * BLOCK + padded)
  ustarHeader(out.subarray(0, BLOCK), 'PaxHeader', 'x', 0o644, records.length, 0n)
  records.copy(out, BLOCK)
  ustarHeader(out.subarray(BLOCK + padded), `${path}/`, '5', Number(st.mode) & 0o7777, 0, ns < 0n ? 0n : ns / 1_000_000_000n)
  return out
}

/** One pax record: "LEN key=value\n", LEN counting its own digits. */
function paxRecord(key: string, value: string): string {
  const body = ` ${key}=${value}\n`
  const bytes = Buffer.byteLength(body)
  let len = bytes + 1
  while (String(len).length + bytes !== len) len = String(len).length + bytes
  return `${len}${body}`
}

function ustarHeader(h: Buffer, name: string, type: string, mode: number, size: number, mtime: bigint): void {
  h.write(name, 0, 100, 'utf8')
  octal(h, 100, 8, BigInt(mode))
  octal(h, 108, 8, 0n)
  octal(h, 116, 8, 0n)
  octal(h, 124, 12, BigInt(size))
  octal(h, 136, 12, mtime < 8n ** 11n ? mtime : 0n)
  h.write(type, 156, 1, 'latin1')
  h.write('ustar\u000000', 257, 8, 'latin1')
  h.fill(0x20, 148, 156)
  let sum = 0
  for (const b of h) sum += b
  h.write(`${sum.toString(8).padStart(6, '0')}\u0000 `, 148, 8, 'latin1')
}

function octal(h: Buffer, at: number, len: number, v: bigint): void {
  h.write(`${v.toString(8).padStart(len - 1, '0')}\u0000`, at, len, 'latin1')
}
