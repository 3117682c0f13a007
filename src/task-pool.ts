/**
 * Runs at most `size` async tasks at once. `submit` resolves when the task has started (so a
 * producer slows to the pool's pace and memory stays bounded); `drain` waits until nothing runs
 * and then throws the first error a task threw since the last drain, if any.
 */
export class TaskPool {
  private active = 0
  private slots: Array<() => void> = []
  private idle: Array<() => void> = []
  private failure: { err: unknown } | undefined

  constructor(private readonly size: number) {}

  async submit(task: () => Promise<void>): Promise<void> {
    while (this.active >= this.size) await new Promise<void>((r) => this.slots.push(r))
    this.active++
    void task().catch((err: unknown) => { this.failure ??= { err } }).finally(() => {
      this.active--
      this.slots.shift()?.()
      if (this.active === 0) for (const r of this.idle.splice(0)) r()
    })
  }

  async drain(): Promise<void> {
    while (this.active > 0) await new Promise<void>((r) => this.idle.push(r))
    const f = this.failure
    this.failure = undefined
    if (f !== undefined) throw f.err
  }
}
