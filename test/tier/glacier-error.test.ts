import t from 'tap'
import { mapGlacierError } from '../../src/tier/glacier-error.js'

const ctx = { target: 'glacier-archive', vault: 'v', op: 'put', key: 'packs/aa.pack' }

/** An error shaped as @aws-sdk/client-glacier throws them: name = service code, $metadata.httpStatusCode. */
function sdkError(name: string, status: number, message: string): Error {
  return Object.assign(new Error(message), { name, $metadata: { httpStatusCode: status } })
}

t.test('access denied and missing credentials name the target and carry nothing of the request', async (t) => {
  const echo = 'The security token included in the request is invalid. AKIAECHOEDKEYID00000 String-to-sign: AWS4-HMAC-SHA256 secret0sig'
  for (const err of [
    sdkError('UnrecognizedClientException', 403, echo),
    sdkError('InvalidSignatureException', 403, echo),
    sdkError('AccessDeniedException', 403, echo),
    Object.assign(new Error(`Could not load credentials: ${echo}`), { name: 'CredentialsProviderError' }),
  ]) {
    const mapped = mapGlacierError(err, ctx)
    t.equal(mapped.code, 'IO', err.name)
    t.match(mapped.message, /glacier-archive/, 'names the target')
    t.equal(mapped.cause, undefined, 'the raw error is not kept (the log writes causes out)')
    t.notMatch(JSON.stringify({ m: mapped.message, d: mapped.detail, s: mapped.stack }), /AKIAECHOEDKEYID|String-to-sign|secret0sig/, 'nothing of the request')
  }
})

t.test('other service errors keep the raw error as cause; 5xx are transient', async (t) => {
  const err = sdkError('ServiceUnavailableException', 503, 'try later')
  const mapped = mapGlacierError(err, ctx)
  t.equal(mapped.cause, err)
  t.equal(mapped.detail?.transient, true)
})
