import { isMap, isScalar, isSeq, LineCounter, parseAllDocuments, type Node as YamlNode } from 'yaml'
import { validateCronExpression } from 'cron'
import { TierfsError } from '../errors.js'
import { parseDuration, parseSize } from './units.js'

export type TierKind = 'block' | 'object' | 'cold'
export type AgeBasis = 'mtime' | 'atime' | 'ctime'

/** One step of a policy's tier chain: stay on `tier` (at `target`) for `days`. */
export interface TierStep {
  tier: TierKind
  /** Named target from the daemon config; the store's own tier of that kind when absent. */
  target?: string
  days: number
}

export interface Retention {
  last?: number
  hourly?: number
  daily?: number
  weekly?: number
  monthly?: number
  /** Keep everything newer than this many milliseconds. */
  withinMs?: number
}

/** A backup workflow declared in a policy file. */
export interface WorkflowSpec {
  name: string
  /** Cron expression (six fields, seconds first, as the cron package reads it). */
  schedule?: string
  /** Snapshot mode: a directory in the namespace. Ingest mode: an external directory copied in. */
  source: { kind: 'namespace'; path: string } | { kind: 'external'; dir: string; dest: string }
  retain: Retention
}

export interface Policy {
  name: string
  /** Where it was read from, for messages: file:line:col of the document. */
  origin: string
  /** Higher first; ties go by file name, then position in the file. */
  priority: number
  order: number
  match: { paths: string[]; exclude: string[]; minSize: number; maxSize: number; uid?: number; gid?: number }
  age: AgeBasis
  tiers: TierStep[]
  then: 'delete' | 'keep'
  backup?: WorkflowSpec
}

/** A problem in a policy file, located to the character. */
export class PolicyError extends TierfsError {
  constructor(readonly file: string, readonly line: number, readonly col: number, readonly reason: string) {
    super('CONFIG', `${file}:${line}:${col}: ${reason}`, { detail: { file, line, col } })
  }
}

const TOP_KEYS = new Set(['name', 'priority', 'match', 'age', 'tiers', 'then', 'backup'])
const MATCH_KEYS = new Set(['path', 'exclude', 'minSize', 'maxSize', 'uid', 'gid'])
const STEP_KEYS = new Set(['tier', 'target', 'days'])
const BACKUP_KEYS = new Set(['schedule', 'source', 'dest', 'retain', 'name'])
const RETAIN_KEYS = new Set(['last', 'hourly', 'daily', 'weekly', 'monthly', 'within', 'days'])
const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/

/**
 * Parses one policy file (one or more YAML documents, each a policy). Every problem is a
 * PolicyError naming file, line and column; nothing partial is returned.
 */
export function parsePolicyFile(text: string, file: string, orderBase = 0): Policy[] {
  const lc = new LineCounter()
  const docs = parseAllDocuments(text, { lineCounter: lc, prettyErrors: false })
  const at = (node: YamlNode | null | undefined, fallback = 0): { line: number; col: number } => lc.linePos(node?.range?.[0] ?? fallback)
  const fail = (node: YamlNode | null | undefined, reason: string): never => {
    const p = at(node)
    throw new PolicyError(file, p.line, p.col, reason)
  }
  const out: Policy[] = []
  let index = 0
  for (const doc of Array.isArray(docs) ? docs : [docs]) {
    const err = doc.errors[0]
    if (err !== undefined) {
      const p = lc.linePos(err.pos[0])
      throw new PolicyError(file, p.line, p.col, err.message.split('\n')[0] ?? 'YAML syntax error')
    }
    const root = doc.contents
    if (root === null) continue
    if (!isMap(root)) fail(root, 'a policy must be a mapping (name, match, tiers, ...)')
    const map = root as import('yaml').YAMLMap
    const field = (m: import('yaml').YAMLMap, key: string): YamlNode | undefined => (m.get(key, true) as YamlNode | undefined) ?? undefined
    const checkKeys = (m: import('yaml').YAMLMap, allowed: Set<string>, where: string): void => {
      for (const pair of m.items) {
        const k = isScalar(pair.key) ? String(pair.key.value) : ''
        if (!allowed.has(k)) fail(pair.key as YamlNode, `unknown key ${JSON.stringify(k)} in ${where} (allowed: ${[...allowed].join(', ')})`)
      }
    }
    const str = (node: YamlNode | undefined, what: string): string => {
      if (!isScalar(node) || typeof node.value !== 'string' || node.value === '') fail(node ?? map, `${what} must be a non-empty string`)
      return (node as import('yaml').Scalar<string>).value
    }
    const num = (node: YamlNode | undefined, what: string, min = 0): number => {
      if (!isScalar(node) || typeof node.value !== 'number' || !Number.isFinite(node.value) || node.value < min) {
        fail(node ?? map, `${what} must be a number >= ${min}`)
      }
      return (node as import('yaml').Scalar<number>).value
    }
    const strList = (node: YamlNode | undefined, what: string): string[] => {
      if (node === undefined) return []
      if (isScalar(node)) return [str(node, what)]
      if (!isSeq(node)) fail(node, `${what} must be a string or a list of strings`)
      return (node as import('yaml').YAMLSeq).items.map((n) => str(n as YamlNode, what))
    }
    const size = (node: YamlNode | undefined, what: string, dflt: number): number => {
      if (node === undefined) return dflt
      if (isScalar(node) && typeof node.value === 'number' && node.value >= 0) return node.value
      if (isScalar(node) && typeof node.value === 'string') {
        const n = parseSize(node.value)
        if (n !== undefined) return n
      }
      return fail(node, `${what} must be a size in bytes or like "10MiB"`)
    }

    checkKeys(map, TOP_KEYS, 'a policy')
    const nameNode = field(map, 'name')
    if (nameNode === undefined) fail(map, 'missing "name"')
    const name = str(nameNode, 'name')
    if (!NAME_RE.test(name)) fail(nameNode, 'name: use letters, digits, ".", "_" or "-" (max 128)')
    const matchNode = field(map, 'match')
    if (matchNode === undefined || !isMap(matchNode)) fail(matchNode ?? map, 'missing "match" mapping (at least match.path)')
    const m = matchNode as import('yaml').YAMLMap
    checkKeys(m, MATCH_KEYS, 'match')
    const paths = strList(field(m, 'path'), 'match.path')
    if (paths.length === 0) fail(m, 'match.path is required (a glob such as "/hbase/**")')
    for (const p of paths) if (!p.startsWith('/')) fail(field(m, 'path'), `match.path ${JSON.stringify(p)} must be absolute (start with /)`)
    const exclude = strList(field(m, 'exclude'), 'match.exclude')
    const minSize = size(field(m, 'minSize'), 'match.minSize', 0)
    const maxSize = size(field(m, 'maxSize'), 'match.maxSize', Number.MAX_SAFE_INTEGER)
    if (maxSize < minSize) fail(field(m, 'maxSize'), 'match.maxSize is below match.minSize')
    const uidNode = field(m, 'uid')
    const gidNode = field(m, 'gid')

    const ageNode = field(map, 'age')
    const age = ageNode === undefined ? 'mtime' : str(ageNode, 'age')
    if (age !== 'mtime' && age !== 'atime' && age !== 'ctime') fail(ageNode, 'age must be mtime, atime or ctime')

    const tiersNode = field(map, 'tiers')
    if (tiersNode === undefined || !isSeq(tiersNode) || tiersNode.items.length === 0) fail(tiersNode ?? map, 'tiers must be a non-empty list of { tier, days, target? }')
    const tiers: TierStep[] = []
    let lastRank = -1
    for (const item of (tiersNode as import('yaml').YAMLSeq).items) {
      const node = item as YamlNode
      if (!isMap(node)) fail(node, 'each tiers entry must be a mapping { tier, days, target? }')
      const step = node as import('yaml').YAMLMap
      checkKeys(step, STEP_KEYS, 'a tiers entry')
      const tierNode = field(step, 'tier')
      const tier = str(tierNode, 'tier')
      const rank = ['block', 'object', 'cold'].indexOf(tier)
      if (rank < 0) fail(tierNode, 'tier must be block, object or cold')
      if (rank < lastRank) fail(tierNode, `tier ${tier} comes after a colder tier: the chain must go block -> object -> cold`)
      lastRank = rank
      const daysNode = field(step, 'days')
      const days = daysNode === undefined ? Infinity : num(daysNode, 'days')
      const targetNode = field(step, 'target')
      tiers.push({ tier: tier as TierKind, days, ...(targetNode === undefined ? {} : { target: str(targetNode, 'target') }) })
    }
    const thenNode = field(map, 'then')
    const then = thenNode === undefined ? 'keep' : str(thenNode, 'then')
    if (then !== 'delete' && then !== 'keep') fail(thenNode, 'then must be delete or keep')
    if (then === 'delete' && tiers.some((s) => !Number.isFinite(s.days))) fail(thenNode, 'then: delete needs days on every tiers entry')
    const priorityNode = field(map, 'priority')

    const backupNode = field(map, 'backup')
    let backup: WorkflowSpec | undefined
    if (backupNode !== undefined) {
      if (!isMap(backupNode)) fail(backupNode, 'backup must be a mapping { schedule, retain, source?, dest? }')
      const b = backupNode as import('yaml').YAMLMap
      checkKeys(b, BACKUP_KEYS, 'backup')
      const schedNode = field(b, 'schedule')
      const schedule = schedNode === undefined ? undefined : str(schedNode, 'backup.schedule')
      if (schedule !== undefined && !validCron(schedule)) fail(schedNode, 'backup.schedule must be a cron expression of 5 or 6 fields, e.g. "0 0 2 * * *"')
      const sourceNode = field(b, 'source')
      const destNode = field(b, 'dest')
      const root = globRoot(paths[0] as string)
      let source: WorkflowSpec['source'] = { kind: 'namespace', path: root }
      if (sourceNode !== undefined) {
        const s = str(sourceNode, 'backup.source')
        if (!s.startsWith('/')) fail(sourceNode, 'backup.source must be an absolute directory')
        source = { kind: 'external', dir: s, dest: destNode === undefined ? root : str(destNode, 'backup.dest') }
      } else if (destNode !== undefined) fail(destNode, 'backup.dest needs backup.source (an external directory to ingest)')
      const retainNode = field(b, 'retain')
      const retain: Retention = {}
      if (retainNode !== undefined) {
        if (!isMap(retainNode)) fail(retainNode, 'backup.retain must be a mapping { last, hourly, daily, weekly, monthly, within }')
        const r = retainNode as import('yaml').YAMLMap
        checkKeys(r, RETAIN_KEYS, 'backup.retain')
        for (const k of ['last', 'hourly', 'daily', 'weekly', 'monthly'] as const) {
          const n = field(r, k)
          if (n !== undefined) retain[k] = Math.floor(num(n, `backup.retain.${k}`))
        }
        const within = field(r, 'within')
        if (within !== undefined) {
          const ms = parseDuration(str(within, 'backup.retain.within'))
          if (ms === undefined) fail(within, 'backup.retain.within must be a duration like "90d", "12h" or "2w"')
          retain.withinMs = ms
        }
        const days = field(r, 'days')
        if (days !== undefined) retain.withinMs = num(days, 'backup.retain.days') * 86_400_000
      }
      const wfName = field(b, 'name')
      backup = { name: wfName === undefined ? name : str(wfName, 'backup.name'), ...(schedule === undefined ? {} : { schedule }), source, retain }
    }
    const p = at(root)
    out.push({
      name, origin: `${file}:${p.line}:${p.col}`,
      priority: priorityNode === undefined ? 0 : num(priorityNode, 'priority', -1e9),
      order: orderBase + index++,
      match: {
        paths, exclude, minSize, maxSize,
        ...(uidNode === undefined ? {} : { uid: num(uidNode, 'match.uid') }),
        ...(gidNode === undefined ? {} : { gid: num(gidNode, 'match.gid') }),
      },
      age: age as AgeBasis, tiers, then: then as 'delete' | 'keep', ...(backup === undefined ? {} : { backup }),
    })
  }
  return out
}

/** The directory a glob starts from: the part before the first wildcard. */
export function globRoot(glob: string): string {
  const parts = glob.split('/')
  const fixed: string[] = []
  for (const p of parts) {
    if (/[*?[{]/.test(p)) break
    fixed.push(p)
  }
  const root = fixed.join('/')
  return root === '' ? '/' : root
}

function validCron(expr: string): boolean {
  return validateCronExpression(expr).valid
}
