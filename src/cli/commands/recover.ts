import { readFile } from 'node:fs/promises'
import { TierfsError } from '../../errors.js'
import { jsonLogger } from '../../log.js'
import { DEFAULT_CONFIG, parseConfig } from '../../store/config.js'
import { recoverStore, type RecoverReport } from '../../store/recover.js'
import { need, parseArgs } from '../args.js'

export const usage = 'tierfs recover --from TARGET NEWSTORE [--config FILE] [--checkpoint NAME] [--json]'

/**
 * Rebuilds a lost store on a new host from its metadata checkpoints on TARGET ('object' or a
 * target of FILE) and the packs on its surviving tiers. FILE is the store config to use (the
 * embedded default when absent); it is written to NEWSTORE/tierfs.json.
 */
export async function run(argv: string[], out: (s: string) => void): Promise<number> {
  const args = parseArgs(argv, { bool: ['--json'], valued: ['--from', '--config', '--checkpoint'] })
  const [store] = need(args, 1, usage) as [string]
  const from = args.values.get('--from')?.[0]
  if (from === undefined) throw new TierfsError('CONFIG', `usage: ${usage}`)
  const file = args.values.get('--config')?.[0]
  const config = file === undefined ? DEFAULT_CONFIG : parseConfig(await readFile(file, 'utf8'), file)
  const checkpoint = args.values.get('--checkpoint')?.[0]
  const report = await recoverStore({
    store, from, config, log: jsonLogger((l) => process.stderr.write(l), 'warn'),
    ...(checkpoint === undefined ? {} : { checkpoint }),
  })
  out(args.flags.has('--json') ? JSON.stringify(report, null, 2) + '\n' : describe(report))
  return 0
}

function describe(r: RecoverReport): string {
  const c = r.checkpoint
  const rec = r.reconcile
  const lines: string[] = []
  for (const s of r.skipped) lines.push(`skipped checkpoint ${s.name}: ${s.reason}`)
  lines.push(`recovered ${r.store} from ${r.from}: ${c.name} (${c.kind === 'delta' ? `delta on ${c.base}` : 'full'}), metadata as of ${c.time}, version ${c.head}`)
  lines.push(`loaded ${r.rows} metadata rows`)
  const dropped = Object.entries(rec.packs.dropped)
  lines.push(`packs: ${rec.packs.kept} kept, ${dropped.reduce((n, [, k]) => n + k, 0)} dropped${dropped.length > 0 ? ` (${dropped.map(([t, k]) => `${t}: ${k}`).join(', ')})` : ''}, ${rec.packs.adopted} found without a record and adopted`)
  for (const u of rec.packs.unreadable) lines.push(`unreadable pack ${u}`)
  if (rec.packs.uninspected > 0) lines.push(`${rec.packs.uninspected} unrecorded packs on cold tiers were not inspected`)
  lines.push(`chunks: ${rec.chunks.repointed} repointed to surviving copies, ${rec.chunks.lost} lost; ${rec.chunks.refsFixed} refcounts and ${rec.liveBytesFixed} pack live counts recounted`)
  if (rec.lost.current.length === 0 && rec.lost.restorePoints.length === 0) {
    lines.push(rec.chunks.lost === 0 ? 'nothing lost: every file and restore point is readable' : 'no current file or restore point uses the lost chunks')
  } else {
    lines.push('LOST (data only on a tier that is gone; these read as I/O errors):')
    for (const p of rec.lost.current) lines.push(`  ${p}`)
    for (const rp of rec.lost.restorePoints) for (const p of rp.files) lines.push(`  /.snapshots/${rp.workflow}/${rp.name}${p}`)
  }
  lines.push(`mount it with: tierfs mount ${r.store} MOUNTPOINT`)
  return lines.join('\n') + '\n'
}
