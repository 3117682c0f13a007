import t from 'tap'
import { join, resolve } from 'node:path'
import { TierfsError } from '../../src/errors.js'
import { asTierId } from '../../src/ids.js'
import { LocalTier } from '../../src/tier/local-tier.js'
import { S3Tier } from '../../src/tier/s3-tier.js'
import { makeTier, parseTarget } from '../../src/tier/targets.js'
import { TierSet } from '../../src/tier/tier-set.js'

const MiB = 1024 * 1024

function configError(name: string, raw: unknown): string {
  try {
    parseTarget(name, raw)
  } catch (err) {
    if (err instanceof TierfsError && err.code === 'CONFIG') return err.message
    throw err
  }
  throw new Error('expected a CONFIG error')
}

t.test('an S3 target gets every default filled in', async (t) => {
  t.same(parseTarget('s3-primary', { type: 's3', bucket: 'backups' }), {
    type: 's3', name: 's3-primary', bucket: 'backups', prefix: '', forcePathStyle: false, storageClass: 'STANDARD',
    checksumMode: 'when-required', partSize: 16 * MiB, multipartThreshold: 16 * MiB, restoreTier: 'Standard', restoreDays: 3,
    maxConnections: 16, listPageSize: 1000, connectTimeoutMs: 10_000, idleTimeoutMs: 120_000,
  })
  const full = parseTarget('cold-s3', {
    type: 's3', bucket: 'bkt', endpoint: 'https://s3.example.net:9000', region: 'eu-west-1', prefix: 'host1/', storageClass: 'GLACIER',
    restoreTier: 'Expedited', restoreDays: 1, partSize: 8 * MiB, profile: 'backup', checksumMode: 'when-supported', forcePathStyle: false,
  })
  t.match(full, { endpoint: 'https://s3.example.net:9000', region: 'eu-west-1', prefix: 'host1', storageClass: 'GLACIER', multipartThreshold: 8 * MiB, profile: 'backup', forcePathStyle: false })
  t.match(parseTarget('m', { type: 's3', bucket: 'bkt', endpoint: 'http://127.0.0.1:9000' }), { forcePathStyle: true }, 'path style by default with a custom endpoint')
})

t.test('S3 target errors name the field', async (t) => {
  t.equal(configError('s3-primary', { type: 's3' }), 'targets.s3-primary.bucket is required')
  t.equal(configError('x', { type: 's3', bucket: '' }), 'targets.x.bucket must be a non-empty string')
  t.equal(configError('x', { type: 's3', bucket: 'a b' }), 'targets.x.bucket is not a valid bucket name')
  t.equal(configError('x', { type: 's3', bucket: 'bkt', endpoint: 'ftp://h' }), 'targets.x.endpoint must be an http:// or https:// URL')
  t.equal(configError('x', { type: 's3', bucket: 'bkt', storageClass: 'COLD' }), 'targets.x.storageClass must be one of STANDARD, STANDARD_IA, GLACIER_IR, GLACIER, DEEP_ARCHIVE')
  t.equal(configError('x', { type: 's3', bucket: 'bkt', partSize: MiB }), 'targets.x.partSize must be an integer from 5242880 to 5368709120')
  t.equal(configError('x', { type: 's3', bucket: 'bkt', prefix: 'a/../b' }), "targets.x.prefix may hold only letters, digits, '.', '_', '-' and '/' separators")
  t.equal(configError('x', { type: 's3', bucket: 'bkt', forcePathStyle: 'yes' }), 'targets.x.forcePathStyle must be true or false')
  t.equal(configError('x', { type: 's3', bucket: 'bkt', storageClass: 'DEEP_ARCHIVE', restoreTier: 'Expedited' }), 'targets.x.restoreTier Expedited is not available for DEEP_ARCHIVE (use Standard or Bulk)')
  t.equal(configError('x', { type: 's3', bucket: 'bkt', bukket: 'c' }), 'targets.x.bukket is not a known setting')
})

t.test('credentials in a target are refused, and never echoed', async (t) => {
  for (const key of ['secretAccessKey', 'accessKeyId', 'sessionToken', 'credentials']) {
    const msg = configError('s3-primary', { type: 's3', bucket: 'bkt', [key]: 'wJalrXUtnFEMI/K7MDENG' })
    t.match(msg, new RegExp(`^targets\\.s3-primary\\.${key} is not allowed: credentials never go in tierfs configuration \\(use the AWS credential chain`))
    t.notMatch(msg, /wJalrXUtnFEMI/)
  }
})

t.test('names, types and shapes', async (t) => {
  t.match(configError('bad name', { type: 's3', bucket: 'bkt' }), /not a valid target name/)
  t.equal(configError('x', 'oops'), 'targets.x must be an object')
  t.equal(configError('x', {}), 'targets.x.type is required')
  t.equal(configError('x', { type: 'tape' }), 'targets.x.type "tape" is not a known target type')
  t.equal(configError('x', { type: 'local' }), 'targets.x.path is required')
  t.match(configError('x', { type: 'local', path: 'p', kind: 'block' }), /targets\.x\.kind must be one of auto, object, cold/)
  t.same(parseTarget('nas', { type: 'local', path: 'p', kind: 'cold' }), { type: 'local', name: 'nas', path: 'p', kind: 'cold' })
  t.equal(parseTarget('nas', { type: 'local', path: 'p', kind: 'auto' }).kind, undefined, 'auto: by whether it needs recalls')
})

t.test('a policy step may name only a target of its kind', async (t) => {
  const set = new TierSet()
    .add(asTierId('block'), { tier: new LocalTier(asTierId('block'), '/b'), kind: 'block' })
    .add(asTierId('object'), { tier: new LocalTier(asTierId('object'), '/o'), kind: 'object' })
    .add(asTierId('cold'), { tier: new LocalTier(asTierId('cold'), '/c'), kind: 'cold' })
    .add(asTierId('nas'), { tier: new LocalTier(asTierId('nas'), '/n'), kind: 'cold' })
    .add(asTierId('s3'), { tier: new LocalTier(asTierId('s3'), '/s'), kind: 'object' })
  t.equal(set.resolve('cold', 'nas'), 'nas')
  t.equal(set.resolve('object', 's3'), 's3')
  t.equal(set.resolve('cold'), 'cold')
  t.throws(() => set.resolve('cold', 's3'), { code: 'CONFIG', message: 'target "s3" is an object target, not usable for a cold step (declare its kind in targets.s3.kind)' })
  t.throws(() => set.resolve('object', 'nas'), { code: 'CONFIG', message: 'target "nas" is a cold target, not usable for an object step (declare its kind in targets.nas.kind)' })
  t.throws(() => set.resolve('object', 'nowhere'), { code: 'CONFIG', message: /not defined/ })
})

t.test('makeTier builds the backend of each parsed target', async (t) => {
  const local = makeTier(asTierId('block'), parseTarget('disk', { type: 'local', path: 'blocks' }), { baseDir: '/srv/store' })
  t.ok(local instanceof LocalTier)
  t.equal(local.localPath('a/b'), join('/srv/store/blocks', 'a/b'))
  t.equal(makeTier(asTierId('block'), parseTarget('disk', { type: 'local', path: 'rel' })).localPath('k'), resolve('rel', 'k'))
  const s3 = makeTier(asTierId('cold'), parseTarget('deep', { type: 's3', bucket: 'bkt', region: 'us-east-1', storageClass: 'DEEP_ARCHIVE' }))
  t.ok(s3 instanceof S3Tier)
  t.same(s3.capabilities, { rangeReads: true, needsWarmup: true, maxConnections: 16, localFiles: false })
  t.equal(s3.localPath('k'), undefined)
  t.equal(await s3.space(), undefined)
  await s3.close()
  await s3.close()
})

t.test('a parsed target parses again to itself (tierfs init writes the parsed form out)', async (t) => {
  const raws: Array<[string, Record<string, unknown>]> = [
    ['s3', { type: 's3', bucket: 'backups' }],
    ['s3p', { type: 's3', bucket: 'backups', prefix: 'host1/', endpoint: 'http://127.0.0.1:9000', profile: 'p' }],
    ['az', { type: 'azure', endpoint: 'http://127.0.0.1:10000/devstoreaccount1', container: 'tierfs' }],
    ['gl', { type: 'glacier', vault: 'v', region: 'us-east-1', endpoint: 'http://127.0.0.1:1' }],
    ['disk', { type: 'local', path: 'blocks' }],
    ['nas', { type: 'local', path: '/mnt/nas', kind: 'cold' }],
    ['ir', { type: 's3', bucket: 'backups', storageClass: 'GLACIER_IR', kind: 'cold' }],
  ]
  for (const [name, raw] of raws) {
    const once = parseTarget(name, raw)
    t.same(parseTarget(name, JSON.parse(JSON.stringify(once))), once, `${name}: round trip`)
  }
  t.equal(configError('a', { type: 's3', bucket: 'bkt', name: 'b' }), `targets.a.name must be the target's key ("a") when given`)
})
