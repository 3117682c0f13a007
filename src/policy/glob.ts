/**
 * Path globs as ops write them in policies: `**` spans directories (zero or more), `*` and `?`
 * stay inside one name, `{a,b}` alternates, `[...]` is a character class. "/hbase/**" matches
 * /hbase itself and everything below it.
 */
export function compileGlob(glob: string): RegExp {
  let re = ''
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i] as string
    if (c === '*') {
      if (glob[i + 1] === '*') {
        const slashAfter = glob[i + 2] === '/'
        const slashBefore = re.endsWith('/')
        if (slashBefore && (slashAfter || i + 2 === glob.length)) {
          re = re.slice(0, -1) + '(?:/.*)?'
          i += slashAfter ? 2 : 1
          if (slashAfter) re += '/'
          continue
        }
        re += '.*'
        i++
      } else re += '[^/]*'
    } else if (c === '?') re += '[^/]'
    else if (c === '{') {
      const end = glob.indexOf('}', i)
      if (end < 0) { re += '\\{'; continue }
      re += '(?:' + glob.slice(i + 1, end).split(',').map(escape).join('|') + ')'
      i = end
    } else if (c === '[') {
      const end = glob.indexOf(']', i + 1)
      if (end < 0) { re += '\\['; continue }
      re += '[' + glob.slice(i + 1, end).replace(/^!/, '^').replace(/\\/g, '\\\\') + ']'
      i = end
    } else re += escape(c)
  }
  return new RegExp('^' + re + '$')
}

function escape(s: string): string {
  return s.replace(/[.+^$()|\\/]/g, (m) => (m === '/' ? '/' : '\\' + m))
}
