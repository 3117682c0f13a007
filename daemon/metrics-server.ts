import { createServer, type Server } from 'node:http'
import { Gauge, Registry } from 'prom-client'

/** Figures the daemon exposes, refreshed on every scrape. Keys follow `tierfs status --json`. */
export type FigureSource = () => Promise<Record<string, unknown>>

/**
 * A Prometheus endpoint on 127.0.0.1 (GET /metrics): the status figures as gauges, per-tier bytes
 * and objects, per-tier operation counters from the metrics wrapper, migrations and recalls.
 */
export async function serveMetrics(port: number, figures: FigureSource): Promise<Server> {
  const registry = new Registry()
  const g = (name: string, help: string, labelNames: string[] = []): Gauge => new Gauge({ name: `tierfs_${name}`, help, labelNames, registers: [registry] })
  const scalar: Array<[Gauge, string]> = [
    [g('files', 'regular files in the current namespace'), 'files'],
    [g('logical_bytes', 'sum of current file sizes'), 'logicalBytes'],
    [g('stored_bytes', 'bytes of pack files on all tiers'), 'storedBytes'],
    [g('live_bytes', 'stored bytes of referenced chunks'), 'liveBytes'],
    [g('dedup_ratio', 'logical bytes / unique bytes'), 'dedupRatio'],
    [g('chunks', 'referenced unique chunks'), 'chunks'],
    [g('packs', 'pack files'), 'packs'],
    [g('staging_bytes', 'bytes written, not sealed yet'), 'stagingBytes'],
    [g('open_handles', 'open file handles'), 'openHandles'],
    [g('rss_bytes', 'daemon resident memory'), 'rssBytes'],
  ]
  const tierBytes = g('tier_bytes', 'pack bytes per tier', ['tier'])
  const tierObjects = g('tier_objects', 'packs per tier', ['tier'])
  const tierOps = g('tier_operations', 'backend operations per tier and operation', ['tier', 'op'])
  const tierErrors = g('tier_errors', 'backend errors per tier and operation', ['tier', 'op'])
  const migr = g('migration', 'policy passes, failed passes, pass running, files moving now, files pending, files whose move failed (last pass, since start), recalls in flight', ['figure'])
  const cache = g('read_cache', 'chunk read cache hits, misses, bytes held and hit rate', ['figure'])
  const server = createServer((req, res) => {
    if (req.url !== '/metrics') {
      res.writeHead(404).end()
      return
    }
    void (async () => {
      try {
        const f = await figures()
        for (const [gauge, key] of scalar) gauge.set(Number(f[key] ?? 0))
        for (const [tier, t] of Object.entries((f.tiers ?? {}) as Record<string, { bytes: number; objects: number }>)) {
          tierBytes.set({ tier }, t.bytes)
          tierObjects.set({ tier }, t.objects)
        }
        for (const [tier, snap] of Object.entries((f.tierMetrics ?? {}) as Record<string, { ops?: Record<string, { count: number; errors: number }> }>)) {
          for (const [op, m] of Object.entries(snap.ops ?? {})) {
            tierOps.set({ tier, op }, m.count)
            tierErrors.set({ tier, op }, m.errors)
          }
        }
        const m = (f.migrations ?? {}) as Record<string, unknown>
        for (const k of ['passes', 'failures', 'moving', 'pending', 'failedMoves', 'failedMovesTotal', 'recallsInFlight']) migr.set({ figure: k }, Number(m[k] ?? 0))
        migr.set({ figure: 'running' }, m.running === true ? 1 : 0)
        const c = (f.readCache ?? {}) as Record<string, unknown>
        for (const k of ['hits', 'misses', 'bytes', 'hitRate']) cache.set({ figure: k }, Number(c[k] ?? 0))
        res.writeHead(200, { 'content-type': registry.contentType }).end(await registry.metrics())
      } catch (err) {
        res.writeHead(500).end(String((err as Error).message))
      }
    })()
  })
  await new Promise<void>((ok, fail) => { server.once('error', fail); server.listen(port, '127.0.0.1', () => ok()) })
  server.unref()
  return server
}
