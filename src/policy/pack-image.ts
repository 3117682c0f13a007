import { TierfsError } from '../errors.js'
import type { ChunkId, PackId } from '../ids.js'
import type { Encoded } from '../chunk/codec.js'
import { encodeHeader, encodeRecordHeader, encodeTrailer, isChunkId, MAX_RECORD_LENGTH, type PackEntry } from '../chunk/pack-format.js'

/**
 * A pack assembled in memory, byte for byte what PackWriter writes to a file (the same encoders
 * of pack-format.ts), for the migrator's uploads of packs small enough to hold: an object-tier
 * pack then goes out without being written to the block disk and read back first.
 *
 * Records are copied into `memory` as they come, which the caller may hand from one image to the
 * next once a pack is uploaded: memory the process has touched before is written at copy speed,
 * while fresh memory costs a page fault per 4 KiB (more than the copy on a virtual machine). When
 * a record or the trailer does not fit, the image moves to a larger buffer (`memory` then is it).
 */
export class PackImage {
  private buf: Buffer
  private readonly list: PackEntry[] = []
  private bytes = 0

  constructor(readonly packId: PackId, memory: Buffer) {
    this.buf = memory
    this.put(encodeHeader(packId))
  }

  /** Bytes so far (header and records). */
  get size(): number {
    return this.bytes
  }

  /** The buffer the image is built in: reusable by another image once the pack is done with. */
  get memory(): Buffer {
    return this.buf
  }

  append(id: ChunkId, encoded: Encoded, rawLength: number): PackEntry {
    const { codec, data } = encoded
    if (!isChunkId(id) || data.length > MAX_RECORD_LENGTH || rawLength > MAX_RECORD_LENGTH || (codec === 0 && data.length !== rawLength)) {
      throw TierfsError.invalid(`pack record (chunk ${id}, codec ${codec}, stored ${data.length}, raw ${rawLength})`)
    }
    this.put(encodeRecordHeader(id, codec, data, rawLength, encoded.crc))
    const entry: PackEntry = { id, offset: this.bytes, length: data.length, rawLength, codec }
    this.put(data)
    this.list.push(entry)
    return entry
  }

  /**
   * The finished pack (trailer and footer appended): a view of `memory`, valid until that is
   * reused. The image is spent afterwards.
   */
  finish(): { data: Buffer; entries: PackEntry[] } {
    this.put(encodeTrailer(this.packId, this.list, this.bytes))
    return { data: this.buf.subarray(0, this.bytes), entries: [...this.list] }
  }

  private put(b: Buffer): void {
    const end = this.bytes + b.length
    if (end > this.buf.length) {
      const larger = Buffer.allocUnsafe(Math.max(end, Math.ceil(this.buf.length * 1.5)))
      this.buf.copy(larger, 0, 0, this.bytes)
      this.buf = larger
    }
    b.copy(this.buf, this.bytes)
    this.bytes = end
  }
}
