/**
 * The gear table of the content-defined chunker: 256 pseudo-random 32-bit words drawn from a
 * fixed seed. It is a storage-format constant: changing the seed or the generator moves every
 * cut point, so chunks written before the change would no longer dedup against new writes.
 *
 * Held as an Int32Array (same bits as the Uint32 words) because V8 keeps int32 values unboxed in
 * the hash loop, where uint32 values above 2^31 would become doubles.
 */
export const GEAR_SEED = 0x74696572 // "tier"

export const GEAR: Int32Array = makeGear(GEAR_SEED)

/** splitmix32: a tiny, well-mixed generator; only its output for GEAR_SEED matters. */
function makeGear(seed: number): Int32Array {
  const table = new Int32Array(256)
  let state = seed | 0
  for (let i = 0; i < 256; i++) {
    state = (state + 0x9e3779b9) | 0
    let z = state
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b)
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35)
    table[i] = z ^ (z >>> 16)
  }
  return table
}
