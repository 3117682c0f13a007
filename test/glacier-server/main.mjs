#!/usr/bin/env node
// Glacier-protocol test server (no Glacier emulator exists). Run by tests as a child process:
//
//   node test/glacier-server/main.mjs [--port N] [--dir DIR] [--job-delay-ms MS] [--region R]
//                                     [--account-id ID] [--vault NAME]...
//
// Listens on 127.0.0.1 (port 0: a free one) and prints one line `{"port":N}` on stdout when ready.
// Environment fallbacks: GLACIER_JOB_DELAY_MS (default 1000), GLACIER_REGION (us-east-1).
// Signature check: when AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are set in the server's
// environment, only that key is accepted and every SigV4 signature is verified; otherwise only
// the shape of the Authorization header is checked. Archives live under --dir (default: a new
// temporary directory, removed on SIGTERM/SIGINT).
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { startGlacierServer } from './server.mjs'

const { values } = parseArgs({
  options: {
    port: { type: 'string', default: '0' },
    dir: { type: 'string' },
    'job-delay-ms': { type: 'string', default: process.env.GLACIER_JOB_DELAY_MS ?? '1000' },
    region: { type: 'string', default: process.env.GLACIER_REGION ?? 'us-east-1' },
    'account-id': { type: 'string', default: '111122223333' },
    vault: { type: 'string', multiple: true, default: [] },
  },
})

const owned = values.dir === undefined
const dir = values.dir ?? (await mkdtemp(join(tmpdir(), 'glacier-server-')))
const keys = process.env.AWS_ACCESS_KEY_ID && process.env.AWS_SECRET_ACCESS_KEY
  ? { accessKeyId: process.env.AWS_ACCESS_KEY_ID, secretAccessKey: process.env.AWS_SECRET_ACCESS_KEY }
  : undefined
const server = await startGlacierServer({
  dir,
  region: values.region,
  accountId: values['account-id'],
  jobDelayMs: Number(values['job-delay-ms']),
  keys,
  vaults: values.vault,
}, Number(values.port))

const stop = async () => {
  server.closeAllConnections()
  server.close()
  if (owned) await rm(dir, { recursive: true, force: true })
  process.exit(0)
}
process.on('SIGTERM', stop)
process.on('SIGINT', stop)
process.stdout.write(`${JSON.stringify({ port: server.address().port, verifiesSignatures: keys !== undefined })}\n`)
