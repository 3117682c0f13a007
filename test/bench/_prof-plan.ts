import { writeFile } from 'node:fs/promises'
import { Session } from 'node:inspector/promises'
import { runPlan } from './tiering-plan-run.js'
const session = new Session(); session.connect(); await session.post('Profiler.enable')
let started = false
const r = await runPlan(50_000, async (m) => { if (m.includes('planning') && !started) { started = true; await session.post('Profiler.start') } })
const { profile } = await session.post('Profiler.stop') as { profile: unknown }
await writeFile('/tmp/prof/plan.cpuprofile', JSON.stringify(profile))
console.log(r.planSeconds)
