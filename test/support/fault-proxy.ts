import { once } from 'node:events'
import { createServer, request, type IncomingHttpHeaders, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo, Socket } from 'node:net'

/** What the proxy does with one request instead of (or on top of) forwarding it. */
export type FaultAction =
  /** Answer with an S3 error document (`<Error><Code>…`), e.g. 503 SlowDown. */
  | { error: { status: number; code: string; message?: string } }
  /** Answer with anything. */
  | { reply: { status: number; headers?: Record<string, string>; body?: string } }
  /** Wait, then forward (the client may time out first). */
  | { delayMs: number }
  /** Drop the connection without answering. */
  | { reset: true }
  /** Forward, but drop the connection after this many bytes of the response body. */
  | { cutAfterBytes: number }
  /** Forward, adding these response headers. */
  | { addHeaders: Record<string, string> }
  /**
   * Answer `status` (with `headers`) at once, and forward the request `ms` later (its answer
   * dropped): an operation the service accepts now and carries out later (Azure's rehydration
   * of an archived blob). Until then `deferred(path)` is true.
   */
  | { defer: { ms: number; status: number; headers?: Record<string, string> } }

/** One request as the proxy saw it. */
export interface SeenRequest {
  method: string
  /** URL path, e.g. `/bucket/prefix/key`. */
  path: string
  query: URLSearchParams
  headers: IncomingHttpHeaders
  /** Which action was applied, if any. */
  fault?: string
}

interface Rule {
  action: FaultAction
  remaining: number
  match: (r: SeenRequest) => boolean
}

/**
 * An HTTP proxy on 127.0.0.1 in front of a real server (s3rver), with a programmable schedule
 * of faults: `inject(action, { times, match })` applies `action` to the next `times` requests
 * that `match`; everything else is forwarded unchanged (Host and signature headers included).
 * It records every request and how many were in flight at once.
 */
export class FaultProxy {
  readonly seen: SeenRequest[] = []
  inFlight = 0
  maxInFlight = 0
  private rules: Rule[] = []
  private readonly sockets = new Set<Socket>()
  /** Paths with a deferred request not yet forwarded, and their timers. */
  private readonly later = new Map<string, NodeJS.Timeout>()

  private constructor(private readonly server: Server, private readonly upstream: { host: string; port: number }) {}

  static async start(upstreamPort: number): Promise<FaultProxy> {
    const server = createServer()
    const proxy = new FaultProxy(server, { host: '127.0.0.1', port: upstreamPort })
    server.on('request', (req, res) => proxy.handle(req, res))
    server.on('connection', (s) => {
      proxy.sockets.add(s)
      s.once('close', () => proxy.sockets.delete(s))
    })
    server.listen(0, '127.0.0.1')
    await once(server, 'listening')
    return proxy
  }

  get port(): number {
    return (this.server.address() as AddressInfo).port
  }

  get endpoint(): string {
    return `http://127.0.0.1:${this.port}`
  }

  inject(action: FaultAction, opts: { times?: number; match?: (r: SeenRequest) => boolean } = {}): void {
    this.rules.push({ action, remaining: opts.times ?? 1, match: opts.match ?? (() => true) })
  }

  /** Faults still scheduled (not yet applied). */
  pending(): number {
    return this.rules.reduce((n, r) => n + r.remaining, 0)
  }

  /** Drops the schedule and the record. */
  reset(): void {
    this.rules = []
    this.seen.length = 0
    this.maxInFlight = this.inFlight
  }

  /** True while a deferred request to `path` waits to be forwarded. */
  deferred(path: string): boolean {
    return this.later.has(path)
  }

  async close(): Promise<void> {
    for (const timer of this.later.values()) clearTimeout(timer)
    this.later.clear()
    for (const s of this.sockets) s.destroy()
    await new Promise<void>((resolve) => this.server.close(() => resolve()))
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const url = new URL(req.url ?? '/', 'http://proxy')
    const seen: SeenRequest = { method: req.method ?? 'GET', path: decodeURIComponent(url.pathname), query: url.searchParams, headers: req.headers }
    this.seen.push(seen)
    this.inFlight++
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight)
    res.once('close', () => this.inFlight--)
    const rule = this.rules.find((r) => r.remaining > 0 && r.match(seen))
    if (rule === undefined) return this.forward(req, res, {})
    rule.remaining--
    this.rules = this.rules.filter((r) => r.remaining > 0)
    const a = rule.action
    seen.fault = Object.keys(a)[0]
    if ('reset' in a) {
      req.socket.destroy()
    } else if ('error' in a) {
      const body = `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${a.error.code}</Code><Message>${a.error.message ?? 'injected fault'}</Message><RequestId>fault-proxy</RequestId></Error>`
      this.answer(req, res, a.error.status, { 'content-type': 'application/xml' }, body)
    } else if ('reply' in a) {
      this.answer(req, res, a.reply.status, a.reply.headers ?? {}, a.reply.body ?? '')
    } else if ('delayMs' in a) {
      const timer = setTimeout(() => this.forward(req, res, {}), a.delayMs)
      res.once('close', () => clearTimeout(timer))
    } else if ('defer' in a) {
      this.defer(req, res, seen.path, a.defer)
    } else if ('cutAfterBytes' in a) {
      this.forward(req, res, { cutAfter: a.cutAfterBytes })
    } else {
      this.forward(req, res, { headers: a.addHeaders })
    }
  }

  /** Answers now; sends the request (body buffered) upstream `ms` later, dropping its answer. */
  private defer(req: IncomingMessage, res: ServerResponse, path: string, d: { ms: number; status: number; headers?: Record<string, string> }): void {
    const body: Buffer[] = []
    req.on('data', (c: Buffer) => body.push(c))
    req.once('end', () => {
      res.writeHead(d.status, { ...d.headers, 'content-length': '0' }).end()
      clearTimeout(this.later.get(path))
      this.later.set(path, setTimeout(() => {
        const up = request({ ...this.upstream, method: req.method, path: req.url, headers: req.headers, agent: false }, (ur) => {
          ur.resume()
          ur.once('end', () => this.later.delete(path))
        })
        up.on('error', () => this.later.delete(path))
        up.end(Buffer.concat(body))
      }, d.ms))
    })
  }

  /** Answers after the request body has arrived, so the client is not cut off mid-upload. */
  private answer(req: IncomingMessage, res: ServerResponse, status: number, headers: Record<string, string>, body: string): void {
    req.resume()
    req.once('end', () => {
      const bytes = req.method === 'HEAD' ? Buffer.alloc(0) : Buffer.from(body)
      res.writeHead(status, { ...headers, 'content-length': String(req.method === 'HEAD' ? Buffer.byteLength(body) : bytes.length) })
      res.end(bytes)
    })
  }

  private forward(req: IncomingMessage, res: ServerResponse, how: { cutAfter?: number; headers?: Record<string, string> }): void {
    if (res.destroyed) return
    const up = request({ ...this.upstream, method: req.method, path: req.url, headers: req.headers, agent: false }, (ur) => {
      res.writeHead(ur.statusCode ?? 502, { ...ur.headers, ...how.headers })
      if (how.cutAfter === undefined) {
        ur.pipe(res)
        return
      }
      let left = how.cutAfter
      ur.on('data', (c: Buffer) => {
        if (left <= 0) return
        const part = c.subarray(0, left)
        left -= part.length
        if (left > 0) {
          res.write(part)
          return
        }
        res.write(part, () => res.socket?.destroy())
        ur.destroy()
      })
      ur.on('end', () => res.end())
    })
    // The server went away: the client sees its connection dropped, as it would without us.
    up.on('error', () => res.socket?.destroy())
    res.once('close', () => up.destroy())
    req.pipe(up)
  }
}
