import { execFile, spawn, type ChildProcessByStdio } from 'node:child_process'
import type { Readable } from 'node:stream'
import { TierfsError } from '../errors.js'

/**
 * The xattrs backups carry, in (ingest) and out (restore): user.* only. trusted.* and security.*
 * need privileges and mean something only on the host that set them; Linux allows user.* on
 * regular files and directories alone (symlinks and specials never have any).
 */
export const KEEP_XATTRS = '^user\\.'

/** One entry of a getfattr dump: a path that has at least one kept xattr, and all of them. */
export interface XattrBlock {
  /** The path as getfattr was given it (unescaped). */
  path: string
  attrs: Array<{ name: string; value: Buffer }>
}

export interface DumpResult {
  /** Paths getfattr could not read (path -> its message, e.g. "No such file or directory"). */
  failed: Map<string, string>
  /** Messages of getfattr that name none of the paths. */
  other: string[]
}

/**
 * Why xattrs cannot be copied on this host ("getfattr (Debian package attr) is not installed"),
 * or undefined when every tool of `tools` runs.
 */
export async function missingXattrTools(tools: string[]): Promise<string | undefined> {
  const missing: string[] = []
  for (const t of tools) if (!(await hasTool(t))) missing.push(t)
  if (missing.length === 0) return undefined
  return `${missing.join('/')} (Debian package attr) ${missing.length === 1 ? 'is' : 'are'} not installed`
}

function hasTool(name: string): Promise<boolean> {
  return new Promise((ok) => execFile(name, ['--version'], (err) => ok(err === null || (err as { code?: unknown }).code !== 'ENOENT')))
}

/**
 * Starts `getfattr` dumping the kept xattrs of `targets`, paths relative to `cwd` (every argument
 * is a path, whatever its first character), base64-encoded, in the C locale (stable messages).
 * Symlinks are never followed: neither the targets themselves (-h) nor, with `recursive`, links
 * met on the walk (-P). stdout is the dump (see GetfattrParser), stderr one line per unreadable path.
 */
export function spawnGetfattr(cwd: string, targets: string[], recursive: boolean): ChildProcessByStdio<null, Readable, Readable> {
  const args = [...(recursive ? ['-R'] : []), '-P', '-h', '-d', '-m', KEEP_XATTRS, '-e', 'base64', '--', ...targets]
  return spawn('getfattr', args, { cwd, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, LC_ALL: 'C' } })
}

/**
 * Incremental parser of `getfattr -d -e base64` output: blocks of "# file: PATH", then one
 * "NAME=0sBASE64" line per xattr, then an empty line. getfattr writes a backslash, CR and LF of a
 * path or name (and "=" of a name) as a backslash and three octal digits, every other byte as is;
 * paths and names come back as UTF-8 strings. Paths without kept xattrs have no block.
 * `push` returns the blocks a chunk completes, `end` the last one; both throw IO on anything else.
 * Memory: the current line and block.
 */
export class GetfattrParser {
  private partial = ''
  private block: XattrBlock | undefined

  push(chunk: Buffer): XattrBlock[] {
    const out: XattrBlock[] = []
    // latin1 keeps one char per byte, so escapes and multi-byte names decode after unescaping.
    const lines = (this.partial + chunk.toString('latin1')).split('\n')
    this.partial = lines.pop() as string
    for (const line of lines) this.line(line, out)
    return out
  }

  end(): XattrBlock[] {
    const out: XattrBlock[] = []
    if (this.partial !== '') this.line(this.partial, out)
    this.partial = ''
    if (this.block !== undefined) out.push(this.block)
    this.block = undefined
    return out
  }

  private line(line: string, out: XattrBlock[]): void {
    if (line.startsWith('# file: ')) {
      if (this.block !== undefined) out.push(this.block)
      this.block = { path: unescapeGetfattr(line.slice(8)), attrs: [] }
    } else if (line === '') {
      if (this.block !== undefined) out.push(this.block)
      this.block = undefined
    } else {
      const eq = line.indexOf('=')
      const value = eq < 0 ? '0s' : line.slice(eq + 1)
      if (this.block === undefined || !value.startsWith('0s')) throw TierfsError.io(`unexpected getfattr output: ${JSON.stringify(line.slice(0, 200))}`)
      this.block.attrs.push({ name: unescapeGetfattr(eq < 0 ? line : line.slice(0, eq)), value: Buffer.from(value.slice(2), 'base64') })
    }
  }
}

/** getfattr's escaped text (a latin1 string of its bytes) -> the UTF-8 string it stands for. */
export function unescapeGetfattr(text: string): string {
  const bytes = text.replace(/\\([0-7]{3})/g, (_m, oct: string) => String.fromCharCode(parseInt(oct, 8) & 0xff))
  return Buffer.from(bytes, 'latin1').toString('utf8')
}

/**
 * Dumps the kept xattrs of `paths` (relative to `cwd`) with one getfattr and hands each block to
 * `onBlock`, in order and one at a time: the next output is read only once it resolves (memory is
 * one block, whatever the number of paths). A path of `paths` with no block has no kept xattrs,
 * unless it is in the result's `failed`. Throws IO when getfattr cannot run, exits otherwise than
 * 0 or 1 (1: some path failed) or prints what is not a dump; a rejection of `onBlock` stops
 * getfattr and is thrown as is.
 */
export async function dumpXattrs(cwd: string, paths: string[], onBlock: (b: XattrBlock) => Promise<void>): Promise<DumpResult> {
  const child = spawnGetfattr(cwd, paths, false)
  const exited = new Promise<number | null>((ok, fail) => {
    child.on('error', fail)
    child.on('close', ok)
  })
  exited.catch(() => undefined)
  let errText = ''
  child.stderr.on('data', (b: Buffer) => { if (errText.length < 1 << 20) errText += b.toString('latin1') })
  const parser = new GetfattrParser()
  try {
    for await (const chunk of child.stdout) for (const b of parser.push(chunk as Buffer)) await onBlock(b)
    for (const b of parser.end()) await onBlock(b)
  } catch (err) {
    child.kill()
    await exited.catch(() => undefined)
    throw err
  }
  const code = await exited.catch((err: unknown) => { throw TierfsError.io(`getfattr: ${(err as Error).message}`, err) })
  const result: DumpResult = { failed: new Map(), other: [] }
  const wanted = new Set(paths)
  for (const line of errText.split('\n')) {
    if (line !== '') attribute(line, wanted, result)
  }
  if (code !== 0 && !(code === 1 && result.failed.size + result.other.length > 0)) {
    throw TierfsError.io(`getfattr exited with ${code}: ${result.other.join('; ') || 'no message'}`)
  }
  return result
}

/**
 * "getfattr: PATH: message": PATH may hold ": " itself, so each split is tried against the paths
 * asked for, the longest PATH first (messages are strerror texts, without ": ").
 */
function attribute(line: string, wanted: Set<string>, result: DumpResult): void {
  const rest = line.startsWith('getfattr: ') ? line.slice(10) : line
  for (let i = rest.lastIndexOf(': '); i >= 0; i = i === 0 ? -1 : rest.lastIndexOf(': ', i - 1)) {
    const path = unescapeGetfattr(rest.slice(0, i))
    if (wanted.has(path)) {
      result.failed.set(path, rest.slice(i + 2))
      return
    }
  }
  result.other.push(unescapeGetfattr(line))
}
