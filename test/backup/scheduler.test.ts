import t from 'tap'
import { BackupScheduler } from '../../src/backup/scheduler.js'
import { jsonLogger } from '../../src/log.js'
import type { WorkflowSpec } from '../../src/policy/policy-file.js'

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))

function spec(name: string, schedule?: string): WorkflowSpec {
  return { name, source: { kind: 'namespace', path: `/${name}` }, retain: {}, ...(schedule === undefined ? {} : { schedule }) }
}

function logs(): { lines: Array<Record<string, unknown>>; log: ReturnType<typeof jsonLogger> } {
  const lines: Array<Record<string, unknown>> = []
  return { lines, log: jsonLogger((l) => { lines.push(JSON.parse(l) as Record<string, unknown>) }) }
}

t.test('scheduled runs fire on the cron schedule and never overlap', async (t) => {
  const { lines, log } = logs()
  let running = 0
  let maxRunning = 0
  let runs = 0
  const s = new BackupScheduler({
    log,
    run: async (wf) => {
      running++
      maxRunning = Math.max(maxRunning, running)
      runs++
      await sleep(1500)
      running--
      return { workflow: wf.name, n: runs }
    },
  })
  s.update([spec('every-second', '* * * * * *')])
  t.equal(s.state()[0]?.nextRun, undefined, 'not armed before start')
  s.start()
  t.ok(s.state()[0]?.nextRun !== undefined, 'armed: the next run is known')
  await sleep(3600)
  await s.stop()
  t.ok(runs >= 1 && runs <= 3, `ran ${runs} times in 3.6 s`)
  t.equal(maxRunning, 1, 'never two runs of one workflow at once')
  t.ok(lines.some((l) => l.msg === 'backup run skipped: the previous run of this workflow is still going'), 'overlapping ticks are skipped and logged')
  const finished = lines.filter((l) => l.msg === 'backup run finished')
  t.equal(finished.length, runs, 'every run logs its summary')
  t.match(finished[0], { workflow: 'every-second', trigger: 'schedule', summary: { workflow: 'every-second' } })
  const st = s.state()[0]!
  t.match(st, { name: 'every-second', mode: 'snapshot', running: false, runs, failures: 0, lastRun: { ok: true, trigger: 'schedule' } })
  t.equal(st.nextRun, undefined, 'disarmed after stop')
  const after = runs
  await sleep(1200)
  t.equal(runs, after, 'no run after stop')
})

t.test('manual runs: wait for the result, join a run in flight, report failures', async (t) => {
  const { lines, log } = logs()
  let calls = 0
  const s = new BackupScheduler({
    log,
    run: async (wf) => {
      calls++
      await sleep(200)
      if (wf.name === 'broken') throw new Error('source unreadable')
      return { n: calls }
    },
  })
  s.update([spec('nightly'), spec('broken')])
  s.start()
  const [a, b] = await Promise.all([s.runNow('nightly'), s.runNow('nightly')])
  t.match(a, { ok: true, trigger: 'manual', joined: false, summary: { n: 1 } })
  t.match(b, { ok: true, joined: true, summary: { n: 1 } }, 'the second request joins the first run')
  t.equal(calls, 1)
  const f = await s.runNow('broken')
  t.match(f, { ok: false, error: { code: 'IO', message: /source unreadable/ } })
  t.match(s.state().find((w) => w.name === 'broken'), { runs: 1, failures: 1, lastRun: { ok: false } })
  t.ok(lines.some((l) => l.msg === 'backup run failed' && l.workflow === 'broken'), 'failures are logged')
  await t.rejects(s.runNow('nope'), { code: 'NOT_FOUND' })
  await s.stop()
})

t.test('update: new, changed and removed workflows; stop aborts runs in flight', async (t) => {
  const { log } = logs()
  let aborted = false
  const s = new BackupScheduler({
    log,
    run: (wf, signal) => new Promise((ok, fail) => {
      const timer = setTimeout(() => ok({ wf: wf.name }), 60_000)
      signal.addEventListener('abort', () => { clearTimeout(timer); aborted = true; fail(new Error('aborted')) })
    }),
  })
  s.start()
  s.update([spec('a', '0 0 2 * * *'), spec('b'), spec('a', '0 0 3 * * *')])
  t.same(s.state().map((w) => w.name), ['a', 'b'], 'duplicate names: the first wins')
  const next2 = s.state()[0]!.nextRun!
  t.match(next2, /T\d\d:00:00/, 'armed')
  s.update([spec('a', '0 30 4 * * *')])
  t.same(s.state().map((w) => w.name), ['a'], 'removed workflows are dropped')
  t.not(s.state()[0]!.nextRun, next2, 'a changed schedule is re-armed')
  const run = s.runNow('a')
  await sleep(50)
  t.equal(s.state()[0]!.running, true)
  await s.stop()
  t.ok(aborted, 'stop aborts the run in flight')
  t.match(await run, { ok: false })
  await t.rejects(s.runNow('a'), { code: 'CLOSED' }, 'no new runs while stopped')
})
