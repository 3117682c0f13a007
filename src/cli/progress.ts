/** Where a progress bar is drawn: a terminal is redrawn in place, anything else gets a line per change. */
export interface ProgressStream {
  isTTY?: boolean
  write(s: string): unknown
}

const WIDTH = 30

/**
 * A one-line progress bar for a long wait (`tierfs recall --wait`), on stderr so that stdout
 * stays the command's answer. On a terminal it is redrawn in place; in a log or a pipe a line is
 * written only when the figures change.
 */
export class Progress {
  private last = ''

  constructor(private readonly label: string, private readonly stream: ProgressStream = process.stderr) {}

  update(done: number, total: number, note = ''): void {
    const filled = total <= 0 ? WIDTH : Math.min(WIDTH, Math.round((done / total) * WIDTH))
    const line = `${this.label} [${'#'.repeat(filled)}${'-'.repeat(WIDTH - filled)}] ${done}/${total}${note === '' ? '' : ` ${note}`}`
    if (line === this.last) return
    this.last = line
    this.stream.write(this.stream.isTTY === true ? `\r${line}\x1b[K` : `${line}\n`)
  }

  /** Ends the bar's line on a terminal. */
  end(): void {
    if (this.stream.isTTY === true && this.last !== '') this.stream.write('\n')
  }
}
