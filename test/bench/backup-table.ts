/**
 * The table of the backup benchmark (test/bench/backup.bench.ts): one row per measurement, a
 * column per tool (tierfs, restic, borg, and native for the plain `cp -a` restores are measured
 * against), tierfs's ratio to each, and the target the issue sets, met or MISSED.
 */
import { fmt, median } from './report-table.js'

const MiB = 1024 * 1024

export type Who = 'tierfs' | 'restic' | 'borg' | 'native'
export const COLUMNS: readonly Who[] = ['tierfs', 'restic', 'borg', 'native']

/**
 * seconds and bytes: less is better; bytesMore: bytes freed, more is better; rate: `unit` per
 * second, more is better.
 */
export type Kind = 'seconds' | 'bytes' | 'bytesMore' | 'rate'

/**
 * A target on the row's medians (tierfs's and the others'); `met` answers undefined when a figure
 * is missing. `info`: shown on a secondary row but not counted (the main row carries it).
 */
export interface Target { text: string; met: (m: (who: Who) => number | undefined) => boolean | undefined; info?: boolean }

export interface Row {
  test: string
  kind: Kind
  /** For 'rate' rows: what is counted per second. */
  unit?: string
  runs: Partial<Record<Who, number[]>>
  cpu?: Partial<Record<Who, number[]>>
  /** Bytes rows: growth over the step, shown after the size. */
  growth?: Partial<Record<Who, number[]>>
  /** Cells shown as text instead of figures (the ratios still use `runs`). */
  text?: Partial<Record<Who, string>>
  target?: Target
}

export function push(row: Row, who: Who, x: number, cpuS?: number): void {
  ;(row.runs[who] ??= []).push(x)
  if (cpuS !== undefined) ((row.cpu ??= {})[who] ??= []).push(cpuS)
}

export function pushGrowth(row: Row, who: Who, x: number): void {
  ;((row.growth ??= {})[who] ??= []).push(x)
}

/** MiB from 1 MiB up, then KiB, then bytes. */
export function bytesText(x: number): string {
  const a = Math.abs(x)
  if (a >= MiB) return `${fmt(x / MiB)} MiB`
  if (a >= 1024) return `${fmt(x / 1024)} KiB`
  return `${Math.round(x)} B`
}

/** Seconds from 1 s up, whole milliseconds below (tenths under 10 ms). */
export function secondsText(x: number): string {
  if (Math.abs(x) >= 1 || x === 0) return `${fmt(x)} s`
  const ms = x * 1000
  return `${Math.abs(ms) >= 10 ? Math.round(ms) : ms.toFixed(1)} ms`
}

function valueText(row: Row, x: number): string {
  if (row.kind === 'seconds') return secondsText(x)
  if (row.kind === 'rate') return `${fmt(x)} ${row.unit ?? '/s'}`
  return bytesText(x)
}

export function cell(row: Row, who: Who): string {
  const text = row.text?.[who]
  if (text !== undefined) return text
  const xs = row.runs[who] ?? []
  const m = median(xs)
  if (m === undefined) return '—'
  const v = (x: number): string => valueText(row, x)
  const cpu = median(row.cpu?.[who] ?? [])
  const cpuText = cpu === undefined ? '' : ` · ${cpu.toFixed(1)} cpu-s`
  const grow = median(row.growth?.[who] ?? [])
  const growText = grow === undefined ? '' : ` (${grow >= 0 ? '+' : ''}${bytesText(grow)})`
  const lo = v(Math.min(...xs))
  const hi = v(Math.max(...xs))
  // The range without its unit when both ends have the median's unit; none when min = max.
  const unit = (t: string): string => t.replace(/^[-\d.,]+ /, '')
  const range = lo === hi ? '' : unit(lo) === unit(v(m)) && unit(hi) === unit(v(m)) ? ` (${lo.split(' ')[0]}–${hi.split(' ')[0]})` : ` (${lo}–${hi})`
  return v(m) + range + growText + cpuText
}

/** Median of a column's runs. */
export function med(row: Row, who: Who): number | undefined {
  return median(row.runs[who] ?? [])
}

/**
 * tierfs relative to `other`, > 1 in tierfs's favour: seconds and bytes stored, other ÷ tierfs
 * (faster, smaller); bytes freed and rates, tierfs ÷ other.
 */
export function ratio(row: Row, other: Who): string {
  const t = med(row, 'tierfs')
  const o = med(row, other)
  if (t === undefined || o === undefined) return '—'
  // Bytes freed: both next to nothing is no comparison.
  if (row.kind === 'bytesMore' && Math.max(t, o) < MiB) return '— (both < 1 MiB)'
  const r = row.kind === 'bytesMore' || row.kind === 'rate' ? t / o : o / t
  if (!Number.isFinite(r) || Number.isNaN(r)) return '—'
  return `${r >= 10 ? fmt(r) : r.toFixed(2)}x`
}

/** true: met, false: missed, undefined: no target or no figures. */
export function verdict(row: Row): boolean | undefined {
  return row.target?.met((who) => med(row, who))
}

function targetCell(row: Row): string {
  if (row.target === undefined) return '—'
  const v = verdict(row)
  const mark = v === undefined ? ' (no figures)' : v ? ' **met**' : ' **MISSED**'
  return row.target.info === true ? `(info) ${row.target.text}${mark.replace(/\*\*/g, '')}` : `${row.target.text}${mark}`
}

export function markdownTable(rows: readonly Row[]): string {
  return [
    '| measurement | tierfs | restic | borg | native | tierfs/restic | tierfs/borg | tierfs/native | target |',
    '|---|---|---|---|---|---|---|---|---|',
    ...rows.map((r) => `| ${r.test} | ${COLUMNS.map((w) => cell(r, w)).join(' | ')} | ${ratio(r, 'restic')} | ${ratio(r, 'borg')} | ${ratio(r, 'native')} | ${targetCell(r)} |`),
  ].join('\n')
}

/** The targets line under the table. */
export function targetsLine(rows: readonly Row[]): string {
  const withTarget = rows.filter((r) => r.target !== undefined && r.target.info !== true)
  const missed = withTarget.filter((r) => verdict(r) === false).map((r) => r.test.split(' (')[0])
  const unknown = withTarget.filter((r) => verdict(r) === undefined).length
  const tail = unknown > 0 ? ` ${unknown} without figures.` : ''
  return missed.length > 0
    ? `Targets missed: ${missed.length} of ${withTarget.length} (${missed.join('; ')}).${tail}`
    : `All ${withTarget.length - unknown} targets with figures met.${tail}`
}

/** tierfs's median at most `factor` times each named column's (seconds, bytes: less is better). */
export function atMost(text: string, ...of: Array<[Who, number]>): Target {
  return {
    text,
    met: (m) => {
      const t = m('tierfs')
      const others = of.map(([who, f]) => [m(who), f] as const)
      if (t === undefined || others.some(([o]) => o === undefined)) return undefined
      return others.every(([o, f]) => t <= (o as number) * f)
    },
  }
}

/** tierfs's median against a fixed bound: below `max` or at least `min`. */
export function bound(text: string, b: { max?: number; min?: number }): Target {
  return {
    text,
    met: (m) => {
      const t = m('tierfs')
      if (t === undefined) return undefined
      return (b.max === undefined || t < b.max) && (b.min === undefined || t >= b.min)
    },
  }
}
