// Glacier's error shape: JSON { code, message, type } with the documented HTTP status.
import { randomUUID } from 'node:crypto'

export class GlacierError extends Error {
  constructor(status, code, message, type = status >= 500 ? 'Server' : 'Client') {
    super(message)
    this.status = status
    this.code = code
    this.type = type
  }
}

export const invalid = (message) => new GlacierError(400, 'InvalidParameterValueException', message)
export const missing = (message) => new GlacierError(400, 'MissingParameterValueException', message)
export const notFound = (message) => new GlacierError(404, 'ResourceNotFoundException', message)
export const badSignature = (message) => new GlacierError(403, 'InvalidSignatureException', message)

export function sendError(res, err) {
  const e = err instanceof GlacierError ? err : new GlacierError(500, 'ServiceUnavailableException', `internal error: ${err?.message ?? err}`)
  const body = JSON.stringify({ code: e.code, message: e.message, type: e.type })
  if (res.headersSent) {
    res.destroy()
    return
  }
  res.writeHead(e.status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(body),
    'x-amzn-requestid': randomUUID(),
  })
  res.end(body)
}
