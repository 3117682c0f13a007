import { jsonLogger } from '../../log.js'
import { fsck } from '../../store/fsck.js'
import { openStore } from '../../store/open-store.js'
import { Staging } from '../../vfs/staging.js'
import { need, parseArgs } from '../args.js'

export const usage = 'tierfs fsck STORE [--repair] [--json]'

/** Offline check (the store must not be mounted); exit 1 and a list when anything is wrong. */
export async function run(argv: string[], out: (s: string) => void): Promise<number> {
  const args = parseArgs(argv, { bool: ['--repair', '--json'] })
  const [root] = need(args, 1, usage) as [string]
  const repair = args.flags.has('--repair')
  const store = await openStore(root, jsonLogger((l) => process.stderr.write(l), 'warn'), { recover: repair })
  try {
    const report = await fsck({ meta: store.meta, tiers: store.tiers, staging: new Staging(store.layout.staging(store.config)) }, { repair })
    if (args.flags.has('--json')) {
      out(JSON.stringify(report, null, 2) + '\n')
    } else {
      const c = report.checked
      out(`checked ${c.fileMaps} filemap versions, ${c.chunks} chunks, ${c.packs} packs, ${c.bytesVerified} bytes verified\n`)
      for (const p of report.problems) out(`${p.repaired ? 'repaired' : 'PROBLEM'} ${p.kind}: ${p.message}\n`)
      if (report.pendingStaging > 0) out(`${report.pendingStaging} staged files will be sealed at the next mount\n`)
      if (report.pendingStrays > 0) out(`${report.pendingStrays} objects an interrupted migration left will be removed at the next mount\n`)
      out(report.ok ? 'clean\n' : `${report.problems.filter((p) => !p.repaired).length} problems\n`)
    }
    return report.ok ? 0 : 1
  } finally {
    await store.close()
  }
}
