import { TierfsError } from './errors.js'

export type Level = 'debug' | 'info' | 'warn' | 'error'

/**
 * Structured logging: one JSON object per line. Fields must never contain credentials.
 * Errors passed as `err` are flattened to { code, message, cause }.
 */
export interface Logger {
  debug(msg: string, fields?: Record<string, unknown>): void
  info(msg: string, fields?: Record<string, unknown>): void
  warn(msg: string, fields?: Record<string, unknown>): void
  error(msg: string, fields?: Record<string, unknown>): void
}

const ORDER: Record<Level, number> = { debug: 10, info: 20, warn: 30, error: 40 }

/** A logger writing JSON lines to `write` (a file stream, stderr, ...). */
export function jsonLogger(write: (line: string) => void, min: Level = 'info'): Logger {
  const emit = (level: Level, msg: string, fields?: Record<string, unknown>): void => {
    if (ORDER[level] < ORDER[min]) return
    const rec: Record<string, unknown> = { time: new Date().toISOString(), level, msg }
    if (fields !== undefined) {
      for (const [k, v] of Object.entries(fields)) rec[k] = k === 'err' ? flattenError(v) : v
    }
    write(JSON.stringify(rec, (_k, v) => (typeof v === 'bigint' ? v.toString() : v)) + '\n')
  }
  return {
    debug: (m, f) => emit('debug', m, f),
    info: (m, f) => emit('info', m, f),
    warn: (m, f) => emit('warn', m, f),
    error: (m, f) => emit('error', m, f),
  }
}

export const silentLogger: Logger = { debug() {}, info() {}, warn() {}, error() {} }

export function flattenError(err: unknown): unknown {
  if (err instanceof TierfsError) {
    return { code: err.code, message: err.message, detail: err.detail, cause: err.cause instanceof Error ? err.cause.message : undefined }
  }
  if (err instanceof Error) return { message: err.message, stack: err.stack?.split('\n').slice(0, 4).join(' | ') }
  return String(err)
}
