import { readdir, readFile, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { TierfsError } from '../errors.js'
import { PolicySet } from './decide.js'
import { parsePolicyFile, PolicyError, type Policy } from './policy-file.js'

interface FileState {
  mtimeMs: number
  size: number
  /** The last version of this file that parsed; kept while a newer one is broken. */
  good: Policy[] | undefined
  error: PolicyError | TierfsError | undefined
}

export interface LoadReport {
  /** Files whose current text is broken (their last good version, if any, stays in force). */
  errors: Array<{ file: string; message: string }>
  changed: boolean
}

/**
 * The policies directory (`*.yaml`, `*.yml`, in name order). `reload()` re-reads changed files;
 * a file that no longer parses keeps its last good version in force and is reported, so a typo
 * never drops a running policy. Duplicate policy names across files are errors of the later file.
 */
export class PolicyDir {
  private readonly files = new Map<string, FileState>()
  private current = new PolicySet([])

  constructor(readonly dir: string) {}

  get set(): PolicySet {
    return this.current
  }

  async reload(): Promise<LoadReport> {
    let names: string[]
    try {
      names = (await readdir(this.dir)).filter((n) => /\.ya?ml$/.test(n)).sort()
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw TierfsError.from(err, `policies ${this.dir}`)
      names = []
    }
    let changed = false
    for (const gone of [...this.files.keys()].filter((f) => !names.includes(f))) {
      this.files.delete(gone)
      changed = true
    }
    for (const name of names) {
      const path = join(this.dir, name)
      const st = await stat(path).catch(() => undefined)
      if (st === undefined) continue
      const prev = this.files.get(name)
      if (prev !== undefined && prev.mtimeMs === st.mtimeMs && prev.size === st.size) continue
      changed = true
      try {
        const parsed = parsePolicyFile(await readFile(path, 'utf8'), path)
        this.files.set(name, { mtimeMs: st.mtimeMs, size: st.size, good: parsed, error: undefined })
      } catch (err) {
        const e = err instanceof TierfsError ? err : TierfsError.from(err, path)
        this.files.set(name, { mtimeMs: st.mtimeMs, size: st.size, good: prev?.good, error: e })
      }
    }
    const all: Policy[] = []
    const seen = new Map<string, string>()
    const errors: LoadReport['errors'] = []
    let order = 0
    for (const name of names) {
      const f = this.files.get(name)
      if (f === undefined) continue
      if (f.error !== undefined) errors.push({ file: join(this.dir, name), message: f.error.message })
      for (const p of f.good ?? []) {
        const first = seen.get(p.name)
        if (first !== undefined) {
          errors.push({ file: join(this.dir, name), message: `${p.origin}: policy name ${JSON.stringify(p.name)} is already used at ${first}` })
          continue
        }
        seen.set(p.name, p.origin)
        all.push({ ...p, order: order++ })
      }
    }
    if (changed) this.current = new PolicySet(all)
    return { errors, changed }
  }
}
