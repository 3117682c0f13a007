import { mkdir, mkdtemp, open, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Test } from 'tap'
import { ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3'
import { BlobServiceClient, StorageSharedKeyCredential } from '@azure/storage-blob'
import { S3RVER_KEY, S3rverProcess } from './s3rver-process.js'
import { startGlacierServer, TEST_KEYS, TEST_REGION, type GlacierServer } from './glacier-server.js'
import { emptyReport, type PassReport } from '../../src/policy/migrator.js'
import { run, type TestMount } from './tierfs-mount.js'
import { pseudoRandom, sha256File, sleep, waitSealed } from './e2e-io.js'

export const MiB = 1024 * 1024

/** The AWS profile the S3 targets name: s3rver's account, kept apart from the Glacier test key. */
export const S3RVER_PROFILE = 's3rver'

/**
 * Credentials for the daemon (it inherits this process's environment) through the SDKs' standard
 * chains only: an AWS shared credentials file whose default profile is the Glacier test server's
 * key (the Glacier target names no profile) and whose `s3rver` profile is s3rver's account (the S3
 * targets name it). No static keys in the environment, so neither SDK has to choose between two
 * sources. Azure: azurite's development account from AZURE_STORAGE_CONNECTION_STRING.
 */
export async function useTieringCredentials(): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'tierfs-aws-'))
  const credentials = join(dir, 'credentials')
  await writeFile(credentials, [
    '[default]', `aws_access_key_id = ${TEST_KEYS.accessKeyId}`, `aws_secret_access_key = ${TEST_KEYS.secretAccessKey}`, '',
    `[${S3RVER_PROFILE}]`, `aws_access_key_id = ${S3RVER_KEY}`, `aws_secret_access_key = ${S3RVER_KEY}`, '',
  ].join('\n'))
  process.env.AWS_SHARED_CREDENTIALS_FILE = credentials
  process.env.AWS_CONFIG_FILE = join(dir, 'config-none')
  process.env.AWS_REGION = TEST_REGION
  process.env.AWS_EC2_METADATA_DISABLED = 'true'
  for (const k of ['AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY', 'AWS_SESSION_TOKEN', 'AWS_PROFILE']) delete process.env[k]
}

export function useAzuriteCredentials(accountUrl: string, account: string, key: string): void {
  process.env.AZURE_STORAGE_CONNECTION_STRING = `DefaultEndpointsProtocol=http;AccountName=${account};AccountKey=${key};BlobEndpoint=${accountUrl}`
  delete process.env.AZURE_STORAGE_ACCOUNT
  delete process.env.AZURE_STORAGE_KEY
}

export function s3Target(endpoint: string, bucket: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { type: 's3', bucket, endpoint, region: TEST_REGION, profile: S3RVER_PROFILE, forcePathStyle: true, ...extra }
}

export function glacierTarget(endpoint: string, vault: string): Record<string, unknown> {
  return { type: 'glacier', vault, region: TEST_REGION, endpoint }
}

export function azureTarget(accountUrl: string, container: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { type: 'azure', endpoint: accountUrl, container, ...extra }
}

/** An Azure target whose blobs go straight into the Archive access tier (a cold target: reads need a rehydration). */
export function azureArchiveTarget(accountUrl: string, container: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return azureTarget(accountUrl, container, { accessTier: 'Archive', rehydrateTo: 'Hot', rehydratePriority: 'High', ...extra })
}

/** A blob as the service reports it, read with the test's own client (not through tierfs). */
export interface AzureBlobInfo { name: string; size: number; accessTier?: string; archiveStatus?: string }

/**
 * Blobs of a container under `prefix`, listed and then asked one by one (Get Blob Properties, as
 * the tier's warmth check does) for their access tier and archive status.
 */
export async function azureBlobs(accountUrl: string, account: string, key: string, container: string, prefix = ''): Promise<AzureBlobInfo[]> {
  const service = new BlobServiceClient(accountUrl, new StorageSharedKeyCredential(account, key), { retryOptions: { maxTries: 1 } })
  const c = service.getContainerClient(container)
  const out: AzureBlobInfo[] = []
  for await (const b of c.listBlobsFlat({ prefix })) {
    const p = await c.getBlobClient(b.name).getProperties()
    const info: AzureBlobInfo = { name: b.name, size: p.contentLength ?? 0 }
    if (p.accessTier !== undefined) info.accessTier = p.accessTier
    if (p.archiveStatus !== undefined) info.archiveStatus = p.archiveStatus
    out.push(info)
  }
  return out
}

/**
 * A store config for tiering tests: small packs so a file of a few MiB spans several, no
 * scheduled passes (tests run `tierfs policy apply`), a short recall wait, and the chunk cache
 * kept small enough not to matter for files of this size only after a remount.
 */
export function tieringConfig(targets: Record<string, unknown>, over: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    packSize: MiB,
    targets,
    migrate: { schedule: '', objectPackSize: 4 * MiB, coldPackSize: 16 * MiB },
    recall: { waitSeconds: 1 },
    policies: { reloadSeconds: 3600 },
    ...over,
  }
}

/** Writes STORE/policies/NAME.yaml. */
export async function writePolicy(m: TestMount, name: string, yaml: string): Promise<string> {
  const dir = join(m.store, 'policies')
  await mkdir(dir, { recursive: true })
  const file = join(dir, `${name}.yaml`)
  await writeFile(file, yaml)
  return file
}

/** The 5 / 25 / 180-day chain of the design sketch, ending in delete. */
export function chainPolicy(opts: { name: string; path: string; object?: string; cold?: string; then?: 'delete' | 'keep' }): string {
  return [
    `name: ${opts.name}`,
    `match: { path: "${opts.path}" }`,
    'age: mtime',
    'tiers:',
    '  - { tier: block, days: 5 }',
    `  - { tier: object, ${opts.object === undefined ? '' : `target: ${opts.object}, `}days: 25 }`,
    `  - { tier: cold, ${opts.cold === undefined ? '' : `target: ${opts.cold}, `}days: 180 }`,
    `then: ${opts.then ?? 'delete'}`,
    '',
  ].join('\n')
}

/** Runs a tierfs command that must succeed; returns stdout. */
export async function ok(t: Test, m: TestMount, args: string[]): Promise<string> {
  const r = await m.cli(args)
  if (r.code !== 0) t.fail(`tierfs ${args.join(' ')}: exit ${r.code}: ${r.stderr}${r.stdout}`)
  return r.stdout
}

export async function reload(t: Test, m: TestMount): Promise<string> {
  return ok(t, m, ['policy', 'reload', m.mnt])
}

export async function clockOffset(t: Test, m: TestMount, offset: string): Promise<void> {
  await ok(t, m, ['debug', 'clock-offset', m.mnt, offset])
}

export type { PassReport } from '../../src/policy/migrator.js'

/** `tierfs policy apply MNT --json`: the pass report and the exit code. */
export async function apply(m: TestMount): Promise<{ code: number; report: PassReport; stderr: string }> {
  const r = await m.cli(['policy', 'apply', m.mnt, '--json'])
  let report: PassReport
  try {
    report = JSON.parse(r.stdout) as PassReport
  } catch {
    report = { ...emptyReport(), errors: [{ message: r.stderr }] }
  }
  return { code: r.code, report, stderr: r.stderr }
}

export interface Plan {
  rows: Array<{ policy: string; transition: string; files: number; bytes: number }>
  errors: Array<{ path?: string; message: string }>
  files: number
  bytes: number
}

export async function plan(t: Test, m: TestMount): Promise<Plan> {
  return JSON.parse(await ok(t, m, ['policy', 'plan', m.mnt, '--json'])) as Plan
}

/** A virtual xattr read through the mount by getfattr (a separate process, as a user would). */
export async function xattr(path: string, name: 'user.tierfs.tier' | 'user.tierfs.state'): Promise<string> {
  const r = await run('getfattr', ['--only-values', '--absolute-names', '-n', name, path])
  if (r.code !== 0) throw new Error(`getfattr -n ${name} ${path}: ${r.stderr}`)
  return r.stdout.trim()
}

export async function tierBytes(m: TestMount): Promise<Record<string, number>> {
  const s = await m.status()
  return Object.fromEntries(Object.entries((s.tiers ?? {}) as Record<string, { bytes: number }>).map(([k, v]) => [k, v.bytes]))
}

/** sync + drop the kernel's page, dentry and inode caches (root only; fails loudly otherwise). */
export async function dropCaches(): Promise<void> {
  await run('sync', [])
  await writeFile('/proc/sys/vm/drop_caches', '3')
}

/**
 * Remounts (a fresh daemon has an empty chunk cache) and drops the kernel caches, so the next
 * read really fetches from wherever the data lives. The daemon's clock offset is set again.
 */
export async function coldRemount(t: Test, m: TestMount, offset?: string): Promise<void> {
  await m.umount()
  await m.mount()
  if (offset !== undefined) await clockOffset(t, m, offset)
  await dropCaches()
}

/** Writes `size` deterministic bytes (seeded) to `path` in 1 MiB writes; returns their SHA-256. */
export async function writeData(path: string, seed: string, size: number): Promise<string> {
  const fh = await open(path, 'w')
  try {
    for (let off = 0; off < size; off += MiB) await fh.write(pseudoRandom(`${seed}:${off}`, Math.min(MiB, size - off)), 0, Math.min(MiB, size - off), off)
  } finally {
    await fh.close()
  }
  return sha256File(path)
}

export interface FsckResult {
  ok: boolean
  problems: Array<{ kind: string; message: string; repaired: boolean }>
  checked: { fileMaps: number; chunks: number; packs: number; bytesVerified: number; coldUnverified: number }
}

/** `tierfs fsck STORE --json` (the store must be unmounted). */
export async function fsck(m: TestMount): Promise<FsckResult & { code: number; raw: string }> {
  const r = await m.cli(['fsck', m.store, '--json'])
  try {
    return { ...(JSON.parse(r.stdout) as FsckResult), code: r.code, raw: r.stdout }
  } catch {
    return { ok: false, problems: [{ kind: 'fsck-failed', message: r.stderr, repaired: false }], checked: { fileMaps: 0, chunks: 0, packs: 0, bytesVerified: 0, coldUnverified: 0 }, code: r.code, raw: r.stderr }
  }
}

export async function fsckClean(t: Test, m: TestMount, label: string): Promise<FsckResult> {
  const f = await fsck(m)
  t.equal(f.code, 0, `${label}: fsck exits 0`)
  t.same(f.problems, [], `${label}: fsck finds no problems`)
  return f
}

/** Keys in an s3rver bucket, listed with the s3rver profile (the test's own client). */
export async function s3Keys(endpoint: string, bucket: string): Promise<Array<{ key: string; size: number }>> {
  const client = new S3Client({ endpoint, region: TEST_REGION, profile: S3RVER_PROFILE, forcePathStyle: true, maxAttempts: 1 })
  try {
    const out: Array<{ key: string; size: number }> = []
    let token: string | undefined
    do {
      const page = await client.send(new ListObjectsV2Command({ Bucket: bucket, ContinuationToken: token }))
      for (const o of page.Contents ?? []) out.push({ key: o.Key ?? '', size: o.Size ?? 0 })
      token = page.IsTruncated === true ? page.NextContinuationToken : undefined
    } while (token !== undefined)
    return out
  } finally {
    client.destroy()
  }
}

/** Polls `fn` until it returns a value other than undefined, or fails after `ms`. */
export async function eventually<T>(what: string, ms: number, fn: () => Promise<T | undefined>, everyMs = 250): Promise<T> {
  const deadline = Date.now() + ms
  for (;;) {
    const v = await fn()
    if (v !== undefined) return v
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`)
    await sleep(everyMs)
  }
}

/** s3rver (bucket made) and the Glacier test server (vault made), stopped in teardown. */
export async function startS3AndGlacier(t: Test, opts: { bucket: string; vault: string; jobDelayMs: number }): Promise<{ s3: S3rverProcess; glacier: GlacierServer }> {
  const s3 = await S3rverProcess.start({ buckets: [opts.bucket] })
  t.teardown(() => s3.destroy())
  const glacier = await startGlacierServer({ jobDelayMs: opts.jobDelayMs, vaults: [opts.vault] })
  t.teardown(() => glacier.stop())
  return { s3, glacier }
}

/**
 * The start of a chain scenario: /hbase/a.bin (`size` bytes) and a small /other.bin outside the
 * policy (inline in metadata: every block pack is a.bin's), sealed; a chain policy `name` under
 * /hbase/** to `object` then `cold`, checked by `tierfs policy check` and loaded.
 */
export async function startChain(t: Test, m: TestMount, o: { seed: string; size: number; name: string; object: string; cold: string }): Promise<{ a: string; aSha: string; control: string; controlSha: string }> {
  await mkdir(join(m.mnt, 'hbase'))
  const a = join(m.mnt, 'hbase/a.bin')
  const control = join(m.mnt, 'other.bin')
  const controlSha = await writeData(control, `${o.seed}-control`, 4096)
  const aSha = await writeData(a, `${o.seed}-a`, o.size)
  await waitSealed(m)
  const file = await writePolicy(m, 'hbase', chainPolicy({ name: o.name, path: '/hbase/**', object: o.object, cold: o.cold }))
  t.match(await ok(t, m, ['policy', 'check', file]), new RegExp(`ok \\(${o.name}\\)`), 'policy check accepts the chain')
  t.match(await reload(t, m), new RegExp(`policies in force: ${o.name}`))
  return { a, aSha, control, controlSha }
}
