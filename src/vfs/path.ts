import { TierfsError } from '../errors.js'

const MAX_NAME_BYTES = 255

/** Splits an absolute path into its components ('/' gives []). */
export function components(path: string): string[] {
  if (!path.startsWith('/')) throw TierfsError.invalid(`path ${JSON.stringify(path)}`)
  return path.split('/').filter((c) => c !== '')
}

/** Splits into the parent path and the last name; the root has no parent. */
export function splitParent(path: string): { parent: string; name: string } {
  const parts = components(path)
  const name = parts.pop()
  if (name === undefined) throw TierfsError.invalid('the root has no name')
  checkName(name)
  return { parent: '/' + parts.join('/'), name }
}

export function checkName(name: string): void {
  if (name === '.' || name === '..' || name.includes('/') || name.includes('\0')) {
    throw TierfsError.invalid(`name ${JSON.stringify(name)}`)
  }
  if (Buffer.byteLength(name) > MAX_NAME_BYTES) {
    throw new TierfsError('NAME_TOO_LONG', `${name.slice(0, 32)}...: file name too long`)
  }
}
