/** Chunks in a row that did not shrink before compression is only probed. */
const RUN = 8
/** While probing, one chunk in this many is tried. */
const PROBE = 16

/**
 * Whether compressing the next chunk is worth trying. Data tends to come in runs (a media file,
 * an already-compressed HFile, a text log), and trying zstd on a chunk that does not shrink costs
 * about as much CPU as hashing it: after RUN chunks in a row that stayed raw, only one in PROBE is
 * tried, until one shrinks again.
 */
export class CompressionProbe {
  private misses = 0

  constructor(private readonly enabled: boolean) {}

  /** True when the next chunk should be tried. */
  get tryNext(): boolean {
    return this.enabled && (this.misses < RUN || this.misses % PROBE === 0)
  }

  /** Records whether the chunk just stored was stored compressed. */
  record(compressed: boolean): void {
    this.misses = compressed ? 0 : this.misses + 1
  }
}
