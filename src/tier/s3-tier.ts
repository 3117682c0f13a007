import { stat } from 'node:fs/promises'
import type { Readable } from 'node:stream'
import {
  DeleteObjectCommand, GetObjectCommand, HeadBucketCommand, HeadObjectCommand, ListObjectsV2Command, PutObjectCommand,
  RestoreObjectCommand, S3Client, type HeadObjectCommandOutput,
} from '@aws-sdk/client-s3'
import { TierfsError } from '../errors.js'
import type { TierId } from '../ids.js'
import { silentLogger } from '../log.js'
import { mapS3Error, s3ErrorCode, s3Status } from './s3-errors.js'
import { readFileHead } from './file-part.js'
import { uploadMultipart } from './s3-multipart.js'
import type { ObjectInfo, Tier, TierCapabilities, Warmth } from './tier.js'
import { checkKey } from './tier-key.js'

export const S3_STORAGE_CLASSES = ['STANDARD', 'STANDARD_IA', 'GLACIER_IR', 'GLACIER', 'DEEP_ARCHIVE'] as const
export type S3StorageClass = (typeof S3_STORAGE_CLASSES)[number]
export const S3_RESTORE_TIERS = ['Expedited', 'Standard', 'Bulk'] as const
export type S3RestoreTier = (typeof S3_RESTORE_TIERS)[number]

/** Where and how an S3 target stores objects. Never holds credentials. */
export interface S3TierOptions {
  /** The target's name in the config; messages name it. */
  name: string
  bucket: string
  /** Prepended to every key ('/' added when missing); `list` strips it again. */
  prefix?: string
  /** Any S3-compatible endpoint (`http://127.0.0.1:9000`); default: AWS for the region. */
  endpoint?: string
  /** Default: the SDK's chain (AWS_REGION, the profile's region). */
  region?: string
  /** Bucket in the path instead of the host name; most S3-compatible servers need it. */
  forcePathStyle?: boolean
  /** Set on every upload. Default STANDARD. GLACIER and DEEP_ARCHIVE make the tier need warm-up. */
  storageClass?: S3StorageClass
  /**
   * 'when-required' (default): checksums only where S3 demands them, and response checksums
   * not validated; what s3rver and many S3-compatible servers need (otherwise streamed uploads
   * are stored with their aws-chunked framing). 'when-supported': CRC32 on every upload and
   * validated downloads, for AWS itself.
   */
  checksumMode?: 'when-required' | 'when-supported'
  /** Bytes per part of multipart uploads. Default 16 MiB (S3's minimum is 5 MiB). */
  partSize?: number
  /** Files larger than this are uploaded in parts. Default `partSize`. */
  multipartThreshold?: number
  /** Retrieval tier of `warmup`. Default 'Standard'. */
  restoreTier?: S3RestoreTier
  /** Days a restored copy stays readable. Default 3. */
  restoreDays?: number
  /** Default 16. */
  maxConnections?: number
  /** Keys per ListObjectsV2 page. Default 1000 (S3's maximum). */
  listPageSize?: number
  /** A named profile of the shared AWS config files (not a credential: the chain reads it). */
  profile?: string
  /** Default 10 s. */
  connectTimeoutMs?: number
  /** A request whose socket is silent this long fails (transient). Default 120 s. */
  idleTimeoutMs?: number
}

const MiB = 1024 * 1024
const ARCHIVE_CLASSES = new Set(['GLACIER', 'DEEP_ARCHIVE'])

/**
 * An S3 bucket (or a prefix in one) as a tier, on AWS or any S3-compatible server. Credentials
 * come only from the SDK's default provider chain (environment, shared config and credentials
 * files with `profile`, web identity, instance role).
 *
 * - `put` of a buffer, or of a file up to `multipartThreshold`, is one PutObject; larger files
 *   are multipart uploads, one part read into memory at a time. Every body goes up as a buffer,
 *   so SigV4 signs its SHA-256 and S3 refuses a body damaged on the way. Both are atomic in S3.
 * - `get` with a range is a ranged GET; the body is clipped to the range even when a server
 *   ignores or widens the Range header, and a range that starts past the end is empty.
 * - `list` is ListObjectsV2 without a delimiter, page by page.
 * - `ready` checks that the bucket exists and the credentials are accepted. HEAD responses
 *   carry no error code, so afterwards `head` reads any 404 as a missing object.
 * - With an archive storage class, `warmth` reads HeadObject's StorageClass and Restore
 *   headers and `warmup` sends RestoreObject; `get` of an archived object fails with AGAIN.
 * - The SDK makes one attempt per request: retrying is RetryTier's job (and the SDK could not
 *   replay a streamed body anyway). Failures carry `detail.transient` as the Tier contract says.
 */
export class S3Tier implements Tier {
  readonly capabilities: TierCapabilities
  private readonly client: S3Client
  private readonly prefix: string
  private readonly storageClass: S3StorageClass
  private readonly partSize: number
  private readonly threshold: number
  private bucketChecked = false
  private closed = false

  constructor(readonly id: TierId, readonly options: S3TierOptions) {
    this.storageClass = options.storageClass ?? 'STANDARD'
    this.capabilities = {
      rangeReads: true,
      needsWarmup: ARCHIVE_CLASSES.has(this.storageClass),
      maxConnections: options.maxConnections ?? 16,
      localFiles: false,
    }
    const p = (options.prefix ?? '').replace(/^\/+|\/+$/g, '')
    this.prefix = p === '' ? '' : `${checkKey(p)}/`
    this.partSize = options.partSize ?? 16 * MiB
    this.threshold = options.multipartThreshold ?? this.partSize
    const mode = options.checksumMode === 'when-supported' ? 'WHEN_SUPPORTED' : 'WHEN_REQUIRED'
    this.client = new S3Client({
      ...(options.endpoint === undefined ? {} : { endpoint: options.endpoint }),
      ...(options.region === undefined ? {} : { region: options.region }),
      ...(options.profile === undefined ? {} : { profile: options.profile }),
      forcePathStyle: options.forcePathStyle ?? options.endpoint !== undefined,
      requestChecksumCalculation: mode,
      responseChecksumValidation: mode,
      maxAttempts: 1,
      // The SDK would print its own warnings to the console; every failure reaches the caller
      // as a TierfsError, which the daemon logs.
      logger: silentLogger,
      requestHandler: {
        connectionTimeout: options.connectTimeoutMs ?? 10_000,
        socketTimeout: options.idleTimeoutMs ?? 120_000,
        httpAgent: { keepAlive: true, maxSockets: this.capabilities.maxConnections },
        httpsAgent: { keepAlive: true, maxSockets: this.capabilities.maxConnections },
      },
    })
  }

  async ready(): Promise<void> {
    if (this.bucketChecked) return
    try {
      await this.live().send(new HeadBucketCommand({ Bucket: this.options.bucket }))
    } catch (err) {
      // HeadBucket answers a missing bucket with a bare 404, no error code.
      throw this.fail(s3Status(err) === 404 ? Object.assign(err as object, { Code: 'NoSuchBucket' }) : err, 'ready')
    }
    this.bucketChecked = true
  }

  async close(): Promise<void> {
    if (this.closed) return
    this.closed = true
    this.client.destroy()
  }

  localPath(_key: string): undefined {
    return undefined
  }

  async space(): Promise<undefined> {
    return undefined
  }

  async get(key: string, range?: { offset: number; length: number }): Promise<Buffer> {
    const Key = this.objectKey(key)
    if (range !== undefined && range.length <= 0) {
      if ((await this.head(key)) === undefined) throw new TierfsError('NOT_FOUND', `${this.options.name}: get ${key}: no such object`)
      return Buffer.alloc(0)
    }
    try {
      const Range = range === undefined ? undefined : `bytes=${range.offset}-${range.offset + range.length - 1}`
      const res = await this.live().send(new GetObjectCommand({ Bucket: this.options.bucket, Key, Range }))
      const start = range === undefined ? 0 : contentRangeStart(res.ContentRange) ?? 0
      const skip = range === undefined ? 0 : range.offset - start
      if (skip < 0) throw new TierfsError('IO', `${this.options.name}: get ${key}: server answered range ${res.ContentRange ?? ''} for ${Range ?? ''}`)
      return await collect(res.Body as Readable, skip, range?.length ?? Infinity, res.ContentLength)
    } catch (err) {
      if (range !== undefined && (s3Status(err) === 416 || s3ErrorCode(err) === 'InvalidRange')) return Buffer.alloc(0)
      throw this.fail(err, 'get', key)
    }
  }

  async put(key: string, source: { file: string } | { data: Buffer }): Promise<void> {
    const Key = this.objectKey(key)
    const common = { Bucket: this.options.bucket, Key, StorageClass: this.storageClass }
    try {
      if ('data' in source) {
        await this.live().send(new PutObjectCommand({ ...common, Body: source.data, ContentLength: source.data.length }))
        return
      }
      const size = (await stat(source.file)).size
      if (size > this.threshold) {
        await uploadMultipart({
          client: this.live(), bucket: this.options.bucket, key: Key, file: source.file, size,
          partSize: this.partSize, storageClass: this.storageClass, checksums: this.options.checksumMode === 'when-supported',
        })
        return
      }
      if (size === 0) {
        await this.live().send(new PutObjectCommand({ ...common, Body: Buffer.alloc(0), ContentLength: 0 }))
        return
      }
      // One part's worth at most, read whole: a buffer body has its SHA-256 signed and checked.
      const body = await readFileHead(source.file, size)
      await this.live().send(new PutObjectCommand({ ...common, Body: body, ContentLength: size }))
    } catch (err) {
      throw this.fail(err, 'put', key)
    }
  }

  async head(key: string): Promise<ObjectInfo | undefined> {
    const res = await this.headObject(key)
    return res === undefined ? undefined : { key, size: res.ContentLength ?? 0 }
  }

  async delete(key: string): Promise<void> {
    const Key = this.objectKey(key)
    try {
      await this.live().send(new DeleteObjectCommand({ Bucket: this.options.bucket, Key }))
    } catch (err) {
      if (s3ErrorCode(err) === 'NoSuchKey') return
      throw this.fail(err, 'delete', key)
    }
  }

  async *list(prefix: string): AsyncIterable<ObjectInfo> {
    const Prefix = this.prefix + prefix
    let ContinuationToken: string | undefined
    do {
      let page
      try {
        page = await this.live().send(new ListObjectsV2Command({ Bucket: this.options.bucket, Prefix, ContinuationToken, MaxKeys: this.options.listPageSize ?? 1000 }))
      } catch (err) {
        throw this.fail(err, 'list', prefix)
      }
      for (const o of page.Contents ?? []) {
        if (o.Key === undefined || !o.Key.startsWith(Prefix)) continue
        yield { key: o.Key.slice(this.prefix.length), size: o.Size ?? 0 }
      }
      ContinuationToken = page.IsTruncated === true ? page.NextContinuationToken : undefined
    } while (ContinuationToken !== undefined)
  }

  async warmth(key: string): Promise<Warmth> {
    if (!this.capabilities.needsWarmup) return 'warm'
    const res = await this.headObject(key)
    if (res === undefined) throw new TierfsError('NOT_FOUND', `${this.options.name}: warmth ${key}: no such object`)
    const archived = ARCHIVE_CLASSES.has(res.StorageClass ?? 'STANDARD') || res.ArchiveStatus !== undefined
    if (!archived) return 'warm'
    const restore = res.Restore ?? ''
    if (/ongoing-request="true"/.test(restore)) return 'warming'
    if (/expiry-date=/.test(restore)) return 'warm'
    return 'cold'
  }

  async warmup(key: string): Promise<void> {
    if (!this.capabilities.needsWarmup) return
    const Key = this.objectKey(key)
    try {
      await this.live().send(new RestoreObjectCommand({
        Bucket: this.options.bucket,
        Key,
        RestoreRequest: { Days: this.options.restoreDays ?? 3, GlacierJobParameters: { Tier: this.options.restoreTier ?? 'Standard' } },
      }))
    } catch (err) {
      const code = s3ErrorCode(err)
      // Already being restored: joined. Not in an archive class: readable as it is.
      if (code === 'RestoreAlreadyInProgress' || code === 'InvalidObjectState') return
      throw this.fail(err, 'warmup', key)
    }
  }

  private async headObject(key: string): Promise<HeadObjectCommandOutput | undefined> {
    const Key = this.objectKey(key)
    try {
      return await this.live().send(new HeadObjectCommand({ Bucket: this.options.bucket, Key }))
    } catch (err) {
      const e = this.fail(err, 'head', key)
      if (e.code === 'NOT_FOUND') return undefined
      throw e
    }
  }

  private objectKey(key: string): string {
    return this.prefix + checkKey(key)
  }

  private live(): S3Client {
    if (this.closed) throw new TierfsError('CLOSED', `${this.options.name}: tier ${this.id} is closed`)
    return this.client
  }

  private fail(err: unknown, op: string, key?: string): TierfsError {
    return mapS3Error(err, { target: this.options.name, bucket: this.options.bucket, op, ...(key === undefined ? {} : { key }) })
  }
}

/** First byte of a `Content-Range: bytes a-b/n` header, if there is one. */
function contentRangeStart(header: string | undefined): number | undefined {
  const m = header === undefined ? null : /^bytes (\d+)-/.exec(header)
  return m === null ? undefined : Number(m[1])
}

/** Reads `take` bytes after skipping `skip` from a body stream, then lets the rest go. */
async function collect(body: Readable, skip: number, take: number, contentLength: number | undefined): Promise<Buffer> {
  const expected = Math.max(0, Math.min(take, (contentLength ?? Infinity) - skip))
  const out = Number.isFinite(expected) ? Buffer.allocUnsafe(expected) : undefined
  const chunks: Buffer[] = []
  let filled = 0
  try {
    for await (const c of body as AsyncIterable<Buffer>) {
      let chunk = c
      if (skip > 0) {
        const drop = Math.min(skip, chunk.length)
        skip -= drop
        chunk = chunk.subarray(drop)
      }
      const room = Math.min(take - filled, chunk.length, out === undefined ? Infinity : out.length - filled)
      if (room > 0) {
        if (out !== undefined) chunk.copy(out, filled, 0, room)
        else chunks.push(chunk.subarray(0, room))
        filled += room
      }
      if (filled >= take) break
    }
  } finally {
    body.destroy()
  }
  if (out === undefined) return Buffer.concat(chunks, filled)
  return filled === out.length ? out : out.subarray(0, filled)
}
