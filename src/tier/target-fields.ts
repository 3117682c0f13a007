import { TierfsError } from '../errors.js'

/** Keys that would carry secrets: refused with a pointer to the SDKs' credential chains. */
const SECRET_KEYS = /^(accessKeyId|secretAccessKey|sessionToken|credentials?|accountKey|sasToken|connectionString|password|secret|token)$/i

/**
 * Reads one `targets.<name>` object field by field, with messages that name the field
 * (`targets.s3-primary.bucket is required`). `done()` refuses keys nobody read, so a typo never
 * silently falls back to a default. Values are never echoed: they might be secrets pasted in
 * the wrong place.
 */
export class TargetFields {
  // parseTarget dispatches on `type` before a variant reads the rest; `name` is the parsed
  // form's own copy of the key (tierfs init writes parsed targets out), checked here.
  private readonly read = new Set<string>(['type', 'name'])

  constructor(readonly name: string, private readonly raw: Record<string, unknown>) {
    if (raw.name !== undefined && raw.name !== name) this.fail('name', `must be the target's key (${JSON.stringify(name)}) when given`)
  }

  at(key: string): string {
    return `targets.${this.name}.${key}`
  }

  fail(key: string, what: string): never {
    throw new TierfsError('CONFIG', `${this.at(key)} ${what}`)
  }

  private get(key: string): unknown {
    this.read.add(key)
    return this.raw[key]
  }

  /** `allowEmpty`: '' is a value (a parsed target's empty prefix must read back as it was written). */
  optionalString(key: string, opts: { allowEmpty?: boolean } = {}): string | undefined {
    const v = this.get(key)
    if (v === undefined) return undefined
    if (typeof v !== 'string' || (v === '' && opts.allowEmpty !== true)) this.fail(key, opts.allowEmpty === true ? 'must be a string' : 'must be a non-empty string')
    return v
  }

  string(key: string): string {
    const v = this.optionalString(key)
    if (v === undefined) this.fail(key, 'is required')
    return v
  }

  number(key: string, def: number, range: { min: number; max: number; integer?: boolean }): number {
    const v = this.get(key)
    if (v === undefined) return def
    if (typeof v !== 'number' || !Number.isFinite(v) || v < range.min || v > range.max || (range.integer === true && !Number.isInteger(v))) {
      this.fail(key, `must be ${range.integer === true ? 'an integer' : 'a number'} from ${range.min} to ${range.max}`)
    }
    return v
  }

  boolean(key: string, def: boolean): boolean {
    const v = this.get(key)
    if (v === undefined) return def
    if (typeof v !== 'boolean') this.fail(key, 'must be true or false')
    return v
  }

  oneOf<T extends string>(key: string, values: readonly T[], def: T): T {
    const v = this.get(key)
    if (v === undefined) return def
    if (typeof v !== 'string' || !(values as readonly string[]).includes(v)) this.fail(key, `must be one of ${values.join(', ')}`)
    return v as T
  }

  /** Refuses unread keys; keys that look like credentials get a message about where those belong. */
  done(credentialHint: string): void {
    for (const key of Object.keys(this.raw)) {
      if (this.read.has(key)) continue
      if (SECRET_KEYS.test(key)) this.fail(key, `is not allowed: credentials never go in tierfs configuration (${credentialHint})`)
      this.fail(key, 'is not a known setting')
    }
  }
}
