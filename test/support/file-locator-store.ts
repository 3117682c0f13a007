import { randomBytes } from 'node:crypto'
import { readFile, rename, writeFile } from 'node:fs/promises'
import type { LocatorStore } from '../../src/tier/tier.js'
import { jsonLocators, type RecordStore } from '../../src/tier/record-store.js'

/**
 * A small JSON-file map of key -> value for tests: every change rewrites the file (write to a
 * temporary name, rename), so a second instance on the same file sees what the first stored,
 * as a restarted daemon would.
 */
class JsonFileMap<V> {
  private chain: Promise<unknown> = Promise.resolve()
  constructor(private readonly file: string) {}

  async read(): Promise<Record<string, V>> {
    try {
      return JSON.parse(await readFile(this.file, 'utf8')) as Record<string, V>
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return {}
      throw err
    }
  }

  /** Read-modify-write, one at a time within this instance. */
  update(fn: (m: Record<string, V>) => void): Promise<void> {
    const run = this.chain.then(async () => {
      const m = await this.read()
      fn(m)
      const tmp = `${this.file}.${randomBytes(4).toString('hex')}`
      await writeFile(tmp, JSON.stringify(m))
      await rename(tmp, this.file)
    })
    this.chain = run.catch(() => undefined)
    return run
  }
}

/** A LocatorStore on a JSON file (tests only; the daemon keeps locators with the pack records). */
export function fileLocators(file: string): LocatorStore {
  return jsonLocators(new FileRecordStore(file))
}

/** RecordStore on a JSON file (tests only): a Glacier tier's retrieval jobs or upload intents. */
export class FileRecordStore implements RecordStore {
  private readonly map: JsonFileMap<string>
  constructor(file: string) { this.map = new JsonFileMap(file) }
  async get(key: string): Promise<string | undefined> { return (await this.map.read())[key] }
  async set(key: string, record: string): Promise<void> { await this.map.update((m) => { m[key] = record }) }
  async delete(key: string): Promise<void> { await this.map.update((m) => { delete m[key] }) }
  async *keys(prefix = ''): AsyncIterable<string> { yield* Object.keys(await this.map.read()).filter((k) => k.startsWith(prefix)) }
}
