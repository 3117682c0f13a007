import { randomBytes } from 'node:crypto'
import { KeyedLock } from './keyed-lock.js'
import { parseRecordList, saveRecordList, type RecordStore } from './record-store.js'

/**
 * One upload of a key to a Glacier vault that has not (yet) ended with its archive id in the
 * LocatorStore. Recorded before the upload's first request, so that after a crash or a failed
 * put the archive it may have made can be found and deleted (Glacier has no keys: an archive
 * whose id is lost is billed forever). Every upload carries the archive description
 * `tierfs:<key>`, which is what a vault inventory shows of it.
 */
export interface UploadAttempt {
  /** Random; several uploads of one key may be unresolved at once. */
  id: string
  /** When the attempt was recorded, before its first request (ms, this host's clock). */
  since: number
  /**
   * - 'archive': an archive may exist whose id nobody knows (a single UploadArchive, or a
   *   multipart upload whose completion can no longer be repeated): only an inventory finds it.
   * - 'multipart': InitiateMultipartUpload, parts, CompleteMultipartUpload. Phases: no
   *   `uploadId` (Initiate may have been sent: an upload may be open, no archive exists);
   *   `uploadId` (parts in flight: no archive exists); `size` + `treeHash` saved (Complete may
   *   have been sent: an archive may exist, and Complete repeated returns its id).
   */
  kind: 'archive' | 'multipart'
  uploadId?: string
  size?: number
  treeHash?: string
  /**
   * The archive's id when known: an upload that returned it but whose locator was not recorded,
   * or an archive being replaced (recorded before the locator moves, dropped once deleted).
   */
  archiveId?: string
  /** When the put that made this attempt failed: every request of it had ended by then. */
  endedAt?: number
}

/** True when only a vault inventory can tell whether the attempt made an archive. */
export const needsInventory = (a: UploadAttempt): boolean => a.kind === 'archive' && a.archiveId === undefined

/**
 * The attempts of every key, read and written through the store (no cache: intents are few
 * and short-lived), with one critical section per key for read-modify-write.
 */
export class IntentBook {
  private readonly lock = new KeyedLock()

  constructor(private readonly store: RecordStore) {}

  async attempts(key: string): Promise<UploadAttempt[]> {
    const raw = await this.store.get(key)
    return raw === undefined ? [] : parseRecordList<UploadAttempt>(raw, 'upload intent', key)
  }

  /** Records a new attempt, durably, before any request of its upload is sent. */
  async begin(key: string, kind: UploadAttempt['kind'], fields: Pick<UploadAttempt, 'archiveId'> = {}): Promise<UploadAttempt> {
    const attempt: UploadAttempt = { id: randomBytes(6).toString('hex'), since: Date.now(), kind, ...fields }
    await this.edit(key, (all) => [...all, attempt])
    return { ...attempt }
  }

  /** Replaces the attempt with `attempt.id` (a no-op when it is gone). */
  async update(key: string, attempt: UploadAttempt): Promise<void> {
    await this.edit(key, (all) => all.map((a) => (a.id === attempt.id ? { ...attempt } : a)))
  }

  async drop(key: string, id: string): Promise<void> {
    await this.edit(key, (all) => all.filter((a) => a.id !== id))
  }

  keys(): AsyncIterable<string> {
    return this.store.keys()
  }

  private edit(key: string, fn: (all: UploadAttempt[]) => UploadAttempt[]): Promise<void> {
    return this.lock.run(key, async () => {
      await saveRecordList(this.store, key, fn(await this.attempts(key)))
    })
  }
}
