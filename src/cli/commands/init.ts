import { mkdir, readFile, stat, writeFile } from 'node:fs/promises'
import { TierfsError } from '../../errors.js'
import { silentLogger } from '../../log.js'
import { DEFAULT_CONFIG, parseConfig } from '../../store/config.js'
import { StoreLayout } from '../../store/layout.js'
import { openStore } from '../../store/open-store.js'
import { need, parseArgs } from '../args.js'

export const usage = 'tierfs init STORE [--config FILE]'

/** Creates a store: config (the embedded default unless --config), metadata, tier directories. */
export async function run(argv: string[], out: (s: string) => void): Promise<number> {
  const args = parseArgs(argv, { valued: ['--config'] })
  const [root] = need(args, 1, usage) as [string]
  const layout = new StoreLayout(root)
  if (await stat(layout.config).then(() => true, () => false)) {
    throw new TierfsError('STORE', `${layout.root} is already a tierfs store`)
  }
  const from = args.values.get('--config')?.[0]
  const config = from === undefined ? DEFAULT_CONFIG : parseConfig(await readFile(from, 'utf8'), from)
  await mkdir(layout.root, { recursive: true })
  for (const t of ['block', 'object', 'cold'] as const) await mkdir(layout.tierDir(config, t), { recursive: true })
  await mkdir(layout.logDir, { recursive: true })
  await writeFile(layout.config, JSON.stringify(config, null, 2) + '\n')
  const store = await openStore(layout.root, silentLogger)
  await store.close()
  out(`initialised tierfs store ${layout.root}\n`)
  return 0
}
