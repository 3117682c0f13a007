import { TierfsError } from '../errors.js'
import type { CheckpointOp } from './checkpoint-format.js'

type Row = [key: Buffer, value: Buffer]

/**
 * The delta that turns `base` into `current`: a put for every row that is new or whose value
 * changed, a delete for every base row that is gone. Both inputs are in strictly ascending key
 * order (bytewise) and the output is too. Streams both inputs side by side: memory is one row
 * of each.
 */
export async function* diffRows(current: AsyncIterable<Row>, base: AsyncIterable<CheckpointOp>): AsyncGenerator<CheckpointOp> {
  const cur = current[Symbol.asyncIterator]()
  const old = base[Symbol.asyncIterator]()
  try {
    let a = await cur.next()
    let b = await nextPut(old)
    while (a.done !== true || b !== undefined) {
      const c = a.done === true ? 1 : b === undefined ? -1 : Buffer.compare(a.value[0], b.key)
      if (c < 0 && a.done !== true) {
        yield { op: 'put', key: a.value[0], value: a.value[1] }
        a = await cur.next()
      } else if (c > 0 && b !== undefined) {
        yield { op: 'del', key: b.key }
        b = await nextPut(old)
      } else if (a.done !== true && b !== undefined) {
        if (!a.value[1].equals(b.value)) yield { op: 'put', key: a.value[0], value: a.value[1] }
        a = await cur.next()
        b = await nextPut(old)
      }
    }
  } finally {
    await closeAll(cur, old)
  }
}

/**
 * The rows of `base` (a full checkpoint) with `delta` applied, in ascending key order. A delete
 * of a row the base does not hold means the delta was made against another base: CORRUPT.
 */
export async function* applyDelta(base: AsyncIterable<CheckpointOp>, delta: AsyncIterable<CheckpointOp>): AsyncGenerator<Row> {
  const old = base[Symbol.asyncIterator]()
  const ch = delta[Symbol.asyncIterator]()
  try {
    let b = await nextPut(old)
    let d = await ch.next()
    while (b !== undefined || d.done !== true) {
      const c = d.done === true ? -1 : b === undefined ? 1 : Buffer.compare(b.key, d.value.key)
      if (c < 0 && b !== undefined) {
        yield [b.key, b.value]
        b = await nextPut(old)
        continue
      }
      if (d.done === true) break
      const op = d.value
      if (c > 0 && op.op === 'del') throw TierfsError.corrupt('checkpoint delta deletes a row its base does not hold (wrong base)')
      if (op.op === 'put') yield [op.key, op.value]
      if (c === 0) b = await nextPut(old)
      d = await ch.next()
    }
  } finally {
    await closeAll(old, ch)
  }
}

/** All rows of a full checkpoint as plain key/value pairs. */
export async function* putRows(ops: AsyncIterable<CheckpointOp>): AsyncGenerator<Row> {
  for await (const op of ops) {
    if (op.op !== 'put') throw TierfsError.corrupt('a delete in a full checkpoint')
    yield [op.key, op.value]
  }
}

/** Ends iterators a merge stopped reading (their files and snapshots are released). */
async function closeAll(...its: Array<AsyncIterator<unknown>>): Promise<void> {
  for (const it of its) await it.return?.().catch(() => undefined)
}

async function nextPut(it: AsyncIterator<CheckpointOp>): Promise<{ key: Buffer; value: Buffer } | undefined> {
  const r = await it.next()
  if (r.done === true) return undefined
  if (r.value.op !== 'put') throw TierfsError.corrupt('a checkpoint delta can only apply to a full checkpoint')
  return r.value
}
