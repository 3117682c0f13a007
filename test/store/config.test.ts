import t from 'tap'
import { DEFAULT_CONFIG, parseConfig } from '../../src/store/config.js'

const parse = (cfg: unknown): ReturnType<typeof parseConfig> => parseConfig(JSON.stringify(cfg), 'tierfs.json')

t.test('an empty config is the embedded default', async (t) => {
  const cfg = parse({})
  t.same(cfg, { ...DEFAULT_CONFIG, targets: {} })
  t.equal(cfg.prune.schedule, '0 30 3 * * *', 'prune runs nightly by default')
})

t.test('fields merge over the defaults, nested ones too', async (t) => {
  const cfg = parse({ inlineMax: 4096, seal: { debounceMs: 50 }, prune: { schedule: '' } })
  t.equal(cfg.inlineMax, 4096)
  t.same(cfg.seal, { ...DEFAULT_CONFIG.seal, debounceMs: 50 })
  t.equal(cfg.prune.schedule, '', 'an empty schedule turns scheduled prunes off')
})

t.test('mistakes are refused with the field named', async (t) => {
  const bad: Array<[unknown, RegExp]> = [
    ['{', /not valid JSON/],
    [{ inlinemax: 1 }, /unknown key inlinemax/],
    [{ seal: { debounce: 1 } }, /unknown key seal\.debounce/],
    [{ seal: 5 }, /seal must be an object/],
    [{ inlineMax: '8k' }, /inlineMax must be a number/],
    [{ packSize: -1 }, /packSize must be a non-negative number/],
    [{ inlineMax: 2 * 1024 * 1024 }, /inlineMax must be 0\.\.1048576/],
    [{ chunker: { minSize: 4096, avgSize: 2048 } }, /chunker: need/],
    [{ prune: { schedule: 'every night' } }, /prune\.schedule must be a cron expression/],
    [{ migrate: { schedule: '61 * * * * *' } }, /migrate\.schedule must be a cron expression/],
    [{ migrate: { repackBelow: 1.5 } }, /migrate\.repackBelow must be a fraction from 0 to 1/],
    [{ checkpoint: { target: 'block' } }, /checkpoint\.target must be/],
    [{ checkpoint: { target: 'cold' } }, /checkpoint\.target must be .*metadata never goes to a cold tier/],
    [{ checkpoint: { target: 'arch' }, targets: { arch: { type: 'glacier', vault: 'v', region: 'us-east-1' } } }, /checkpoint\.target must be .*not cold or Glacier/],
    [{ checkpoint: { target: 'nowhere' } }, /checkpoint\.target must be/],
    [{ checkpoint: { target: 'nas' }, targets: { nas: { type: 'local', path: '/mnt/nas', kind: 'cold' } } }, /checkpoint\.target must be .*not cold/],
    [{ targets: { object: { type: 's3', bucket: 'b', region: 'r' } } }, /the names block, object and cold are the store's own tiers/],
    [{ format: 2 }, /format 2 is not supported/],
  ]
  for (const [cfg, message] of bad) {
    t.throws(() => (typeof cfg === 'string' ? parseConfig(cfg, 'tierfs.json') : parse(cfg)), { code: 'CONFIG', message }, JSON.stringify(cfg))
  }
})
