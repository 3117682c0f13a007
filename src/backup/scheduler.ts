import { CronJob } from 'cron'
import { TierfsError } from '../errors.js'
import type { Logger } from '../log.js'
import type { WorkflowSpec } from '../policy/policy-file.js'

/** What one run of a workflow did (a restore point, or an ingest summary with one). */
export type RunSummary = Record<string, unknown>

/**
 * Runs one workflow once: creates its restore point (snapshot mode) or ingests (external mode).
 * `signal` aborts when the daemon stops: a long run should give up soon (without creating its
 * restore point) rather than hold the shutdown.
 */
export type WorkflowRunner = (wf: WorkflowSpec, signal: AbortSignal) => Promise<RunSummary>

export interface RunRecord {
  startedAt: string
  finishedAt: string
  ok: boolean
  trigger: 'schedule' | 'manual'
  summary?: RunSummary
  error?: { code: string; message: string }
}

/** One workflow as `tierfs status` shows it. */
export interface WorkflowState {
  name: string
  mode: 'snapshot' | 'ingest'
  schedule?: string
  /** Next scheduled run (ISO), when scheduled. */
  nextRun?: string
  running: boolean
  runs: number
  failures: number
  lastRun?: RunRecord
}

export type SchedulerDeps = {
  run: WorkflowRunner
  log: Logger
  /** Wall clock (ms), for run records. */
  nowMs?: () => number
  /** Time zone of cron expressions (default: the process's). */
  timeZone?: string
}

interface Entry {
  spec: WorkflowSpec
  job: CronJob | undefined
  running: Promise<RunRecord> | undefined
  abort: AbortController | undefined
  runs: number
  failures: number
  last: RunRecord | undefined
}

/**
 * Runs backup workflows on their cron schedules (six fields, seconds first). The daemon owns it:
 * `start()` arms the timers, `stop()` disarms them and waits for runs in flight; `update()` takes
 * the workflows of a newly loaded policy set (a changed schedule re-arms its job, a removed
 * workflow stops, a running run is never interrupted).
 *
 * A workflow never runs twice at once: a tick that finds it running is skipped (and logged), and
 * a manual run joins the run in flight. Every run logs one line with its summary or error.
 */
export class BackupScheduler {
  private readonly entries = new Map<string, Entry>()
  private started = false
  private stopping = false

  constructor(private readonly deps: SchedulerDeps) {}

  private now(): number {
    return (this.deps.nowMs ?? Date.now)()
  }

  /** Replaces the set of workflows. Names must be unique (the first of a name wins). */
  update(workflows: readonly WorkflowSpec[]): void {
    const next = new Map<string, WorkflowSpec>()
    for (const wf of workflows) {
      if (next.has(wf.name)) {
        this.deps.log.error('two policies declare the same backup workflow; the first is used', { workflow: wf.name })
        continue
      }
      next.set(wf.name, wf)
    }
    for (const [name, e] of this.entries) {
      if (next.has(name)) continue
      void e.job?.stop()
      this.entries.delete(name)
      this.deps.log.info('backup workflow removed', { workflow: name })
    }
    for (const [name, spec] of next) {
      const e = this.entries.get(name)
      if (e === undefined) {
        const fresh: Entry = { spec, job: undefined, running: undefined, abort: undefined, runs: 0, failures: 0, last: undefined }
        this.entries.set(name, fresh)
        this.arm(fresh)
        this.deps.log.info('backup workflow loaded', { workflow: name, schedule: spec.schedule ?? null, source: spec.source })
      } else if (JSON.stringify(e.spec) !== JSON.stringify(spec)) {
        const rearm = e.spec.schedule !== spec.schedule
        e.spec = spec
        if (rearm) {
          void e.job?.stop()
          e.job = undefined
          this.arm(e)
        }
        this.deps.log.info('backup workflow changed', { workflow: name, schedule: spec.schedule ?? null, source: spec.source })
      }
    }
  }

  start(): void {
    if (this.started) return
    this.started = true
    this.stopping = false
    for (const e of this.entries.values()) this.arm(e)
  }

  /** Disarms every timer, aborts the runs in flight and waits for them to wind down. Idempotent. */
  async stop(): Promise<void> {
    this.stopping = true
    this.started = false
    const running: Array<Promise<unknown>> = []
    for (const e of this.entries.values()) {
      void e.job?.stop()
      e.job = undefined
      e.abort?.abort()
      if (e.running !== undefined) running.push(e.running)
    }
    await Promise.allSettled(running)
  }

  private arm(e: Entry): void {
    if (!this.started || e.job !== undefined || e.spec.schedule === undefined) return
    const name = e.spec.name
    e.job = CronJob.from({
      cronTime: e.spec.schedule,
      onTick: () => {
        const cur = this.entries.get(name)
        if (cur === undefined) return
        if (cur.running !== undefined) {
          this.deps.log.warn('backup run skipped: the previous run of this workflow is still going', { workflow: name })
          return
        }
        void this.launch(cur, 'schedule')
      },
      start: true,
      ...(this.deps.timeZone === undefined ? {} : { timeZone: this.deps.timeZone }),
    })
  }

  /** Runs `name` now and waits; joins the run in flight when there is one. */
  async runNow(name: string): Promise<RunRecord & { joined: boolean }> {
    const e = this.entries.get(name)
    if (e === undefined) {
      const known = [...this.entries.keys()]
      throw TierfsError.notFound(`backup workflow ${JSON.stringify(name)} (known: ${known.length === 0 ? 'none' : known.join(', ')})`)
    }
    if (e.running !== undefined) return { ...(await e.running), joined: true }
    return { ...(await this.launch(e, 'manual')), joined: false }
  }

  private launch(e: Entry, trigger: RunRecord['trigger']): Promise<RunRecord> {
    if (this.stopping) return Promise.reject(new TierfsError('CLOSED', 'the daemon is stopping'))
    const spec = e.spec
    const startedMs = this.now()
    this.deps.log.info('backup run started', { workflow: spec.name, trigger })
    const abort = new AbortController()
    e.abort = abort
    const run = (async (): Promise<RunRecord> => {
      const base = { startedAt: new Date(startedMs).toISOString(), trigger }
      try {
        const summary = await this.deps.run(spec, abort.signal)
        const rec: RunRecord = { ...base, finishedAt: new Date(this.now()).toISOString(), ok: true, summary }
        this.deps.log.info('backup run finished', { workflow: spec.name, trigger, elapsedMs: this.now() - startedMs, summary })
        return rec
      } catch (err) {
        const e2 = err instanceof TierfsError ? err : TierfsError.from(err, `backup ${spec.name}`)
        this.deps.log.error('backup run failed', { workflow: spec.name, trigger, err: e2 })
        return { ...base, finishedAt: new Date(this.now()).toISOString(), ok: false, error: { code: e2.code, message: e2.message } }
      }
    })()
    e.running = run
    return run.then((rec) => {
      e.running = undefined
      e.abort = undefined
      e.runs++
      if (!rec.ok) e.failures++
      e.last = rec
      return rec
    })
  }

  state(): WorkflowState[] {
    return [...this.entries.values()].map((e) => {
      const s: WorkflowState = {
        name: e.spec.name,
        mode: e.spec.source.kind === 'external' ? 'ingest' : 'snapshot',
        running: e.running !== undefined,
        runs: e.runs,
        failures: e.failures,
      }
      if (e.spec.schedule !== undefined) s.schedule = e.spec.schedule
      if (e.job !== undefined) s.nextRun = e.job.nextDate().toISO() ?? undefined
      if (e.last !== undefined) s.lastRun = e.last
      return s
    })
  }
}
