// HTTP front of the Glacier test server: routes the REST paths the SDK uses to GlacierService,
// after the authentication checks; injects faults; answers the admin endpoints under /__admin/.
import { createServer } from 'node:http'
import { pipeline } from 'node:stream/promises'
import { checkAuth } from './auth.mjs'
import { checkContentSha256, receiveSmall } from './body.mjs'
import { GlacierError, sendError } from './glacier-error.mjs'
import { GlacierService } from './service.mjs'

const ROUTES = [
  ['PUT', /^\/([^/]+)\/vaults\/([^/]+)$/, 'CreateVault'],
  ['GET', /^\/([^/]+)\/vaults\/([^/]+)$/, 'DescribeVault'],
  ['POST', /^\/([^/]+)\/vaults\/([^/]+)\/archives$/, 'UploadArchive'],
  ['DELETE', /^\/([^/]+)\/vaults\/([^/]+)\/archives\/([^/]+)$/, 'DeleteArchive'],
  ['POST', /^\/([^/]+)\/vaults\/([^/]+)\/multipart-uploads$/, 'InitiateMultipartUpload'],
  ['GET', /^\/([^/]+)\/vaults\/([^/]+)\/multipart-uploads$/, 'ListMultipartUploads'],
  ['PUT', /^\/([^/]+)\/vaults\/([^/]+)\/multipart-uploads\/([^/]+)$/, 'UploadMultipartPart'],
  ['POST', /^\/([^/]+)\/vaults\/([^/]+)\/multipart-uploads\/([^/]+)$/, 'CompleteMultipartUpload'],
  ['DELETE', /^\/([^/]+)\/vaults\/([^/]+)\/multipart-uploads\/([^/]+)$/, 'AbortMultipartUpload'],
  ['POST', /^\/([^/]+)\/vaults\/([^/]+)\/jobs$/, 'InitiateJob'],
  ['GET', /^\/([^/]+)\/vaults\/([^/]+)\/jobs\/([^/]+)$/, 'DescribeJob'],
  ['GET', /^\/([^/]+)\/vaults\/([^/]+)\/jobs\/([^/]+)\/output$/, 'GetJobOutput'],
]

const STREAMED = new Set(['UploadArchive', 'UploadMultipartPart', 'InitiateJob'])

/**
 * @param {{ dir: string, region: string, accountId: string, jobDelayMs: number,
 *   keys?: { accessKeyId: string, secretAccessKey: string }, vaults?: string[] }} opts
 */
export async function startGlacierServer(opts, port = 0) {
  const service = new GlacierService(opts)
  await service.init()
  for (const v of opts.vaults ?? []) service.createVault(v)
  const counts = {}
  let faults = { count: 0, status: 503, code: 'ServiceUnavailableException', op: undefined }

  const server = createServer((req, res) => {
    handle(req, res).catch((err) => {
      req.resume()
      sendError(res, err)
    })
  })

  async function handle(req, res) {
    const path = decodeURI(req.url.split('?')[0])
    if (path.startsWith('/__admin/')) return admin(req, res, path)
    const route = ROUTES.find(([method, re]) => method === req.method && re.test(path))
    if (route === undefined) throw new GlacierError(400, 'BadRequest', `${req.method} ${path} is not an operation this test server implements`)
    const [, re, op] = route
    const [, account, vault, id] = re.exec(path)
    counts[op] = (counts[op] ?? 0) + 1
    if (faults.count > 0 && (faults.op === undefined || faults.op === op)) {
      faults.count--
      throw new GlacierError(faults.status, faults.code, `injected fault (${faults.count} left)`)
    }
    checkAuth(req, { region: opts.region, keys: opts.keys })
    if (account !== '-' && account !== opts.accountId) throw new GlacierError(403, 'AccessDeniedException', `Access denied: account ${account} does not match the credentials' account`)
    if (!STREAMED.has(op)) checkContentSha256(req, (await receiveSmall(req)).sha256, false)
    const out = await dispatch(op, req, vault, id)
    res.writeHead(out.status, { 'x-amzn-requestid': `req-${counts[op]}`, ...(out.json === undefined ? {} : { 'content-type': 'application/json' }), ...out.headers })
    if (out.stream !== undefined) await pipeline(out.stream(), res)
    else res.end(out.json === undefined ? undefined : JSON.stringify(out.json))
  }

  function dispatch(op, req, vault, id) {
    switch (op) {
      case 'CreateVault': return service.createVault(vault)
      case 'DescribeVault': return service.describeVault(vault)
      case 'UploadArchive': return service.uploadArchive(req, vault)
      case 'DeleteArchive': return service.deleteArchive(vault, id)
      case 'InitiateMultipartUpload': return service.initiateUpload(req, vault)
      case 'ListMultipartUploads': return service.listUploads(vault)
      case 'UploadMultipartPart': return service.uploadPart(req, vault, id)
      case 'CompleteMultipartUpload': return service.completeUpload(req, vault, id)
      case 'AbortMultipartUpload': return service.abortUpload(vault, id)
      case 'InitiateJob': return service.initiateJob(req, vault)
      case 'DescribeJob': return service.describeJob(vault, id)
      case 'GetJobOutput': return service.jobOutput(req, vault, id)
    }
  }

  // Admin endpoints (unauthenticated, loopback test use only):
  //   POST /__admin/faults  {"count":N,"status":503,"code":"ServiceUnavailableException","op":"UploadMultipartPart"}
  //   POST /__admin/config  {"jobDelayMs":N,"inventoryLagMs":N,"completionMemoryMs":N} (each optional)
  //   GET  /__admin/stats   -> {"requests":{op:count},"vaults":{name:{archives,uploads,jobs}}}
  async function admin(req, res, path) {
    const { text } = await receiveSmall(req)
    const body = text === '' ? {} : JSON.parse(text)
    if (req.method === 'POST' && path === '/__admin/faults') {
      faults = { count: body.count ?? 1, status: body.status ?? 503, code: body.code ?? 'ServiceUnavailableException', op: body.op }
    } else if (req.method === 'POST' && path === '/__admin/config') {
      for (const k of ['jobDelayMs', 'inventoryLagMs', 'completionMemoryMs']) if (typeof body[k] === 'number') service[k] = body[k]
    } else if (!(req.method === 'GET' && path === '/__admin/stats')) {
      throw new GlacierError(404, 'ResourceNotFoundException', `no admin endpoint ${req.method} ${path}`)
    }
    const json = JSON.stringify({ requests: counts, faultsLeft: faults.count, jobDelayMs: service.jobDelayMs, inventoryLagMs: service.inventoryLagMs, completionMemoryMs: service.completionMemoryMs, ...service.stats() })
    res.writeHead(200, { 'content-type': 'application/json' })
    res.end(json)
  }

  await new Promise((resolve, reject) => {
    server.once('error', reject)
    server.listen(port, '127.0.0.1', resolve)
  })
  return server
}
