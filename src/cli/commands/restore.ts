import { resolve } from 'node:path'
import type { DiffEntry } from '../../backup/diff.js'
import { restoreTree, type RestoreSummary } from '../../backup/restore.js'
import { TierfsError } from '../../errors.js'
import { parseArgs } from '../args.js'
import { callMount } from '../daemon-client.js'
import { diffEntries } from '../diff-pages.js'

export const usage = 'tierfs restore MOUNTPOINT SOURCE DEST [PATH...] [--changed-between T1 T2] [--concurrency N] [--no-xattrs] [--json]'

const MIB = 1024 * 1024
const INODE_BATCH = 4096

/**
 * Copies a restore point (workflow/TIME, workflow/latest) or an instant (ISO, inside the history
 * window) out of a mounted store into DEST, like cp -a, reading through the mount. PATHs (from the
 * restore point's root) limit it to those entries. --changed-between T1 T2 restores only what
 * `tierfs diff MOUNTPOINT T1 T2` lists as added or modified, taken from SOURCE, and lists the
 * deleted entries without touching DEST. Progress on stderr when it is a terminal; a summary at
 * the end; exit 1 if any entry failed.
 */
export async function run(argv: string[], out: (s: string) => void): Promise<number> {
  let between: [string, string] | undefined
  const rest: string[] = []
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--changed-between') {
      const t1 = argv[i + 1]
      const t2 = argv[i + 2]
      if (t1 === undefined || t2 === undefined) throw new TierfsError('CONFIG', '--changed-between needs two points: T1 T2')
      between = [t1, t2]
      i += 2
    } else rest.push(argv[i] as string)
  }
  const args = parseArgs(rest, { bool: ['--json', '--no-xattrs'], valued: ['--concurrency'] })
  const [mountpoint, source, dest, ...paths] = args.positional
  if (mountpoint === undefined || source === undefined || dest === undefined) throw new TierfsError('CONFIG', `usage: ${usage}`)
  const concurrency = Number(args.values.get('--concurrency')?.[0] ?? 4)
  if (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > 64) throw new TierfsError('CONFIG', '--concurrency must be 1..64')
  const json = args.flags.has('--json')

  const point = await callMount<{ label: string; view: string }>(mountpoint, 'point', { point: source })
  const deleted: string[] = []
  let changes: AsyncIterable<DiffEntry> | undefined
  if (between !== undefined) {
    const [t1, t2] = between
    const scopes = paths.length > 0 ? paths : [undefined]
    changes = (async function* () {
      for (const p of scopes) yield* diffEntries(mountpoint, t1, t2, { rootOf: point.label, ...(p === undefined ? {} : { path: p }) })
    })()
  }
  const tty = process.stderr.isTTY === true && !json
  let lastShown = 0
  const started = Date.now()
  const show = (files: number, bytes: number, final = false): void => {
    const now = Date.now()
    if (!tty || (!final && now - lastShown < 500)) return
    lastShown = now
    const rate = bytes / MIB / Math.max(0.001, (now - started) / 1000)
    process.stderr.write(`\rrestoring ${point.label}: ${files} files, ${(bytes / MIB).toFixed(1)} MiB, ${rate.toFixed(1)} MiB/s   ${final ? '\n' : ''}`)
  }
  const summary: RestoreSummary = await restoreTree({
    inodes: async (list) => {
      const outList: Array<number | null> = []
      for (let i = 0; i < list.length; i += INODE_BATCH) outList.push(...await callMount<Array<number | null>>(mountpoint, 'inodes', { paths: list.slice(i, i + INODE_BATCH) }))
      return outList
    },
  }, {
    mount: resolve(mountpoint), view: point.view, dest: resolve(dest), concurrency,
    ...(between === undefined && paths.length > 0 ? { paths } : {}),
    ...(changes === undefined ? {} : { changes }),
    xattrs: !args.flags.has('--no-xattrs'),
    onProgress: (p) => show(p.files, p.bytes),
    onDeleted: (e) => {
      if (json) deleted.push(e.path)
      else out(`deleted between ${between?.[0]} and ${between?.[1]} (DEST not touched): ${e.path}\n`)
    },
    onError: (path, err) => { process.stderr.write(`${tty ? '\n' : ''}tierfs restore: ${path}: ${err.message}\n`) },
  })
  show(summary.files, summary.bytes, true)
  if (json) {
    out(JSON.stringify({ source: point.label, dest: resolve(dest), ...summary, ...(between === undefined ? {} : { deleted }) }, null, 2) + '\n')
  } else {
    out([
      `restored ${point.label} to ${resolve(dest)}`,
      `  ${summary.files} files (${(summary.bytes / MIB).toFixed(1)} MiB), ${summary.dirs} directories, ${summary.symlinks} symlinks, ${summary.hardLinks} hard links, ${summary.specials} special files`,
      `  ${(summary.elapsedMs / 1000).toFixed(1)} s, ${(summary.bytesPerSecond / MIB).toFixed(1)} MiB/s`,
      `  times: ${summary.times}${summary.mtimeFallbacks > 0 ? ` (${summary.mtimeFallbacks} set with touch -d)` : ''}; owners ${summary.owners}; xattrs: ${summary.xattrs}`,
      ...(between === undefined ? [] : [`  ${summary.deletedListed} deleted entries listed, not touched`]),
      ...(summary.errors > 0 ? [`  ERRORS: ${summary.errors} entries could not be restored (see above)`] : []),
      '',
    ].join('\n'))
  }
  return summary.errors === 0 ? 0 : 1
}
