import { mkdir } from 'node:fs/promises'
import { join } from 'node:path'
import { asTierId } from '../src/ids.js'
import type { Logger } from '../src/log.js'
import { writeCheckpoint, type CheckpointResult } from '../src/store/checkpoint.js'
import { checkpointDue, readState, writeState } from '../src/store/checkpoint-state.js'
import type { OpenStore } from '../src/store/open-store.js'

export type CheckpointsDeps = {
  store: OpenStore
  /** Seals closed files first, so the checkpoint holds everything written and closed before it. */
  sealAll: () => Promise<void>
  log: Logger
}

/** How often the schedule is looked at; a checkpoint runs at the first look after it is due. */
const TICK_MS = 60_000

/**
 * The daemon's metadata checkpoints: owns the timer of scheduled runs (config checkpoint.
 * everyHours, counted from the last checkpoint, which the local state remembers across restarts)
 * and answers the 'checkpoint' control command. One run at a time; a command during a run
 * waits for it and gets its result.
 */
export class Checkpoints {
  private timer: NodeJS.Timeout | undefined
  private running: Promise<CheckpointResult> | undefined
  private runs = 0
  private failures = 0
  private last: CheckpointResult | undefined
  private lastError: string | undefined

  constructor(private readonly deps: CheckpointsDeps) {}

  private get localDir(): string {
    const { store } = this.deps
    return join(store.layout.tierDir(store.config, 'block'), 'checkpoints')
  }

  async start(): Promise<void> {
    const every = this.deps.store.config.checkpoint.everyHours
    if (every <= 0) return
    // The schedule of a store that never had a checkpoint counts from its first mount.
    await mkdir(this.localDir, { recursive: true })
    await writeState(this.localDir, await readState(this.localDir, Date.now()))
    this.timer = setInterval(() => { void this.tick() }, Math.min(TICK_MS, every * 3_600_000))
    this.timer.unref()
  }

  stop(): void {
    if (this.timer !== undefined) clearInterval(this.timer)
    this.timer = undefined
  }

  private async tick(): Promise<void> {
    if (this.running !== undefined) return
    const state = await readState(this.localDir, Date.now())
    if (!checkpointDue(state, Date.now(), this.deps.store.config.checkpoint.everyHours)) return
    await this.run(false).catch(() => undefined)
  }

  /** Runs a checkpoint now (or joins the one running). */
  run(full: boolean): Promise<CheckpointResult> {
    this.running ??= (async () => {
      const { store, log } = this.deps
      const cfg = store.config.checkpoint
      try {
        await this.deps.sealAll()
        const r = await writeCheckpoint(store.meta, store.tiers.get(asTierId(cfg.target)), {
          localDir: this.localDir, keep: cfg.keep, fullEvery: cfg.fullEvery, full,
        })
        this.runs++
        this.last = r
        this.lastError = undefined
        log.info('metadata checkpoint written', { ...r })
        if (r.pruneError !== undefined) log.warn('old checkpoints could not be deleted', { error: r.pruneError })
        return r
      } catch (err) {
        this.failures++
        this.lastError = (err as Error).message
        log.error('metadata checkpoint failed', { err })
        throw err
      } finally {
        this.running = undefined
      }
    })()
    return this.running
  }

  status(): Record<string, unknown> {
    return {
      target: this.deps.store.config.checkpoint.target, runs: this.runs, failures: this.failures, running: this.running !== undefined,
      ...(this.last === undefined ? {} : { last: { key: this.last.key, kind: this.last.kind, head: this.last.head, bytes: this.last.bytes, at: new Date(this.last.timeMs).toISOString() } }),
      ...(this.lastError === undefined ? {} : { lastError: this.lastError }),
    }
  }
}
