import {
  AbortMultipartUploadCommand, CompleteMultipartUploadCommand, DeleteArchiveCommand, ListMultipartUploadsCommand, type GlacierClient,
} from '@aws-sdk/client-glacier'
import type { TierfsError } from '../errors.js'
import { isItemMissing } from './glacier-error.js'
import { needsInventory, type IntentBook, type UploadAttempt } from './glacier-intents.js'
import { archiveIdOf } from './glacier-upload.js'
import type { LocatorStore } from './tier.js'
import { isTransient } from './transient.js'

/** The archive description every upload of `key` carries; what a vault inventory shows of it. */
export const describeKey = (key: string): string => `tierfs:${key}`

/** What settling needs from the tier. */
export interface SettleContext {
  client: GlacierClient
  vault: string
  accountId: string
  intents: IntentBook
  locators: Pick<LocatorStore, 'get'>
  /** True while the put that made attempt `id` runs in this process: it is not settled here. */
  inFlight(id: string): boolean
  /** Maps a failure of operation `op` on `key` to a TierfsError naming the tier. */
  fail(err: unknown, op: string, key: string): TierfsError
}

/**
 * Resolves the unresolved uploads of `key` that can be resolved without a vault inventory, and
 * returns the attempts left: those that need one (see `needsInventory`), those still in flight,
 * and initiating ones that wait for an in-flight put of the key. Each attempt, by what was
 * recorded before its requests:
 * - archive id known: deleted unless it is the key's current locator;
 * - multipart with size and tree hash (Complete may have been sent): Complete is repeated with
 *   the same upload id, size and hash, which Glacier answers with the same archive id for a
 *   while after a success; that archive is deleted (unless it is the locator). If the upload is
 *   gone (expired, or completed too long ago) the attempt becomes one for the inventory; if
 *   Glacier refuses the completion (never completed), the upload is aborted;
 * - multipart with an upload id only (Complete never sent, so no archive): aborted;
 * - multipart without an upload id (Initiate may have been sent, nothing else): uploads whose
 *   description names the key are aborted (no other can be in flight: none of the key is).
 * Failures (transient ones, or access problems) leave the attempt for the next call.
 */
export async function settleKey(ctx: SettleContext, key: string): Promise<UploadAttempt[]> {
  const all = await ctx.intents.attempts(key)
  // Attempts with an upload id go first, so that the listing below finds only unrecorded uploads.
  const ordered = [...all].sort((a, b) => Number(a.kind === 'multipart' && a.uploadId === undefined) - Number(b.kind === 'multipart' && b.uploadId === undefined))
  const busy = all.some((a) => ctx.inFlight(a.id))
  const left: UploadAttempt[] = []
  for (const a of ordered) {
    if (ctx.inFlight(a.id) || (busy && a.kind === 'multipart' && a.uploadId === undefined)) left.push(a)
    else if (!(await settleAttempt(ctx, key, a))) left.push(a)
  }
  return left
}

/**
 * Settles one attempt (see `settleKey`), whether or not it is still recorded; returns true when
 * it is resolved (and dropped from the intents), false when it is kept, perhaps changed in place
 * and in the store (a completion too old to repeat becomes an inventory attempt).
 */
export async function settleAttempt(ctx: SettleContext, key: string, a: UploadAttempt): Promise<boolean> {
  if (a.archiveId !== undefined) {
    await deleteUnlessLocator(ctx, key, a.archiveId)
  } else if (a.kind === 'archive') {
    return false
  } else if (a.uploadId !== undefined && a.size !== undefined && a.treeHash !== undefined) {
    const outcome = await recomplete(ctx, key, a.uploadId, a.size, a.treeHash)
    if (outcome === 'gone') {
      a.kind = 'archive'
      delete a.uploadId
      delete a.size
      delete a.treeHash
      await ctx.intents.update(key, a)
      return false
    }
    if (outcome === 'refused') await abort(ctx, key, a.uploadId)
    else await deleteUnlessLocator(ctx, key, outcome.archiveId)
  } else if (a.uploadId !== undefined) {
    await abort(ctx, key, a.uploadId)
  } else {
    await abortUnrecorded(ctx, key)
  }
  await ctx.intents.drop(key, a.id)
  return true
}

/** True when some attempt of `key` needs an inventory and is not in flight. */
export const waitsForInventory = (ctx: Pick<SettleContext, 'inFlight'>, left: UploadAttempt[]): boolean =>
  left.some((a) => needsInventory(a) && !ctx.inFlight(a.id))

async function recomplete(ctx: SettleContext, key: string, uploadId: string, size: number, treeHash: string): Promise<{ archiveId: string } | 'gone' | 'refused'> {
  try {
    const out = await ctx.client.send(new CompleteMultipartUploadCommand({
      vaultName: ctx.vault, accountId: ctx.accountId, uploadId, archiveSize: String(size), checksum: treeHash,
    }))
    return { archiveId: archiveIdOf(out, treeHash, 'CompleteMultipartUpload') }
  } catch (err) {
    if (isItemMissing(err)) return 'gone'
    const mapped = ctx.fail(err, 'CompleteMultipartUpload', key)
    // Glacier names a refused completion InvalidParameterValueException (parts missing, hash
    // mismatch): the upload never completed. Anything else (access, transport) is retried later.
    if (!isTransient(mapped) && mapped.detail?.glacierCode === 'InvalidParameterValueException') return 'refused'
    throw mapped
  }
}

async function deleteUnlessLocator(ctx: SettleContext, key: string, archiveId: string): Promise<void> {
  if ((await ctx.locators.get(key))?.locator === archiveId) return
  try {
    await ctx.client.send(new DeleteArchiveCommand({ vaultName: ctx.vault, accountId: ctx.accountId, archiveId }))
  } catch (err) {
    if (!isItemMissing(err)) throw ctx.fail(err, 'DeleteArchive', key)
  }
}

async function abort(ctx: SettleContext, key: string, uploadId: string): Promise<void> {
  try {
    await ctx.client.send(new AbortMultipartUploadCommand({ vaultName: ctx.vault, accountId: ctx.accountId, uploadId }))
  } catch (err) {
    if (!isItemMissing(err)) throw ctx.fail(err, 'AbortMultipartUpload', key)
  }
}

/** Aborts every open multipart upload of the vault whose description names `key`. */
async function abortUnrecorded(ctx: SettleContext, key: string): Promise<void> {
  const description = describeKey(key)
  const found: string[] = []
  let marker: string | undefined
  do {
    let out
    try {
      out = await ctx.client.send(new ListMultipartUploadsCommand({ vaultName: ctx.vault, accountId: ctx.accountId, ...(marker === undefined ? {} : { marker }) }))
    } catch (err) {
      throw ctx.fail(err, 'ListMultipartUploads', key)
    }
    for (const u of out.UploadsList ?? []) if (u.ArchiveDescription === description && u.MultipartUploadId !== undefined) found.push(u.MultipartUploadId)
    marker = out.Marker ?? undefined
  } while (marker !== undefined && marker !== '')
  for (const id of found) await abort(ctx, key, id)
}
