import { TierfsError } from '../errors.js'

export interface ParsedArgs {
  positional: string[]
  flags: Set<string>
  values: Map<string, string[]>
}

/**
 * Parses `argv` against the flags a command accepts: `bool` flags take no value, `valued` ones
 * take the next argument (repeatable). Unknown flags are refused with CONFIG.
 */
export function parseArgs(argv: string[], spec: { bool?: string[]; valued?: string[] }): ParsedArgs {
  const out: ParsedArgs = { positional: [], flags: new Set(), values: new Map() }
  const bool = new Set(spec.bool ?? [])
  const valued = new Set(spec.valued ?? [])
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] as string
    if (a.startsWith('-') && a !== '-') {
      const [name, inline] = a.includes('=') ? [a.slice(0, a.indexOf('=')), a.slice(a.indexOf('=') + 1)] : [a, undefined]
      if (bool.has(name)) out.flags.add(name)
      else if (valued.has(name)) {
        const v = inline ?? argv[++i]
        if (v === undefined) throw new TierfsError('CONFIG', `${name} needs a value`)
        out.values.set(name, [...(out.values.get(name) ?? []), v])
      } else throw new TierfsError('CONFIG', `unknown option ${name}`)
    } else out.positional.push(a)
  }
  return out
}

export function need(args: ParsedArgs, n: number, usage: string): string[] {
  if (args.positional.length !== n) throw new TierfsError('CONFIG', `usage: ${usage}`)
  return args.positional
}
