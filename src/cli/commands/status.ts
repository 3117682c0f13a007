import { need, parseArgs } from '../args.js'
import { callMount } from '../daemon-client.js'

export const usage = 'tierfs status MOUNTPOINT [--json]'

const MIB = 1024 * 1024

/** Prints the running store's figures (keys documented in the README). */
export async function run(argv: string[], out: (s: string) => void): Promise<number> {
  const args = parseArgs(argv, { bool: ['--json'] })
  const [mountpoint] = need(args, 1, usage) as [string]
  const s = await callMount<Record<string, unknown>>(mountpoint, 'status')
  if (args.flags.has('--json')) {
    out(JSON.stringify(s, null, 2) + '\n')
    return 0
  }
  const n = (k: string): number => Number(s[k] ?? 0)
  const lines = [
    `mountpoint     ${String(s.mountpoint)}`,
    `store          ${String(s.store)}`,
    `files          ${n('files')} (${n('dirs')} directories, ${n('symlinks')} symlinks)`,
    `logical        ${(n('logicalBytes') / MIB).toFixed(1)} MiB`,
    `stored         ${(n('storedBytes') / MIB).toFixed(1)} MiB in ${n('packs')} packs, ${n('chunks')} chunks`,
    `dedup ratio    ${n('dedupRatio')}`,
    `staging        ${(n('stagingBytes') / MIB).toFixed(1)} MiB in ${n('stagingFiles')} files`,
  ]
  for (const [tier, t] of Object.entries((s.tiers ?? {}) as Record<string, { bytes: number; objects: number }>)) {
    lines.push(`tier ${tier.padEnd(9)} ${(t.bytes / MIB).toFixed(1)} MiB in ${t.objects} objects`)
  }
  const m = s.migrations as { passes: number; failures: number; running: boolean; moving: number; pending: number; failedMoves: number; failedMovesTotal: number; recallsInFlight: number } | undefined
  if (m !== undefined) {
    lines.push(`migrations     ${m.running ? `a pass running, ${m.moving} files moving now` : 'idle'}, ${m.pending} files pending, ${m.passes} passes (${m.failures} failed)`)
    lines.push(`failed moves   ${m.failedMoves} files in the last pass, ${m.failedMovesTotal} since start (retried by the next pass)`)
    lines.push(`recalls        ${m.recallsInFlight} in flight`)
  }
  const c = s.readCache as { hits: number; misses: number; bytes: number; hitRate: number } | undefined
  if (c !== undefined) lines.push(`read cache     ${(c.hitRate * 100).toFixed(1)}% hits (${c.hits} hits, ${c.misses} misses), ${(c.bytes / MIB).toFixed(1)} MiB held`)
  out(lines.join('\n') + '\n')
  return 0
}
