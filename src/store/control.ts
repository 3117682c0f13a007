import { connect, createServer, type Server } from 'node:net'
import { rm } from 'node:fs/promises'
import { TierfsError } from '../errors.js'
import { flattenError } from '../log.js'

/**
 * The daemon's control protocol: one JSON request per connection, one JSON reply, over a unix
 * socket in the store. LevelDB allows one process, so every command on a mounted store goes here.
 */
export interface ControlRequest {
  cmd: string
  args?: Record<string, unknown>
}

export type ControlHandler = (req: ControlRequest) => Promise<unknown>

export async function serveControl(socket: string, handle: ControlHandler): Promise<Server> {
  await rm(socket, { force: true })
  const server = createServer((conn) => {
    let buf = ''
    conn.setEncoding('utf8')
    conn.on('data', (d: string) => {
      buf += d
      const nl = buf.indexOf('\n')
      if (nl < 0) return
      const line = buf.slice(0, nl)
      let req: ControlRequest
      try {
        req = JSON.parse(line) as ControlRequest
      } catch {
        conn.end(JSON.stringify({ ok: false, error: { code: 'INVALID', message: 'bad request' } }) + '\n')
        return
      }
      handle(req).then(
        (result) => conn.end(JSON.stringify({ ok: true, result }, bigintJson) + '\n'),
        (err) => conn.end(JSON.stringify({ ok: false, error: flattenError(err) }, bigintJson) + '\n'),
      )
    })
    conn.on('error', () => conn.destroy())
  })
  await new Promise<void>((ok, fail) => { server.once('error', fail); server.listen(socket, () => ok()) })
  return server
}

function bigintJson(_k: string, v: unknown): unknown {
  return typeof v === 'bigint' ? v.toString() : v
}

/** Sends one request to the daemon at `socket`; NO_DAEMON if nobody answers. */
export function callControl<T>(socket: string, req: ControlRequest, timeoutMs = 600_000): Promise<T> {
  return new Promise<T>((ok, fail) => {
    const conn = connect(socket)
    let buf = ''
    const timer = setTimeout(() => { conn.destroy(); fail(new TierfsError('NO_DAEMON', `daemon at ${socket} did not answer in time`)) }, timeoutMs)
    conn.setEncoding('utf8')
    conn.on('connect', () => conn.write(JSON.stringify(req) + '\n'))
    conn.on('data', (d: string) => { buf += d })
    conn.on('end', () => {
      clearTimeout(timer)
      try {
        const rep = JSON.parse(buf) as { ok: boolean; result?: T; error?: { code?: string; message?: string } }
        if (rep.ok) ok(rep.result as T)
        else fail(new TierfsError((rep.error?.code as 'IO') ?? 'IO', rep.error?.message ?? 'daemon error'))
      } catch {
        fail(new TierfsError('NO_DAEMON', `daemon at ${socket} closed the connection`))
      }
    })
    conn.on('error', (err) => {
      clearTimeout(timer)
      fail(new TierfsError('NO_DAEMON', `no tierfs daemon answers at ${socket}: ${err.message}`, { cause: err }))
    })
  })
}
