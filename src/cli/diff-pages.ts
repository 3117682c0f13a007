import type { DiffEntry } from '../backup/diff.js'
import type { DiffPage } from '../backup/backup-service.js'
import { callMount } from './daemon-client.js'

/**
 * Streams a diff from the daemon page by page (the daemon answers one bounded page per request).
 * After the first page, both points are fixed to what they resolved to (a `latest` that moves
 * during the listing does not change it). `onPoints` sees the resolved points once.
 */
export async function* diffEntries(
  mountpoint: string, from: string, to: string,
  opts: { path?: string; rootOf?: string; onPoints?: (page: DiffPage) => void } = {},
): AsyncGenerator<DiffEntry> {
  let a = from
  let b = to
  let after: string | undefined
  let first = true
  for (;;) {
    const args: Record<string, unknown> = { from: a, to: b }
    if (opts.path !== undefined) args.path = opts.path
    if (opts.rootOf !== undefined) args.rootOf = opts.rootOf
    if (after !== undefined) args.after = after
    const page = await callMount<DiffPage>(mountpoint, 'diff', args)
    if (first) {
      opts.onPoints?.(page)
      first = false
    }
    a = page.from
    b = page.to
    yield* page.entries
    if (page.next === undefined) return
    after = page.next
  }
}
