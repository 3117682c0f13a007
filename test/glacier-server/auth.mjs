// Authentication checks AWS makes before looking at a Glacier request: the SigV4 Authorization
// header (present, well formed, scoped to glacier in this region on the x-amz-date day), the date
// (within 15 minutes), the API version header, and, when the server knows the secret key, the
// signature itself.
import { createHash, createHmac, timingSafeEqual } from 'node:crypto'
import { GlacierError, badSignature, missing } from './glacier-error.mjs'

const AUTH_RE = /^AWS4-HMAC-SHA256 Credential=([^/,\s]+)\/(\d{8})\/([a-z0-9-]+)\/([a-z0-9-]+)\/aws4_request, ?SignedHeaders=([a-z0-9;-]+), ?Signature=([0-9a-f]{64})$/
const DATE_RE = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/
const MAX_SKEW_MS = 15 * 60 * 1000
const EMPTY_SHA256 = createHash('sha256').digest('hex')

/**
 * Checks a request's authentication. `keys` is { accessKeyId, secretAccessKey } or undefined
 * (then only the shape is checked). Throws GlacierError; returns the access key id.
 */
export function checkAuth(req, { region, keys, now = Date.now() }) {
  const auth = req.headers.authorization
  if (auth === undefined) throw new GlacierError(400, 'MissingAuthenticationTokenException', 'Missing Authentication Token')
  const m = AUTH_RE.exec(auth)
  if (m === null) throw new GlacierError(400, 'IncompleteSignatureException', 'Authorization header is not a well-formed AWS4-HMAC-SHA256 signature')
  const [, accessKeyId, scopeDate, scopeRegion, scopeService, signedHeaders, signature] = m
  const amzDate = req.headers['x-amz-date']
  if (amzDate === undefined) throw missing('Missing required header x-amz-date')
  const d = DATE_RE.exec(amzDate)
  if (d === null) throw badSignature(`x-amz-date ${amzDate} is not an ISO 8601 basic date`)
  const when = Date.UTC(+d[1], +d[2] - 1, +d[3], +d[4], +d[5], +d[6])
  if (Math.abs(now - when) > MAX_SKEW_MS) throw badSignature(`Signature expired: ${amzDate} is more than 15 minutes from the server time`)
  if (scopeDate !== amzDate.slice(0, 8)) throw badSignature(`Credential scope date ${scopeDate} does not match x-amz-date ${amzDate}`)
  if (scopeService !== 'glacier') throw badSignature(`Credential should be scoped to correct service: 'glacier', not '${scopeService}'`)
  if (scopeRegion !== region) throw badSignature(`Credential should be scoped to a valid region, not '${scopeRegion}' (this endpoint is ${region})`)
  const signed = signedHeaders.split(';')
  if (!signed.includes('host') || !signed.includes('x-amz-date')) throw badSignature('SignedHeaders must include host and x-amz-date')
  for (const h of signed) if (req.headers[h] === undefined) throw badSignature(`Signed header ${h} is missing from the request`)
  if (req.headers['x-amz-glacier-version'] !== '2012-06-01') throw missing('Required header x-amz-glacier-version: 2012-06-01 is missing or wrong')
  if (keys === undefined) return accessKeyId
  if (accessKeyId !== keys.accessKeyId) throw new GlacierError(403, 'UnrecognizedClientException', 'The security token included in the request is invalid.')
  const payloadHash = req.headers['x-amz-content-sha256'] ?? EMPTY_SHA256
  const canonical = [req.method, canonicalPath(req.url), canonicalQuery(req.url), ...signed.map((h) => `${h}:${canonicalValue(req.headers[h])}`), '', signedHeaders, payloadHash].join('\n')
  const scope = `${scopeDate}/${scopeRegion}/${scopeService}/aws4_request`
  const toSign = ['AWS4-HMAC-SHA256', amzDate, scope, createHash('sha256').update(canonical).digest('hex')].join('\n')
  let key = Buffer.from(`AWS4${keys.secretAccessKey}`)
  for (const part of [scopeDate, scopeRegion, scopeService, 'aws4_request']) key = createHmac('sha256', key).update(part).digest()
  const expected = createHmac('sha256', key).update(toSign).digest()
  if (!timingSafeEqual(expected, Buffer.from(signature, 'hex'))) {
    throw badSignature('The request signature we calculated does not match the signature you provided.')
  }
  return accessKeyId
}

const escapeUri = (s) => encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`)

function canonicalPath(url) {
  const path = url.split('?')[0]
  const segs = []
  for (const s of path.split('/')) {
    if (s === '' || s === '.') continue
    if (s === '..') segs.pop()
    else segs.push(s)
  }
  const normal = `/${segs.join('/')}${segs.length > 0 && path.endsWith('/') ? '/' : ''}`
  return escapeUri(normal).replace(/%2F/g, '/')
}

function canonicalQuery(url) {
  const q = url.includes('?') ? url.slice(url.indexOf('?') + 1) : ''
  if (q === '') return ''
  return q.split('&').filter((p) => p !== '').map((p) => {
    const eq = p.indexOf('=')
    const k = decodeURIComponent(eq < 0 ? p : p.slice(0, eq))
    const v = eq < 0 ? '' : decodeURIComponent(p.slice(eq + 1))
    return [escapeUri(k), escapeUri(v)]
  }).sort((a, b) => (a[0] === b[0] ? (a[1] < b[1] ? -1 : 1) : a[0] < b[0] ? -1 : 1)).map(([k, v]) => `${k}=${v}`).join('&')
}

const canonicalValue = (v) => String(v).replace(/[\r\n]/g, ' ').replace(/[ \t]+/g, ' ').replace(/^ | $/g, '')
