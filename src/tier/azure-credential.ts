import type { TokenCredential } from '@azure/core-auth'
import { StorageSharedKeyCredential } from '@azure/storage-blob'
import { TierfsError } from '../errors.js'

/** A credential BlobServiceClient accepts (@azure/core-auth comes with @azure/storage-blob). */
export type AzureCredential = StorageSharedKeyCredential | TokenCredential

/** Loads `@azure/identity`'s DefaultAzureCredential when that package is importable. */
export type IdentityLoader = () => Promise<AzureCredential | undefined>

// A variable specifier keeps TypeScript (and bundlers) from requiring the package: tierfs does
// not depend on @azure/identity; it is used only where the operator has installed it.
const IDENTITY_PACKAGE = '@azure/identity'

export const loadDefaultAzureCredential: IdentityLoader = async () => {
  let mod: { DefaultAzureCredential?: new () => AzureCredential }
  try {
    mod = (await import(IDENTITY_PACKAGE)) as typeof mod
  } catch {
    return undefined
  }
  return mod.DefaultAzureCredential === undefined ? undefined : new mod.DefaultAzureCredential()
}

/**
 * Resolves the credential for an Azure target from the standard environment, in this order:
 * 1. `AZURE_STORAGE_CONNECTION_STRING` (its AccountName and AccountKey; the endpoint still comes
 *    from the target, so one connection string can serve an emulator or any account URL);
 * 2. `AZURE_STORAGE_ACCOUNT` + `AZURE_STORAGE_KEY`;
 * 3. DefaultAzureCredential, only if `@azure/identity` is installed.
 * SAS tokens are not accepted yet. Fails with TierfsError CONFIG naming the target and the
 * variables to set; no message ever contains a key or a connection string.
 */
export async function resolveAzureCredential(
  target: string,
  env: NodeJS.ProcessEnv = process.env,
  loadIdentity: IdentityLoader = loadDefaultAzureCredential,
): Promise<AzureCredential> {
  const cs = env['AZURE_STORAGE_CONNECTION_STRING']
  if (cs !== undefined && cs !== '') {
    const parts = parseConnectionString(cs)
    const name = parts.get('accountname')
    const key = parts.get('accountkey')
    if (name === undefined || key === undefined) {
      throw new TierfsError('CONFIG', `target ${target}: AZURE_STORAGE_CONNECTION_STRING must contain AccountName and AccountKey (SAS connection strings are not supported)`)
    }
    return sharedKey(target, name, key, 'AZURE_STORAGE_CONNECTION_STRING')
  }
  const name = env['AZURE_STORAGE_ACCOUNT']
  const key = env['AZURE_STORAGE_KEY']
  if (name !== undefined && name !== '' && key !== undefined && key !== '') {
    return sharedKey(target, name, key, 'AZURE_STORAGE_KEY')
  }
  const identity = await loadIdentity()
  if (identity !== undefined) return identity
  throw new TierfsError('CONFIG', `target ${target}: no Azure credentials: set AZURE_STORAGE_CONNECTION_STRING, or AZURE_STORAGE_ACCOUNT and AZURE_STORAGE_KEY`)
}

function sharedKey(target: string, name: string, key: string, from: string): AzureCredential {
  // The SDK decodes the key as base64 only when signing; an undecodable key would surface
  // later as a confusing signature mismatch, so it is refused here.
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(key)) {
    throw new TierfsError('CONFIG', `target ${target}: the account key from ${from} is not base64`)
  }
  return new StorageSharedKeyCredential(name, key)
}

/** `Key=Value;Key=Value` with case-insensitive keys; values may contain '='. */
function parseConnectionString(cs: string): Map<string, string> {
  const out = new Map<string, string>()
  for (const part of cs.split(';')) {
    const eq = part.indexOf('=')
    if (eq > 0) out.set(part.slice(0, eq).trim().toLowerCase(), part.slice(eq + 1).trim())
  }
  return out
}
