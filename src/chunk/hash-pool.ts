import { createHash } from 'node:crypto'
import { availableParallelism } from 'node:os'
import { Worker } from 'node:worker_threads'
import { TierfsError } from '../errors.js'

/** Below this size a buffer is hashed in place: the hand-off would cost more than the hash. */
const INLINE_BELOW = 64 * 1024

/** The worker: hashes what it is sent and answers with the hex digest (CommonJS, run by eval). */
const WORKER_SOURCE = `
const { parentPort } = require('node:worker_threads')
const { createHash } = require('node:crypto')
parentPort.on('message', (m) => {
  parentPort.postMessage({ id: m.id, hex: createHash('sha256').update(m.data).digest('hex') })
})
`

interface Pending { resolve: (hex: string) => void; reject: (err: unknown) => void }

interface Slot { worker: Worker; pending: Map<number, Pending> }

/** SHA-256 of `data` as hex, on this thread. */
export function sha256Hex(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex')
}

/**
 * SHA-256 on worker threads, so verifying chunks on reads does not hold the event loop that
 * serves FUSE requests (hashing a 1 MiB chunk takes 1-2 ms; the hand-off, a copy of it, about
 * 0.1 ms). Buffers under 64 KiB are hashed in place.
 *
 * Contract: `sha256Hex` never keeps or changes `data` (it sends a copy). A worker that dies fails
 * the hashes it had with IO and is replaced at the next call. `close` fails the hashes in flight
 * with CLOSED and ends the workers (idempotent); later calls hash in place. Idle workers never
 * keep the process alive.
 */
export class HashPool {
  private readonly slots: Array<Slot | undefined>
  private next = 0
  private seq = 0
  private closed = false

  /** `size` workers; by default one fewer than the CPUs (at least one). */
  constructor(size = Math.max(1, availableParallelism() - 1)) {
    this.slots = new Array<Slot | undefined>(size).fill(undefined)
  }

  sha256Hex(data: Buffer): Promise<string> {
    if (this.closed || data.length < INLINE_BELOW) return Promise.resolve(sha256Hex(data))
    const i = this.next
    this.next = (this.next + 1) % this.slots.length
    const slot = this.slots[i] ?? this.spawn(i)
    const id = this.seq++
    // A copy with a buffer of its own: transferring `data`'s would take it (and any neighbour
    // sharing its ArrayBuffer) away from the caller.
    const copy = new Uint8Array(data)
    return new Promise<string>((resolve, reject) => {
      // Busy workers keep the process alive until they answer; idle ones never do.
      if (slot.pending.size === 0) slot.worker.ref()
      slot.pending.set(id, { resolve, reject })
      slot.worker.postMessage({ id, data: copy }, [copy.buffer])
    })
  }

  async close(): Promise<void> {
    this.closed = true
    for (const slot of this.slots.splice(0)) {
      if (slot === undefined) continue
      for (const p of slot.pending.values()) p.reject(new TierfsError('CLOSED', 'hash pool closed'))
      slot.pending.clear()
      // Not awaited: an unreferenced worker's exit keeps no event loop alive, so awaiting it can
      // leave the caller hanging when nothing else is pending (measured); it ends on its own.
      void slot.worker.terminate()
    }
  }

  private spawn(i: number): Slot {
    const worker = new Worker(WORKER_SOURCE, { eval: true })
    worker.unref()
    const slot: Slot = { worker, pending: new Map() }
    worker.on('message', (m: { id: number; hex: string }) => {
      const p = slot.pending.get(m.id)
      slot.pending.delete(m.id)
      if (slot.pending.size === 0) worker.unref()
      p?.resolve(m.hex)
    })
    const fail = (why: unknown): void => {
      if (this.slots[i] === slot) this.slots[i] = undefined
      for (const p of slot.pending.values()) p.reject(TierfsError.io('hash worker stopped', why))
      slot.pending.clear()
    }
    worker.on('error', fail)
    worker.on('exit', (code) => fail(new Error(`exit code ${code}`)))
    this.slots[i] = slot
    return slot
  }
}
