#!/usr/bin/env -S node --initial-old-space-size=128
import { TierfsError } from '../errors.js'

/** Each command: usage line and runner. Loaded lazily so `tierfs status` does not load LevelDB. */
const COMMANDS: Record<string, () => Promise<{ usage: string; run: (argv: string[], out: (s: string) => void) => Promise<number> }>> = {
  init: () => import('./commands/init.js'),
  mount: () => import('./commands/mount.js'),
  umount: () => import('./commands/umount.js'),
  status: () => import('./commands/status.js'),
  fsck: () => import('./commands/fsck.js'),
  snapshot: () => import('./commands/snapshot.js'),
  prune: () => import('./commands/prune.js'),
  policy: () => import('./commands/policy.js'),
  migrate: () => import('./commands/migrate.js'),
  recall: () => import('./commands/recall.js'),
  backup: () => import('./commands/backup.js'),
  diff: () => import('./commands/diff.js'),
  restore: () => import('./commands/restore.js'),
  checkpoint: () => import('./commands/checkpoint.js'),
  recover: () => import('./commands/recover.js'),
}

/** Commands for tests and demos, left out of `tierfs help`. */
const HIDDEN: typeof COMMANDS = {
  debug: () => import('./commands/debug.js'),
}

async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv
  if (cmd === undefined || cmd === 'help' || cmd === '--help' || cmd === '-h') {
    const usages = await Promise.all(Object.values(COMMANDS).map(async (load) => (await load()).usage))
    process.stdout.write(`usage:\n${usages.map((u) => `  ${u}`).join('\n')}\n`)
    return cmd === undefined ? 2 : 0
  }
  const load = COMMANDS[cmd] ?? HIDDEN[cmd]
  if (load === undefined) throw new TierfsError('CONFIG', `unknown command ${JSON.stringify(cmd)} (try: tierfs help)`)
  return (await load()).run(rest, (s) => process.stdout.write(s))
}

main(process.argv.slice(2)).then(
  (code) => { process.exitCode = code },
  (err: unknown) => {
    const code = err instanceof TierfsError ? err.code : 'INTERNAL'
    process.stderr.write(`tierfs: ${err instanceof Error ? err.message : String(err)} [${code}]\n`)
    process.exitCode = code === 'CONFIG' ? 2 : 1
  },
)
