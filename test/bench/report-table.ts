import type { SubjectName } from './subjects.js'

/** One benchmark row: every run's figure per filesystem, and the target tierfs must meet. */
export interface Row {
  test: string
  unit: 'MiB/s' | 'IOPS' | 'files/s' | 's' | 'MiB'
  higherIsBetter: boolean
  runs: Partial<Record<SubjectName, number[]>>
  /** tierfs's speed relative to `of` must be at least `min` (speed ratio: 1 = as fast). */
  target?: { min: number; of: 'passthrough' | 'native' }
  /** CPU seconds the serving daemon used in each run (tierfs, passthrough): robust to a busy machine. */
  cpu?: Partial<Record<SubjectName, number[]>>
  /** Cells given as text instead of figures (dedup, memory). */
  text?: Partial<Record<SubjectName, string>>
  targetText?: string
}

export function median(xs: readonly number[]): number | undefined {
  if (xs.length === 0) return undefined
  const s = [...xs].sort((a, b) => a - b)
  const mid = s.length >> 1
  return s.length % 2 === 1 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2
}

/** A figure with 3 or so significant digits (thousands separated). */
export function fmt(x: number): string {
  if (Math.abs(x) >= 100) return Math.round(x).toLocaleString('en-US')
  if (Math.abs(x) >= 10) return x.toFixed(1)
  if (Math.abs(x) >= 1) return x.toFixed(2)
  if (x === 0) return '0'
  return x.toPrecision(2)
}

function cell(row: Row, who: SubjectName): string {
  const text = row.text?.[who]
  if (text !== undefined) return text
  const xs = row.runs[who] ?? []
  const m = median(xs)
  if (m === undefined) return '—'
  const lo = Math.min(...xs)
  const hi = Math.max(...xs)
  const cpu = median(row.cpu?.[who] ?? [])
  const daemon = cpu === undefined ? '' : ` · daemon ${cpu.toFixed(2)} cpu-s`
  return (xs.length > 1 ? `${fmt(m)} ${row.unit} (${fmt(lo)}–${fmt(hi)})` : `${fmt(m)} ${row.unit}`) + daemon
}

/** tierfs's speed relative to `other`: > 1 is faster, whatever the unit. */
export function speedRatio(row: Row, other: SubjectName): number | undefined {
  const t = median(row.runs.tierfs ?? [])
  const o = median(row.runs[other] ?? [])
  if (t === undefined || o === undefined || t === 0 || o === 0) return undefined
  return row.higherIsBetter ? t / o : o / t
}

function targetCell(row: Row): string {
  if (row.targetText !== undefined) return row.targetText
  if (row.target === undefined) return '—'
  const r = speedRatio(row, row.target.of)
  const verdict = r === undefined ? '' : r >= row.target.min ? ' **met**' : ' **MISSED**'
  return `≥ ${row.target.min}x ${row.target.of}${verdict}`
}

/** The one markdown table of a run. Ratios are speed ratios, so a ratio ≥ the target passes. */
export function markdownTable(rows: readonly Row[]): string {
  const ratio = (row: Row, of: SubjectName): string => {
    const r = speedRatio(row, of)
    return r === undefined ? '—' : `${r.toFixed(2)}x`
  }
  const lines = [
    '| test | native | passthrough | tierfs | tierfs/passthrough | tierfs/native | target |',
    '|---|---|---|---|---|---|---|',
    ...rows.map((r) => `| ${r.test} | ${cell(r, 'native')} | ${cell(r, 'passthrough')} | ${cell(r, 'tierfs')} | ${ratio(r, 'passthrough')} | ${ratio(r, 'native')} | ${targetCell(r)} |`),
  ]
  return lines.join('\n')
}
