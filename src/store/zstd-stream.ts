import binding from 'zstd-napi/binding.js'
import { TierfsError } from '../errors.js'

const OUT_SIZE = binding.cStreamOutSize()
const IN_SIZE = binding.dStreamOutSize()

/**
 * Compresses a byte stream into one zstd frame. Each call has its own context (the generators
 * interleave across awaits, so codec.ts's shared synchronous context cannot serve them).
 * Memory: one output buffer and the input piece in hand.
 */
export async function* zstdCompress(src: AsyncIterable<Buffer>, level: number): AsyncGenerator<Buffer> {
  const cctx = new binding.CCtx()
  cctx.setParameter(binding.CParameter.compressionLevel, level)
  for await (const piece of src) {
    let input = piece
    while (input.length > 0) {
      const out = Buffer.allocUnsafe(OUT_SIZE)
      const [, produced, consumed] = cctx.compressStream2(out, input, binding.EndDirective.continue)
      input = input.subarray(consumed)
      if (produced > 0) yield out.subarray(0, produced)
    }
  }
  for (;;) {
    const out = Buffer.allocUnsafe(OUT_SIZE)
    const [left, produced] = cctx.compressStream2(out, Buffer.alloc(0), binding.EndDirective.end)
    if (produced > 0) yield out.subarray(0, produced)
    if (left === 0) return
  }
}

/**
 * Decompresses zstd frames. Damaged input, or input that ends inside a frame, fails with
 * CORRUPT naming `what`.
 */
export async function* zstdDecompress(src: AsyncIterable<Buffer>, what: string): AsyncGenerator<Buffer> {
  const dctx = new binding.DCtx()
  let inFrame = false
  for await (const piece of src) {
    let input = piece
    for (;;) {
      const out = Buffer.allocUnsafe(IN_SIZE)
      let ret: number
      let produced: number
      let consumed: number
      try {
        [ret, produced, consumed] = dctx.decompressStream(out, input)
      } catch (err) {
        throw TierfsError.corrupt(`${what}: compressed data is damaged (${(err as Error).message})`)
      }
      input = input.subarray(consumed)
      if (produced > 0) yield out.subarray(0, produced)
      if (input.length === 0 && (produced < out.length || ret === 0)) {
        inFrame = ret !== 0
        break
      }
    }
  }
  if (inFrame) throw TierfsError.corrupt(`${what}: compressed data ends inside a frame (truncated)`)
}
