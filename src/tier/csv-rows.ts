import { TierfsError } from '../errors.js'

/**
 * Streams the rows of RFC 4180 CSV text arriving in chunks (UTF-8 bytes or strings): fields are
 * separated by commas; a quoted field ("...") may hold commas, line breaks and doubled quotes
 * (""); rows end at LF or CRLF; a last row without a line break counts; empty lines are skipped.
 * Memory is one row: a row longer than `maxRowChars` fails (CORRUPT), so a damaged stream cannot
 * grow it without bound.
 */
export async function* csvRows(chunks: AsyncIterable<Uint8Array | string>, maxRowChars = 1 << 20): AsyncGenerator<string[]> {
  const decoder = new TextDecoder('utf-8')
  let row: string[] = []
  let field = ''
  let rowChars = 0
  let quoted = false
  /** Inside a quoted field, a quote was just seen: either the closing one or the first of "". */
  let quoteSeen = false
  /** Outside quotes, a CR was just seen: a row break if LF follows, else a character. */
  let cr = false
  /** Anything seen since the last row ended (so an empty line yields no row). */
  let started = false
  const endRow = (): string[] | undefined => {
    const done = started ? [...row, field] : undefined
    row = []
    field = ''
    rowChars = 0
    started = false
    return done
  }
  for await (const chunk of chunks) {
    const text = typeof chunk === 'string' ? chunk : decoder.decode(chunk, { stream: true })
    for (const c of text) {
      if (++rowChars > maxRowChars) throw new TierfsError('CORRUPT', `CSV row longer than ${maxRowChars} characters`)
      if (quoted) {
        if (!quoteSeen) {
          if (c === '"') quoteSeen = true
          else field += c
          continue
        }
        quoteSeen = false
        if (c === '"') {
          field += '"'
          continue
        }
        quoted = false
      }
      if (cr && c !== '\n') field += '\r'
      cr = false
      if (c === '\r') {
        cr = true
        started = true
      } else if (c === '\n') {
        const done = endRow()
        if (done !== undefined) yield done
      } else if (c === ',') {
        row.push(field)
        field = ''
        started = true
      } else if (c === '"' && field === '') {
        quoted = true
        started = true
      } else {
        field += c
        started = true
      }
    }
  }
  field += decoder.decode()
  if (quoted && !quoteSeen) throw new TierfsError('CORRUPT', 'CSV ends inside a quoted field')
  const done = endRow()
  if (done !== undefined) yield done
}
