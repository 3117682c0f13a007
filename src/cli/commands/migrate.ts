import { resolve, relative } from 'node:path'
import { TierfsError } from '../../errors.js'
import { lookupAllMounts } from '../../store/registry.js'
import { parseArgs } from '../args.js'
import { callMount } from '../daemon-client.js'

export const usage = 'tierfs migrate PATH... --to TIER|TARGET [-r]'

/** Moves files (or trees with -r) to a tier or named target now, whatever the policies say. */
export async function run(argv: string[], out: (s: string) => void): Promise<number> {
  const args = parseArgs(argv, { bool: ['-r', '--recursive', '--json'], valued: ['--to'] })
  const to = args.values.get('--to')?.[0]
  if (to === undefined || args.positional.length === 0) throw new TierfsError('CONFIG', `usage: ${usage}`)
  const { mountpoint, paths } = await inMount(args.positional)
  const r = await callMount<Record<string, unknown>>(mountpoint, 'migrate', { paths, to, recursive: args.flags.has('-r') || args.flags.has('--recursive') })
  out(JSON.stringify(r, null, args.flags.has('--json') ? 2 : 0) + '\n')
  return Array.isArray(r.errors) && r.errors.length > 0 ? 1 : 0
}

/** Maps absolute or relative paths inside one tierfs mount to the mount and in-mount paths. */
export async function inMount(paths: string[]): Promise<{ mountpoint: string; paths: string[] }> {
  const mounts = await lookupAllMounts()
  let mountpoint: string | undefined
  const inner: string[] = []
  for (const p of paths) {
    const abs = resolve(p)
    const m = mounts.filter((r) => abs === r.mountpoint || abs.startsWith(r.mountpoint + '/')).sort((a, b) => b.mountpoint.length - a.mountpoint.length)[0]
    if (m === undefined) throw new TierfsError('NO_DAEMON', `${abs} is not inside a mounted tierfs`)
    if (mountpoint !== undefined && m.mountpoint !== mountpoint) throw new TierfsError('CONFIG', 'all paths must be inside the same tierfs mount')
    mountpoint = m.mountpoint
    inner.push('/' + relative(m.mountpoint, abs))
  }
  return { mountpoint: mountpoint as string, paths: inner.map((p) => (p === '/' ? '/' : p.replace(/\/$/, ''))) }
}
