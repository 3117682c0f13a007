import { BlobServiceClient, type BlobClient, type ContainerClient } from '@azure/storage-blob'
import { TierfsError } from '../errors.js'
import type { TierId } from '../ids.js'
import { resolveAzureCredential, type IdentityLoader } from './azure-credential.js'
import { azureErrorCode, mapAzureError } from './azure-error.js'
import type { ObjectInfo, Tier, TierCapabilities, Warmth } from './tier.js'
import { checkKey } from './tier-key.js'
import { uploadBlocks } from './azure-blocks.js'

export const AZURE_ACCESS_TIERS = ['Hot', 'Cool', 'Cold', 'Archive'] as const
export type AzureAccessTier = (typeof AZURE_ACCESS_TIERS)[number]
export const AZURE_REHYDRATE_TIERS = ['Hot', 'Cool'] as const
export const AZURE_REHYDRATE_PRIORITIES = ['Standard', 'High'] as const

/** Where and how an Azure Blob target stores objects. Never holds credentials. */
export interface AzureTierOptions {
  /** The target's name, used in messages. */
  name: string
  /** Account URL: `https://<account>.blob.core.windows.net`, or `http://127.0.0.1:10000/devstoreaccount1` for azurite. */
  endpoint: string
  container: string
  /** Prepended to every key ('/' added when missing); `list` strips it again. */
  prefix?: string
  /** Access tier set on every upload. Default 'Hot'. 'Archive' makes the tier need warm-up. */
  accessTier?: AzureAccessTier
  /** Tier an archived blob is rehydrated to by `warmup`. Default 'Hot'. */
  rehydrateTo?: (typeof AZURE_REHYDRATE_TIERS)[number]
  /** Default 'Standard' (up to 15 hours); 'High' costs more and can take under an hour. */
  rehydratePriority?: (typeof AZURE_REHYDRATE_PRIORITIES)[number]
  /** Block size of staged uploads, bytes; larger sources are uploaded as blocks. Default 8 MiB. */
  blockSize?: number
  /** Blocks in flight per upload. Default 4. */
  uploadConcurrency?: number
  /** Default 16. */
  maxConnections?: number
}

/** Where the tier finds its credentials; tests point these at a private environment. */
export interface AzureTierEnv {
  env?: NodeJS.ProcessEnv
  loadIdentity?: IdentityLoader
}

const MiB = 1024 * 1024

/**
 * An Azure Blob Storage container (or a prefix inside one) as a tier. Objects are block blobs
 * named `<prefix><key>`; a put is staged blocks, each checked by the service against its MD5,
 * made visible by one Put Block List, so readers never see a partial or damaged object. Uploads
 * stream from the source file block by block; memory stays bounded by the blocks in flight.
 *
 * A staged put that fails leaves uncommitted blocks, which Azure discards after a week; they are
 * never visible. Downloads read into one buffer of the requested size; a body cut short is
 * resumed by the SDK from where it stopped, pinned to the blob's ETag.
 *
 * Credentials come only from the environment (see resolveAzureCredential). Otherwise the SDK
 * makes one attempt per request; failures carry `detail.transient` as the Tier contract says.
 *
 * With `accessTier: 'Archive'` blobs go straight to the archive: `get` fails with AGAIN until
 * `warmup` (Set Blob Tier with a rehydrate priority) has finished the rehydration, which Azure
 * takes hours to do; `warmth` reads the blob's tier and archive status.
 */
export class AzureTier implements Tier {
  readonly capabilities: TierCapabilities
  private readonly prefix: string
  private opening: Promise<ContainerClient> | undefined
  private closed = false

  constructor(readonly id: TierId, readonly options: AzureTierOptions, private readonly from: AzureTierEnv = {}) {
    this.capabilities = { rangeReads: true, needsWarmup: options.accessTier === 'Archive', maxConnections: options.maxConnections ?? 16, localFiles: false }
    const p = (options.prefix ?? '').replace(/\/+$/, '')
    this.prefix = p === '' ? '' : `${checkKey(p)}/`
  }

  /** Resolves credentials and checks that the container exists and is reachable. */
  async ready(): Promise<void> {
    await this.container()
  }

  async close(): Promise<void> {
    this.closed = true
  }

  async get(key: string, range?: { offset: number; length: number }): Promise<Buffer> {
    const blob = await this.blob(key)
    if (range !== undefined && range.length <= 0) {
      if ((await this.head(key)) === undefined) throw new TierfsError('NOT_FOUND', `${this.options.name}: get ${key}: no such object`)
      return Buffer.alloc(0)
    }
    try {
      const res = await blob.download(range?.offset ?? 0, range?.length)
      return await readBody(res.readableStreamBody, res.contentLength ?? 0)
    } catch (err) {
      // 416: the range starts at or past the end; the contract clips it to nothing.
      if ((err as { statusCode?: number }).statusCode === 416) return Buffer.alloc(0)
      throw this.fail(err, 'get', key)
    }
  }

  async put(key: string, source: { file: string } | { data: Buffer }): Promise<void> {
    const blob = (await this.blob(key)).getBlockBlobClient()
    const upload = { blockSize: this.options.blockSize ?? 8 * MiB, concurrency: this.options.uploadConcurrency ?? 4, tier: this.options.accessTier ?? 'Hot' }
    try {
      await uploadBlocks(blob, source, upload)
    } catch (err) {
      throw this.fail(err, 'put', key)
    }
  }

  async head(key: string): Promise<ObjectInfo | undefined> {
    const blob = await this.blob(key)
    try {
      const p = await blob.getProperties()
      return { key, size: p.contentLength ?? 0 }
    } catch (err) {
      const e = this.fail(err, 'head', key)
      if (e.code === 'NOT_FOUND') return undefined
      throw e
    }
  }

  async delete(key: string): Promise<void> {
    const blob = await this.blob(key)
    try {
      await blob.deleteIfExists({ deleteSnapshots: 'include' })
    } catch (err) {
      throw this.fail(err, 'delete', key)
    }
  }

  async *list(prefix: string): AsyncIterable<ObjectInfo> {
    const container = await this.container()
    const pages = container.listBlobsFlat({ prefix: this.prefix + prefix }).byPage({ maxPageSize: 1000 })
    try {
      for await (const page of pages) {
        for (const b of page.segment.blobItems) {
          if (b.name.startsWith(this.prefix)) yield { key: b.name.slice(this.prefix.length), size: b.properties.contentLength ?? 0 }
        }
      }
    } catch (err) {
      throw this.fail(err, 'list', prefix)
    }
  }

  async warmth(key: string): Promise<Warmth> {
    const blob = await this.blob(key)
    try {
      return warmthOf(await blob.getProperties())
    } catch (err) {
      throw this.fail(err, 'warmth', key)
    }
  }

  async warmup(key: string): Promise<void> {
    if ((await this.warmth(key)) !== 'cold') return
    const blob = await this.blob(key)
    try {
      await blob.setAccessTier(this.options.rehydrateTo ?? 'Hot', { rehydratePriority: this.options.rehydratePriority ?? 'Standard' })
    } catch (err) {
      const e = this.fail(err, 'warmup', key)
      // Another caller started the rehydration between our look and our request: join it.
      if (e.code === 'AGAIN') return
      throw e
    }
  }

  async space(): Promise<undefined> {
    return undefined
  }

  localPath(_key: string): undefined {
    return undefined
  }

  /** Validates the key before anything goes on the wire. */
  private async blob(key: string): Promise<BlobClient> {
    const name = this.prefix + checkKey(key)
    return (await this.container()).getBlobClient(name)
  }

  private fail(err: unknown, op: string, key?: string): TierfsError {
    return mapAzureError(err, { target: this.options.name, container: this.options.container, op, ...(key === undefined ? {} : { key }) })
  }

  private container(): Promise<ContainerClient> {
    if (this.closed) return Promise.reject(new TierfsError('CLOSED', `${this.options.name}: tier is closed`))
    this.opening ??= this.open().catch((err: unknown) => {
      this.opening = undefined
      throw err
    })
    return this.opening
  }

  private async open(): Promise<ContainerClient> {
    const { name, endpoint, container: containerName } = this.options
    const credential = await resolveAzureCredential(name, this.from.env, this.from.loadIdentity)
    let service: BlobServiceClient
    try {
      // One attempt per request: retrying is RetryTier's job, guided by `detail.transient`.
      service = new BlobServiceClient(endpoint, credential, { retryOptions: { maxTries: 1 } })
    } catch (err) {
      throw new TierfsError('CONFIG', `target ${name}: endpoint ${JSON.stringify(endpoint)} is not a valid account URL`, { cause: err })
    }
    const container = service.getContainerClient(containerName)
    try {
      await container.getProperties()
    } catch (err) {
      // A HEAD has no body: should a service omit the x-ms-error-code header, a 404 here still
      // means the container is missing.
      if ((err as { statusCode?: number }).statusCode === 404 && azureErrorCode(err) === undefined) {
        throw new TierfsError('IO', `${name}: open: container ${containerName} of target ${name} does not exist`, { cause: err })
      }
      throw this.fail(err, 'open')
    }
    return container
  }
}

/**
 * Warmth from blob properties: a pending rehydration ('rehydrate-pending-to-hot/cool/cold') is
 * 'warming', the Archive tier 'cold', any other tier 'warm'.
 */
export function warmthOf(p: { accessTier?: string; archiveStatus?: string }): Warmth {
  if (p.archiveStatus?.startsWith('rehydrate-pending-') === true) return 'warming'
  return p.accessTier === 'Archive' ? 'cold' : 'warm'
}

/** Reads a download body of known length into one buffer (the caller asked for exactly it). */
async function readBody(body: NodeJS.ReadableStream | undefined, length: number): Promise<Buffer> {
  const out = Buffer.allocUnsafe(length)
  if (body === undefined) return out.subarray(0, 0)
  let done = 0
  for await (const chunk of body as AsyncIterable<Buffer>) {
    if (done + chunk.length > length) throw new Error(`download longer than its Content-Length ${length}`)
    chunk.copy(out, done)
    done += chunk.length
  }
  if (done !== length) throw Object.assign(new Error(`download ended after ${done} of ${length} bytes`), { code: 'ECONNRESET' })
  return out
}
