// The Glacier operations the tier uses, with the checks AWS makes. State (vaults, archive
// metadata with leaf hashes, uploads, jobs) is in memory; bytes are files under `dir`.
import { randomBytes } from 'node:crypto'
import { once } from 'node:events'
import { createReadStream, createWriteStream } from 'node:fs'
import { link, mkdir, rename, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { GlacierError, invalid, missing, notFound } from './glacier-error.mjs'
import { inventoryAt, inventoryCsv, inventoryDate, inventoryJson } from './inventory.mjs'
import { checkContentSha256, checkTreeHash, receiveSmall, receiveToFile } from './body.mjs'
import { MiB, rootOf } from './tree-hash.mjs'

const MAX_ARCHIVE = 40_000 * 1024 * MiB
const MAX_SINGLE = 4096 * MiB
const TIERS = new Set(['Expedited', 'Standard', 'Bulk'])
const newId = (bytes, chars) => randomBytes(bytes).toString('base64url').slice(0, chars)
const iso = (ms) => new Date(ms).toISOString()

/** [start, end] of an archive of `size` bytes: its tree hash is a node of the archive's tree. */
function treeHashAligned(start, end, size) {
  for (let span = MiB; ; span *= 2) {
    if (start % span !== 0) return false
    if (end + 1 === Math.min(start + span, size)) return true
    if (start + span >= size) return false
  }
}

/** GetJobOutput returns a tree hash for archive ranges on MiB boundaries (or up to the end). */
const mibAligned = (start, end, size) => start % MiB === 0 && ((end + 1) % MiB === 0 || end + 1 === size)
const rangeRoot = (leaves, start, end) => rootOf(leaves.slice(start / MiB, Math.ceil((end + 1) / MiB))).toString('hex')

/** x-amz-archive-description: optional, at most 1,024 printable ASCII characters. */
function descriptionOf(req) {
  const d = req.headers['x-amz-archive-description']
  if (d === undefined) return ''
  if (d.length > 1024 || !/^[\x20-\x7e]*$/.test(d)) throw invalid('Invalid archive description: at most 1024 printable ASCII characters')
  return d
}

export class GlacierService {
  /**
   * @param {{ dir: string, region: string, accountId: string, jobDelayMs: number, inventoryLagMs?: number, completionMemoryMs?: number }} opts
   * inventoryLagMs: the age of the vault's latest inventory (default 0); completionMemoryMs: how
   * long a completed multipart upload can be completed again for the same archive id (default 1 h).
   */
  constructor(opts) {
    this.dir = opts.dir
    this.region = opts.region
    this.accountId = opts.accountId
    this.jobDelayMs = opts.jobDelayMs
    this.inventoryLagMs = opts.inventoryLagMs ?? 0
    this.completionMemoryMs = opts.completionMemoryMs ?? 3600_000
    this.vaults = new Map()
    this.seq = 0
  }

  async init() {
    for (const d of ['archives', 'uploads', 'jobs', 'incoming']) await mkdir(join(this.dir, d), { recursive: true })
  }

  arn(vault) {
    return `arn:aws:glacier:${this.region}:${this.accountId}:vaults/${vault}`
  }

  vault(name) {
    const v = this.vaults.get(name)
    if (v === undefined) throw notFound(`Vault not found for ARN: ${this.arn(name)}`)
    return v
  }

  incoming() {
    return join(this.dir, 'incoming', `${process.pid}-${++this.seq}`)
  }

  createVault(name) {
    if (!/^[A-Za-z0-9_.-]{1,255}$/.test(name)) throw invalid(`Invalid vault name: ${name}`)
    if (!this.vaults.has(name)) this.vaults.set(name, { name, created: Date.now(), archives: new Map(), gone: [], uploads: new Map(), completed: new Map(), jobs: new Map() })
    return { status: 201, headers: { location: `/${this.accountId}/vaults/${name}` } }
  }

  describeVault(name) {
    const v = this.vault(name)
    let size = 0
    for (const a of v.archives.values()) size += a.size
    const inventory = inventoryDate(v, this.inventoryLagMs)
    return { status: 200, json: { CreationDate: iso(v.created), LastInventoryDate: inventory === null ? null : iso(inventory), NumberOfArchives: v.archives.size, SizeInBytes: size, VaultARN: this.arn(name), VaultName: name } }
  }

  async uploadArchive(req, name) {
    const v = this.vault(name)
    const description = descriptionOf(req)
    const tmp = this.incoming()
    try {
      const body = await receiveToFile(req, tmp)
      checkContentSha256(req, body.sha256, true)
      if (body.size === 0) throw invalid('Invalid Content-Length: 0 (an archive holds at least one byte)')
      if (body.size > MAX_SINGLE) throw invalid(`Archive of ${body.size} bytes is larger than a single upload allows; use a multipart upload`)
      checkTreeHash(req, body.treeHash)
      return this.#commitArchive(v, tmp, body.size, body.leaves, description)
    } finally {
      await rm(tmp, { force: true })
    }
  }

  async #commitArchive(v, file, size, leaves, description) {
    const id = newId(104, 138)
    const path = join(this.dir, 'archives', id)
    await rename(file, path)
    const treeHash = rootOf(leaves).toString('hex')
    v.archives.set(id, { id, path, size, leaves, treeHash, description, created: Date.now() })
    return this.#created(v, id, treeHash)
  }

  #created(v, id, treeHash) {
    return { status: 201, headers: { location: `/${this.accountId}/vaults/${v.name}/archives/${id}`, 'x-amz-archive-id': id, 'x-amz-sha256-tree-hash': treeHash } }
  }

  async deleteArchive(name, id) {
    const v = this.vault(name)
    const a = v.archives.get(id)
    if (a === undefined) throw notFound(`Archive not found for ARN: ${this.arn(name)}/archives/${id}`)
    v.archives.delete(id)
    // Inventories taken before the deletion still list it.
    v.gone.push({ id, description: a.description, created: a.created, size: a.size, treeHash: a.treeHash, deleted: Date.now() })
    await rm(a.path, { force: true })
    return { status: 204 }
  }

  initiateUpload(req, name) {
    const v = this.vault(name)
    const raw = req.headers['x-amz-part-size']
    if (raw === undefined) throw missing('Missing required header x-amz-part-size')
    const partSize = Number(raw)
    const mib = partSize / MiB
    if (!/^\d+$/.test(raw) || !Number.isInteger(mib) || mib < 1 || mib > 4096 || (mib & (mib - 1)) !== 0) {
      throw invalid(`Invalid part size: ${raw}. Part size must be a power of two megabytes between 1 MB and 4 GB`)
    }
    const description = descriptionOf(req)
    const id = newId(69, 92)
    v.uploads.set(id, { id, partSize, parts: new Map(), created: Date.now(), description })
    return { status: 201, headers: { location: `/${this.accountId}/vaults/${name}/multipart-uploads/${id}`, 'x-amz-multipart-upload-id': id } }
  }

  upload(v, id) {
    const u = v.uploads.get(id)
    if (u === undefined) throw notFound(`Multipart upload not found: ${id}`)
    return u
  }

  async uploadPart(req, name, id) {
    const u = this.upload(this.vault(name), id)
    const range = req.headers['content-range']
    if (range === undefined) throw missing('Missing required header Content-Range')
    const m = /^bytes (\d+)-(\d+)\/\*$/.exec(range)
    if (m === null) throw invalid(`Invalid Content-Range: ${range} (expected "bytes first-last/*")`)
    const start = Number(m[1])
    const end = Number(m[2])
    if (end < start) throw invalid(`Invalid Content-Range: ${range}`)
    if (start % u.partSize !== 0) throw invalid(`Content-Range ${range} does not start on a multiple of the part size ${u.partSize}`)
    if (end - start + 1 > u.partSize) throw invalid(`Content-Range ${range} is larger than the part size ${u.partSize}`)
    const dir = join(this.dir, 'uploads', id)
    await mkdir(dir, { recursive: true })
    const tmp = this.incoming()
    try {
      const body = await receiveToFile(req, tmp)
      checkContentSha256(req, body.sha256, true)
      if (body.size !== end - start + 1) throw invalid(`Content-Range ${range} declares ${end - start + 1} bytes, the payload has ${body.size}`)
      checkTreeHash(req, body.treeHash)
      if (!u.aborted) {
        const path = join(dir, String(start))
        await rename(tmp, path)
        u.parts.set(start, { start, end, path, leaves: body.leaves })
      }
      return { status: 204, headers: { 'x-amz-sha256-tree-hash': body.treeHash } }
    } finally {
      await rm(tmp, { force: true })
    }
  }

  /**
   * Completing is idempotent for a while (AWS: "if you call the operation again within a short
   * period, the operation will succeed and return the same archive ID"): a completed upload id
   * with the same size and tree hash is answered with the same archive, whether or not that
   * archive has been deleted since; after `completionMemoryMs` the upload id is unknown.
   */
  async completeUpload(req, name, id) {
    const v = this.vault(name)
    const rawSize = req.headers['x-amz-archive-size']
    if (rawSize === undefined) throw missing('Missing required header x-amz-archive-size')
    const declaredTree = req.headers['x-amz-sha256-tree-hash']
    if (declaredTree === undefined) throw missing('Missing required header x-amz-sha256-tree-hash')
    const size = Number(rawSize)
    if (!/^\d+$/.test(rawSize) || size < 1 || size > MAX_ARCHIVE) throw invalid(`Invalid archive size: ${rawSize}`)
    const done = v.completed.get(id)
    if (done !== undefined && Date.now() - done.at < this.completionMemoryMs) {
      if (done.size !== size) throw invalid(`The archive size ${size} does not match the uploaded parts, which cover ${done.size} bytes`)
      if (done.treeHash !== declaredTree) throw invalid(`Checksum mismatch: x-amz-sha256-tree-hash is ${declaredTree}, the tree hash of the uploaded parts is ${done.treeHash}`)
      return this.#created(v, done.archiveId, done.treeHash)
    }
    const u = this.upload(v, id)
    const parts = [...u.parts.values()].sort((a, b) => a.start - b.start)
    let next = 0
    for (const [i, p] of parts.entries()) {
      if (p.start !== next) throw invalid(`The uploaded parts are not contiguous: expected a part at byte ${next}, found one at ${p.start}`)
      if (i < parts.length - 1 && p.end - p.start + 1 !== u.partSize) throw invalid(`Part at byte ${p.start} is smaller than the part size ${u.partSize} and is not the last part`)
      next = p.end + 1
    }
    if (next !== size) throw invalid(`The archive size ${size} does not match the uploaded parts, which cover ${next} bytes`)
    const leaves = parts.flatMap((p) => p.leaves)
    const actual = rootOf(leaves).toString('hex')
    if (declaredTree !== actual) throw invalid(`Checksum mismatch: x-amz-sha256-tree-hash is ${declaredTree}, the tree hash of the uploaded parts is ${actual}`)
    const tmp = this.incoming()
    const out = createWriteStream(tmp)
    try {
      for (const p of parts) {
        for await (const chunk of createReadStream(p.path)) if (!out.write(chunk)) await once(out, 'drain')
      }
    } finally {
      await new Promise((resolve, reject) => out.end((err) => (err ? reject(err) : resolve())))
    }
    v.uploads.delete(id)
    await rm(join(this.dir, 'uploads', id), { recursive: true, force: true })
    const created = await this.#commitArchive(v, tmp, size, leaves, u.description)
    v.completed.set(id, { archiveId: created.headers['x-amz-archive-id'], size, treeHash: actual, at: Date.now() })
    return created
  }

  async abortUpload(name, id) {
    const v = this.vault(name)
    const u = this.upload(v, id)
    u.aborted = true
    v.uploads.delete(id)
    await rm(join(this.dir, 'uploads', id), { recursive: true, force: true })
    return { status: 204 }
  }

  listUploads(name) {
    const v = this.vault(name)
    const list = [...v.uploads.values()].map((u) => ({ ArchiveDescription: u.description, CreationDate: iso(u.created), MultipartUploadId: u.id, PartSizeInBytes: u.partSize, VaultARN: this.arn(name) }))
    return { status: 200, json: { Marker: null, UploadsList: list } }
  }

  async initiateJob(req, name) {
    const v = this.vault(name)
    const { text, sha256 } = await receiveSmall(req)
    checkContentSha256(req, sha256, false)
    let p
    try {
      p = JSON.parse(text)
    } catch {
      throw new GlacierError(400, 'SerializationException', 'The job parameters are not well-formed JSON')
    }
    if (p?.Type === 'inventory-retrieval') return this.#initiateInventory(v, p)
    if (p?.Type !== 'archive-retrieval') throw invalid(`Invalid job type: ${p?.Type} (this test server runs archive-retrieval and inventory-retrieval jobs)`)
    if (typeof p.ArchiveId !== 'string') throw missing('Missing required parameter ArchiveId')
    const a = v.archives.get(p.ArchiveId)
    if (a === undefined) throw notFound(`Archive not found for ARN: ${this.arn(name)}/archives/${p.ArchiveId}`)
    const tier = p.Tier ?? 'Standard'
    if (!TIERS.has(tier)) throw invalid(`Invalid tier: ${tier}`)
    let start = 0
    let end = a.size - 1
    if (p.RetrievalByteRange !== undefined && p.RetrievalByteRange !== null) {
      const m = /^(\d+)-(\d+)$/.exec(String(p.RetrievalByteRange))
      if (m === null) throw invalid(`Invalid RetrievalByteRange: ${p.RetrievalByteRange}`)
      start = Number(m[1])
      end = Number(m[2])
      if (start > end || end >= a.size) throw invalid(`RetrievalByteRange ${p.RetrievalByteRange} is outside the archive of ${a.size} bytes`)
      if (start % MiB !== 0 || ((end + 1) % MiB !== 0 && end + 1 !== a.size)) {
        throw invalid(`RetrievalByteRange ${p.RetrievalByteRange} is not megabyte aligned: the start must be a multiple of 1 MB and the end plus one a multiple of 1 MB or the archive size`)
      }
    }
    const id = newId(69, 92)
    // A hard link keeps the job's bytes even if the archive is deleted meanwhile, as Glacier's
    // staged output does.
    const path = join(this.dir, 'jobs', id)
    await link(a.path, path)
    const now = Date.now()
    v.jobs.set(id, { id, archive: a, path, start, end, tier, created: now, readyAt: now + this.jobDelayMs, description: p.Description ?? null })
    return { status: 202, headers: { location: `/${this.accountId}/vaults/${name}/jobs/${id}`, 'x-amz-job-id': id } }
  }

  /**
   * An inventory-retrieval job returns the vault's latest inventory (see inventory.mjs) as it is
   * when the job is initiated, in CSV or JSON (the default); it completes after the job delay.
   */
  async #initiateInventory(v, p) {
    if (p.ArchiveId !== undefined && p.ArchiveId !== null) throw invalid('ArchiveId is not allowed for an inventory-retrieval job')
    if (p.RetrievalByteRange !== undefined && p.RetrievalByteRange !== null) throw invalid('RetrievalByteRange is not allowed for an inventory-retrieval job')
    const format = p.Format ?? 'JSON'
    if (format !== 'CSV' && format !== 'JSON') throw invalid(`Invalid format: ${format}. Valid values are: CSV, JSON`)
    const date = inventoryDate(v, this.inventoryLagMs)
    // What AWS answers before a vault's first inventory is not documented; this is a guess.
    if (date === null) throw notFound(`Inventory not found for vault ARN: ${this.arn(v.name)}`)
    const list = inventoryAt(v, date)
    const text = format === 'CSV' ? inventoryCsv(list) : inventoryJson(this.arn(v.name), date, list)
    const id = newId(69, 92)
    const path = join(this.dir, 'jobs', id)
    await writeFile(path, text)
    const now = Date.now()
    v.jobs.set(id, {
      id, inventory: { format, date, size: Buffer.byteLength(text) }, path, start: 0, end: Buffer.byteLength(text) - 1,
      created: now, readyAt: now + this.jobDelayMs, description: p.Description ?? null,
    })
    return { status: 202, headers: { location: `/${this.accountId}/vaults/${v.name}/jobs/${id}`, 'x-amz-job-id': id } }
  }

  job(v, id) {
    const j = v.jobs.get(id)
    if (j === undefined) throw notFound(`The job ID was not found: ${id}`)
    return j
  }

  describeJob(name, id) {
    const v = this.vault(name)
    const j = this.job(v, id)
    const done = Date.now() >= j.readyAt
    if (j.inventory !== undefined) {
      return {
        status: 200,
        json: {
          Action: 'InventoryRetrieval', ArchiveId: null, ArchiveSHA256TreeHash: null, ArchiveSizeInBytes: null,
          Completed: done, CompletionDate: done ? iso(j.readyAt) : null, CreationDate: iso(j.created), InventorySizeInBytes: done ? j.inventory.size : null,
          InventoryRetrievalParameters: { EndDate: null, Format: j.inventory.format, Limit: null, Marker: null, StartDate: null },
          JobDescription: j.description, JobId: j.id, RetrievalByteRange: null, SHA256TreeHash: null,
          SNSTopic: null, StatusCode: done ? 'Succeeded' : 'InProgress', StatusMessage: done ? 'Succeeded' : null, Tier: null, VaultARN: this.arn(name),
        },
      }
    }
    const whole = j.start === 0 && j.end === j.archive.size - 1
    const aligned = treeHashAligned(j.start, j.end, j.archive.size)
    return {
      status: 200,
      json: {
        Action: 'ArchiveRetrieval', ArchiveId: j.archive.id, ArchiveSHA256TreeHash: j.archive.treeHash, ArchiveSizeInBytes: j.archive.size,
        Completed: done, CompletionDate: done ? iso(j.readyAt) : null, CreationDate: iso(j.created), InventorySizeInBytes: null,
        JobDescription: j.description, JobId: j.id, RetrievalByteRange: `${j.start}-${j.end}`,
        SHA256TreeHash: aligned && (done || !whole) ? rangeRoot(j.archive.leaves, j.start, j.end) : null,
        SNSTopic: null, StatusCode: done ? 'Succeeded' : 'InProgress', StatusMessage: done ? 'Succeeded' : null, Tier: j.tier, VaultARN: this.arn(name),
      },
    }
  }

  jobOutput(req, name, id) {
    const v = this.vault(name)
    const j = this.job(v, id)
    if (Date.now() < j.readyAt) throw invalid(`The job is not currently available for download: ${id}`)
    const total = j.end - j.start + 1
    let first = 0
    let last = total - 1
    const range = req.headers.range
    if (range !== undefined) {
      const m = /^bytes=(\d+)-(\d*)$/.exec(range)
      if (m === null) throw invalid(`Invalid Range: ${range}`)
      first = Number(m[1])
      last = m[2] === '' ? total - 1 : Math.min(Number(m[2]), total - 1)
      if (first > last || first >= total) throw invalid(`Range ${range} is not satisfiable for output of ${total} bytes`)
    }
    if (j.inventory !== undefined) {
      // No tree hash for inventory output: AWS returns one for archive retrievals only.
      const headers = { 'content-type': j.inventory.format === 'CSV' ? 'text/csv' : 'application/json', 'accept-ranges': 'bytes', 'content-length': String(last - first + 1) }
      if (range !== undefined) headers['content-range'] = `bytes ${first}-${last}/${total}`
      return { status: range === undefined ? 200 : 206, headers, stream: () => createReadStream(j.path, { start: first, end: last }) }
    }
    const aStart = j.start + first
    const aEnd = j.start + last
    const headers = { 'content-type': 'application/octet-stream', 'accept-ranges': 'bytes', 'content-length': String(last - first + 1), 'x-amz-archive-description': j.archive.description }
    if (mibAligned(aStart, aEnd, j.archive.size)) headers['x-amz-sha256-tree-hash'] = rangeRoot(j.archive.leaves, aStart, aEnd)
    if (range !== undefined) headers['content-range'] = `bytes ${first}-${last}/${total}`
    return { status: range === undefined ? 200 : 206, headers, stream: () => createReadStream(j.path, { start: aStart, end: aEnd }) }
  }

  stats() {
    const out = { vaults: {} }
    for (const v of this.vaults.values()) out.vaults[v.name] = { archives: v.archives.size, uploads: v.uploads.size, jobs: v.jobs.size }
    return out
  }
}
