import { runDaemon } from './run.js'

runDaemon(process.argv.slice(2)).catch((err: unknown) => {
  process.stderr.write(`tierfs daemon: ${err instanceof Error ? err.message : String(err)}\n`)
  process.exit(1)
})
