import { TierfsError } from '../errors.js'
import type { ChunkId, PackId } from '../ids.js'
import type { Encoded } from '../chunk/codec.js'
import { encodeHeader, encodeRecordHeader, encodeTrailer, HEADER_SIZE, isChunkId, MAX_RECORD_LENGTH, RECORD_HEADER_SIZE, type PackEntry } from '../chunk/pack-format.js'

/**
 * A pack assembled in memory, byte for byte what PackWriter writes to a file (the same encoders
 * of pack-format.ts), for the migrator's uploads of packs small enough to hold: an object-tier
 * pack then goes out without being written to the block disk and read back first. Records keep
 * references to the chunk buffers until `finish()` joins them into one buffer.
 */
export class PackImage {
  private parts: Buffer[]
  private readonly list: PackEntry[] = []
  private bytes = HEADER_SIZE

  constructor(readonly packId: PackId) {
    this.parts = [encodeHeader(packId)]
  }

  /** Bytes so far (header and records). */
  get size(): number {
    return this.bytes
  }

  append(id: ChunkId, encoded: Encoded, rawLength: number): PackEntry {
    const { codec, data } = encoded
    if (!isChunkId(id) || data.length > MAX_RECORD_LENGTH || rawLength > MAX_RECORD_LENGTH || (codec === 0 && data.length !== rawLength)) {
      throw TierfsError.invalid(`pack record (chunk ${id}, codec ${codec}, stored ${data.length}, raw ${rawLength})`)
    }
    this.parts.push(encodeRecordHeader(id, codec, data, rawLength), data)
    const entry: PackEntry = { id, offset: this.bytes + RECORD_HEADER_SIZE, length: data.length, rawLength, codec }
    this.list.push(entry)
    this.bytes = entry.offset + entry.length
    return entry
  }

  /** The finished pack (trailer and footer appended). The image is spent afterwards. */
  finish(): { data: Buffer; entries: PackEntry[] } {
    const trailer = encodeTrailer(this.packId, this.list, this.bytes)
    const data = Buffer.concat([...this.parts, trailer], this.bytes + trailer.length)
    this.parts = []
    return { data, entries: [...this.list] }
  }
}
