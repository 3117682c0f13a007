import { mkdir, readdir } from 'node:fs/promises'
import { Level } from 'level'
import { TierfsError } from '../errors.js'
import { SPACE } from './keys.js'
import type { RootDb } from './space.js'

/** Rows per write batch, and bytes: bounds memory whatever the rows. */
const BATCH_ROWS = 4096
const BATCH_BYTES = 4 * 1024 * 1024

const PREFIXES = Object.values(SPACE).map((name) => Buffer.from(`!${name}!`, 'latin1'))

/**
 * Writes raw rows, as `MetaDump.rows()` yields them (keys with their space prefix), into a new
 * metadata database at `path`, which must not exist or be empty. The result opens as a
 * LevelMeta holding exactly those rows. Refuses (CORRUPT) a key outside the known spaces, or
 * keys not in strictly ascending order; the last batch is synced. Returns the number of rows.
 */
export async function loadRows(path: string, rows: AsyncIterable<[key: Buffer, value: Buffer]>): Promise<number> {
  await mkdir(path, { recursive: true })
  if ((await readdir(path)).length > 0) throw new TierfsError('STORE', `${path} is not empty: metadata is only loaded into a new database`)
  const db: RootDb = new Level<Buffer, Buffer>(path, { keyEncoding: 'buffer', valueEncoding: 'buffer' })
  try {
    await db.open()
  } catch (err) {
    throw new TierfsError('STORE', `cannot create metadata store ${path}: ${(err as Error).message}`, { cause: err })
  }
  let count = 0
  try {
    let batch: Array<{ type: 'put'; key: Buffer; value: Buffer }> = []
    let bytes = 0
    let last: Buffer | undefined
    for await (const [key, value] of rows) {
      if (!PREFIXES.some((p) => key.length > p.length && key.subarray(0, p.length).equals(p))) {
        throw TierfsError.corrupt(`metadata row with a key outside the known spaces (${key.subarray(0, 24).toString('hex')})`)
      }
      if (last !== undefined && Buffer.compare(last, key) >= 0) throw TierfsError.corrupt('metadata rows out of order')
      last = key
      batch.push({ type: 'put', key, value })
      bytes += key.length + value.length
      count++
      if (batch.length >= BATCH_ROWS || bytes >= BATCH_BYTES) {
        await db.batch(batch)
        batch = []
        bytes = 0
      }
    }
    await db.batch(batch, { sync: true })
  } catch (err) {
    if (err instanceof TierfsError) throw err
    throw TierfsError.io(`loading metadata into ${path}: ${(err as Error).message}`, err)
  } finally {
    await db.close()
  }
  return count
}
