const SIZE_RE = /^\s*(\d+(?:\.\d+)?)\s*(B|KB|MB|GB|TB|KiB|MiB|GiB|TiB|K|M|G|T)?\s*$/i
const SIZE_UNITS: Record<string, number> = {
  b: 1, k: 1024, kb: 1000, kib: 1024, m: 1024 ** 2, mb: 1000 ** 2, mib: 1024 ** 2,
  g: 1024 ** 3, gb: 1000 ** 3, gib: 1024 ** 3, t: 1024 ** 4, tb: 1000 ** 4, tib: 1024 ** 4,
}

/** "10MiB", "1.5 GB", "4096" -> bytes; undefined when not a size. */
export function parseSize(text: string): number | undefined {
  const m = SIZE_RE.exec(text)
  if (m === null) return undefined
  return Math.floor(Number(m[1]) * (SIZE_UNITS[(m[2] ?? 'b').toLowerCase()] ?? NaN)) || (Number(m[1]) === 0 ? 0 : undefined)
}

const DURATION_RE = /^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d|w|y)\s*$/
const DURATION_MS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 7 * 86_400_000, y: 365 * 86_400_000 }

/** "90d", "12h", "2w" -> milliseconds; undefined when not a duration. */
export function parseDuration(text: string): number | undefined {
  const m = DURATION_RE.exec(text)
  if (m === null) return undefined
  return Number(m[1]) * (DURATION_MS[m[2] as string] as number)
}
