import { isAbsolute, resolve } from 'node:path'
import { TierfsError } from '../errors.js'
import type { TierId } from '../ids.js'
import { AZURE_ACCESS_TIERS, AZURE_REHYDRATE_PRIORITIES, AZURE_REHYDRATE_TIERS, AzureTier, type AzureTierOptions } from './azure-tier.js'
import { checkPartSize } from './glacier-range.js'
import { GLACIER_RETRIEVAL_TIERS, GlacierTier, type GlacierSettings } from './glacier-tier.js'
import { LocalTier } from './local-tier.js'
import type { RecordStore } from './record-store.js'
import { S3_RESTORE_TIERS, S3_STORAGE_CLASSES, S3Tier, type S3TierOptions } from './s3-tier.js'
import { TargetFields } from './target-fields.js'
import type { LocatorStore, Tier } from './tier.js'
import { checkKey } from './tier-key.js'

/**
 * Targets: the places tiers live, as written in the daemon config under `targets.<name>`.
 * Each variant is a `type` tag plus its backend's options; credentials are never part of one
 * (every backend takes them from its SDK's standard chain). `parseTarget` validates raw JSON
 * into a variant with every default filled in; `makeTier` builds the plain backend (wrappers
 * such as RetryTier, LimitTier and MetricsTier are composed by the caller).
 */
export type TargetConfig = (LocalTargetConfig | S3TargetConfig | AzureTargetConfig | GlacierTargetConfig) & {
  /**
   * The tier kind the target serves (`kind` in the config): policy steps of that kind may name
   * it. Absent: cold for targets whose objects need a recall, object otherwise. A local directory
   * or an instant-retrieval bucket may be declared cold (cold packs, the cold rank in placement);
   * a target that needs recalls can never be object.
   */
  kind?: 'object' | 'cold'
}

/** A local directory (disk, EBS, SAN mount). */
export interface LocalTargetConfig {
  type: 'local'
  name: string
  /** Relative paths are resolved against `MakeTierOptions.baseDir`. */
  path: string
}

/** An S3 or S3-compatible bucket; see S3TierOptions for each field. */
export interface S3TargetConfig extends S3TierOptions {
  type: 's3'
}

/** An Azure Blob Storage container; see AzureTierOptions for each field. */
export interface AzureTargetConfig extends AzureTierOptions {
  type: 'azure'
}

/** An S3 Glacier vault (the 2012 vault API); see GlacierSettings for each field. */
export interface GlacierTargetConfig extends GlacierSettings {
  type: 'glacier'
  name: string
}

export interface MakeTierOptions {
  /** Directory that relative local paths are resolved against (the store). Default: cwd. */
  baseDir?: string
  /** Key -> archive id records of this target; required by backends that assign ids (glacier). */
  locators?: LocatorStore
  /** Retrieval-job records of this target (glacier), so a restart resumes polling; in memory when absent. */
  retrievalJobs?: RecordStore
  /** Unresolved uploads of this target (glacier), so a crash leaks no archive; in memory when absent. */
  uploadIntents?: RecordStore
}

const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._-]*$/
const MiB = 1024 * 1024
const GiB = 1024 * MiB

/** Validates `targets.<name>` and fills in defaults. Errors are CONFIG and name the field. */
export function parseTarget(name: string, raw: unknown): TargetConfig {
  if (!NAME_RE.test(name)) throw new TierfsError('CONFIG', `targets: ${JSON.stringify(name)} is not a valid target name (letters, digits, '.', '_', '-')`)
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) throw new TierfsError('CONFIG', `targets.${name} must be an object`)
  const r = raw as Record<string, unknown>
  const f = new TargetFields(name, r)
  const kind = f.oneOf('kind', ['auto', 'object', 'cold'] as const, 'auto')
  const cfg = parseVariant(f, r.type)
  return kind === 'auto' ? cfg : { ...cfg, kind }
}

function parseVariant(f: TargetFields, type: unknown): TargetConfig {
  switch (type) {
    case 'local': return parseLocal(f)
    case 's3': return parseS3(f)
    case 'azure': return parseAzure(f)
    case 'glacier': return parseGlacier(f)
    case undefined: throw new TierfsError('CONFIG', `targets.${f.name}.type is required`)
    default: throw new TierfsError('CONFIG', `targets.${f.name}.type ${JSON.stringify(String(type))} is not a known target type`)
  }
}

/** Builds the backend for a parsed target. */
export function makeTier(id: TierId, target: TargetConfig, opts: MakeTierOptions = {}): Tier {
  switch (target.type) {
    case 'local': return new LocalTier(id, isAbsolute(target.path) ? target.path : resolve(opts.baseDir ?? '.', target.path))
    case 's3': return new S3Tier(id, target)
    case 'azure': return new AzureTier(id, target)
    case 'glacier': {
      if (opts.locators === undefined) throw new TierfsError('INTERNAL', `targets.${target.name}: a glacier tier needs a LocatorStore (MakeTierOptions.locators)`)
      const { type: _type, name: _name, ...settings } = target
      return new GlacierTier(id, {
        ...settings, locators: opts.locators,
        ...(opts.retrievalJobs === undefined ? {} : { jobs: opts.retrievalJobs }),
        ...(opts.uploadIntents === undefined ? {} : { intents: opts.uploadIntents }),
      })
    }
  }
}

function parseLocal(f: TargetFields): LocalTargetConfig {
  const cfg: LocalTargetConfig = { type: 'local', name: f.name, path: f.string('path') }
  f.done('local targets need none')
  return cfg
}

function parseS3(f: TargetFields): S3TargetConfig {
  const bucket = f.string('bucket')
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]{2,254}$/.test(bucket)) f.fail('bucket', 'is not a valid bucket name')
  const prefix = (f.optionalString('prefix', { allowEmpty: true }) ?? '').replace(/^\/+|\/+$/g, '')
  if (prefix !== '') {
    try {
      checkKey(prefix)
    } catch {
      f.fail('prefix', "may hold only letters, digits, '.', '_', '-' and '/' separators")
    }
  }
  const endpoint = f.optionalString('endpoint')
  if (endpoint !== undefined && !/^https?:\/\/[^/\s]+(\/\S*)?$/.test(endpoint)) f.fail('endpoint', 'must be an http:// or https:// URL')
  const region = f.optionalString('region')
  const profile = f.optionalString('profile')
  const storageClass = f.oneOf('storageClass', S3_STORAGE_CLASSES, 'STANDARD')
  const partSize = f.number('partSize', 16 * MiB, { min: 5 * MiB, max: 5 * GiB, integer: true })
  const cfg: S3TargetConfig = {
    type: 's3',
    name: f.name,
    bucket,
    prefix,
    forcePathStyle: f.boolean('forcePathStyle', endpoint !== undefined),
    storageClass,
    checksumMode: f.oneOf('checksumMode', ['when-required', 'when-supported'] as const, 'when-required'),
    partSize,
    multipartThreshold: f.number('multipartThreshold', partSize, { min: 5 * MiB, max: 5 * GiB, integer: true }),
    restoreTier: f.oneOf('restoreTier', S3_RESTORE_TIERS, 'Standard'),
    restoreDays: f.number('restoreDays', 3, { min: 1, max: 3650, integer: true }),
    maxConnections: f.number('maxConnections', 16, { min: 1, max: 1024, integer: true }),
    listPageSize: f.number('listPageSize', 1000, { min: 1, max: 1000, integer: true }),
    connectTimeoutMs: f.number('connectTimeoutMs', 10_000, { min: 100, max: 600_000, integer: true }),
    idleTimeoutMs: f.number('idleTimeoutMs', 120_000, { min: 100, max: 3_600_000, integer: true }),
  }
  if (endpoint !== undefined) cfg.endpoint = endpoint
  if (region !== undefined) cfg.region = region
  if (profile !== undefined) cfg.profile = profile
  if (cfg.restoreTier === 'Expedited' && storageClass === 'DEEP_ARCHIVE') f.fail('restoreTier', 'Expedited is not available for DEEP_ARCHIVE (use Standard or Bulk)')
  f.done('use the AWS credential chain: environment, a profile in ~/.aws/credentials, or an instance role')
  return cfg
}

function parseAzure(f: TargetFields): AzureTargetConfig {
  const endpoint = f.string('endpoint')
  if (!/^https?:\/\/[^/\s]+(\/\S*)?$/.test(endpoint)) f.fail('endpoint', 'must be the account URL (https://<account>.blob.core.windows.net)')
  const container = f.string('container')
  if (!/^[a-z0-9](?!.*--)[a-z0-9-]{1,61}[a-z0-9]$/.test(container)) f.fail('container', 'is not a valid container name (3-63 lowercase letters, digits, single hyphens)')
  const prefix = (f.optionalString('prefix', { allowEmpty: true }) ?? '').replace(/^\/+|\/+$/g, '')
  if (prefix !== '') {
    try {
      checkKey(prefix)
    } catch {
      f.fail('prefix', "may hold only letters, digits, '.', '_', '-' and '/' separators")
    }
  }
  const cfg: AzureTargetConfig = {
    type: 'azure',
    name: f.name,
    endpoint,
    container,
    prefix,
    accessTier: f.oneOf('accessTier', AZURE_ACCESS_TIERS, 'Hot'),
    rehydrateTo: f.oneOf('rehydrateTo', AZURE_REHYDRATE_TIERS, 'Hot'),
    rehydratePriority: f.oneOf('rehydratePriority', AZURE_REHYDRATE_PRIORITIES, 'Standard'),
    blockSize: f.number('blockSize', 8 * MiB, { min: 256 * 1024, max: 4000 * MiB, integer: true }),
    uploadConcurrency: f.number('uploadConcurrency', 4, { min: 1, max: 64, integer: true }),
    maxConnections: f.number('maxConnections', 16, { min: 1, max: 1024, integer: true }),
  }
  f.done('set AZURE_STORAGE_CONNECTION_STRING, or AZURE_STORAGE_ACCOUNT and AZURE_STORAGE_KEY, in the daemon environment')
  return cfg
}

function parseGlacier(f: TargetFields): GlacierTargetConfig {
  const vault = f.string('vault')
  if (!/^[A-Za-z0-9_.-]{1,255}$/.test(vault)) f.fail('vault', "is not a valid vault name (1-255 letters, digits, '_', '-', '.')")
  const accountId = f.optionalString('accountId') ?? '-'
  if (accountId !== '-' && !/^\d{12}$/.test(accountId)) f.fail('accountId', "must be '-' (the credentials' account) or a 12-digit account id")
  const region = f.string('region')
  if (!/^[a-z]{2}(-[a-z]+)+-\d+$/.test(region)) f.fail('region', 'is not an AWS region name (like us-east-1)')
  const endpoint = f.optionalString('endpoint')
  if (endpoint !== undefined && !/^https?:\/\/[^/\s]+(\/\S*)?$/.test(endpoint)) f.fail('endpoint', 'must be an http:// or https:// URL')
  const partSize = f.number('partSize', 8 * MiB, { min: MiB, max: 4 * GiB, integer: true })
  try {
    checkPartSize(partSize)
  } catch {
    f.fail('partSize', 'must be a power-of-two number of MiB (1 MiB, 2 MiB, 4 MiB, ... 4 GiB)')
  }
  const cfg: GlacierTargetConfig = {
    type: 'glacier',
    name: f.name,
    vault,
    accountId,
    region,
    partSize,
    singleUploadMax: f.number('singleUploadMax', Math.min(partSize, 64 * MiB), { min: 1, max: 64 * MiB, integer: true }),
    retrievalTier: f.oneOf('retrievalTier', GLACIER_RETRIEVAL_TIERS, 'Standard'),
    maxAttempts: f.number('maxAttempts', 3, { min: 1, max: 20, integer: true }),
    partConcurrency: f.number('partConcurrency', 2, { min: 1, max: 64, integer: true }),
    maxConnections: f.number('maxConnections', 4, { min: 1, max: 1024, integer: true }),
  }
  if (endpoint !== undefined) cfg.endpoint = endpoint
  f.done('use the AWS credential chain: environment, a profile in ~/.aws/credentials, or an instance role')
  return cfg
}
