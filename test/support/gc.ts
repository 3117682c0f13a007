import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'

setFlagsFromString('--expose-gc')

/**
 * A full garbage collection, available without starting node with --expose-gc. Memory checks call
 * it before sampling so they measure what is live, not garbage the collector has not reached yet.
 */
export const gc = runInNewContext('gc') as () => void
