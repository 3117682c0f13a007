import t from 'tap'
import { execFile } from 'node:child_process'
import { mkdir, symlink, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { dumpXattrs, GetfattrParser, missingXattrTools, unescapeGetfattr, type XattrBlock } from '../../src/backup/xattr-dump.js'

const exec = promisify(execFile)

function plain(blocks: XattrBlock[]): Array<[string, Array<[string, string]>]> {
  return blocks.map((b) => [b.path, b.attrs.map((a) => [a.name, a.value.toString('hex')] as [string, string])])
}

t.test('the parser reads escaped paths and names and base64 values, whatever the chunking', async (t) => {
  const out = Buffer.concat([
    Buffer.from('# file: a b/\\134x \\012y\n', 'latin1'),
    Buffer.from('user.sp ace=0sAP8KPQ==\nuser.eq\\075=0s\n\n'),
    Buffer.from('# file: d\u00e9j\u00e0\n'),
    Buffer.from('user.\u00e9t\u00e9=0sMQ==\n\n'),
  ])
  const want: Array<[string, Array<[string, string]>]> = [
    ['a b/\\x \ny', [['user.sp ace', '00ff0a3d'], ['user.eq=', '']]],
    ['d\u00e9j\u00e0', [['user.\u00e9t\u00e9', '31']]],
  ]
  const whole = new GetfattrParser()
  t.same(plain([...whole.push(out), ...whole.end()]), want, 'one chunk')
  const bytes = new GetfattrParser()
  const got: XattrBlock[] = []
  for (let i = 0; i < out.length; i++) got.push(...bytes.push(out.subarray(i, i + 1)))
  got.push(...bytes.end())
  t.same(plain(got), want, 'one byte at a time (multi-byte characters split)')
  const last = new GetfattrParser()
  t.same(plain([...last.push(Buffer.from('# file: x\nuser.a=0sMQ==')), ...last.end()]), [['x', [['user.a', '31']]]], 'no final newline')
  t.throws(() => new GetfattrParser().push(Buffer.from('user.a=0sMQ==\n')), { code: 'IO' }, 'an xattr outside a block')
  t.throws(() => new GetfattrParser().push(Buffer.from('# file: x\nuser.a="text"\n')), { code: 'IO' }, 'a value not in base64')
  t.equal(unescapeGetfattr('\\134\\015\\012\\075'), '\\\r\n=')
})

t.test('dumpXattrs: one getfattr over odd paths; failures are told apart per path', async (t) => {
  const dir = t.testdir()
  const odd = ['a b', 'back\\slash', 'new\nline', '-dash', 'caf\u00e9 \u00e0', 'colon: in name']
  for (const name of odd) await writeFile(join(dir, name), 'x')
  await mkdir(join(dir, 'sub dir'))
  await writeFile(join(dir, 'bare'), 'no xattrs')
  await symlink('a b', join(dir, 'link'))
  for (const [i, name] of odd.entries()) await exec('setfattr', ['-n', `user.n ${i}`, '-v', `0x00ff${i.toString(16).padStart(2, '0')}`, '--', join(dir, name)])
  await exec('setfattr', ['-n', 'user.eq=x\nnl', '-v', 'v', join(dir, 'sub dir')])
  await exec('setfattr', ['-n', 'user.empty', join(dir, 'sub dir')])
  await exec('setfattr', ['-n', 'trusted.skip', '-v', '1', join(dir, 'sub dir')])
  await t.rejects(exec('setfattr', ['-h', '-n', 'user.l', '-v', '1', join(dir, 'link')]), /Operation not permitted/, 'Linux refuses user.* on a symlink')

  const blocks: XattrBlock[] = []
  const asked = ['.', ...odd, 'sub dir', 'bare', 'link', 'gone', 'gone: too']
  const r = await dumpXattrs(dir, asked, async (b) => { blocks.push(b) })
  t.same(plain(blocks), [
    ...odd.map((name, i): [string, Array<[string, string]>] => [name, [[`user.n ${i}`, `00ff${i.toString(16).padStart(2, '0')}`]]]),
    ['sub dir', [['user.empty', ''], ['user.eq=x\nnl', '76']]],
  ], 'only paths with user.* xattrs, in order, with every name and value as set')
  t.same([...r.failed.keys()], ['gone', 'gone: too'], 'missing paths are named, even with ": " in them')
  t.match(r.failed.get('gone: too'), /^No such file or directory/)
  t.same(r.other, [])

  const stop = new Error('store failed')
  await t.rejects(dumpXattrs(dir, asked, async () => { throw stop }), stop, 'a failing consumer stops the dump')
})

t.test('a missing tool is named', async (t) => {
  const path = process.env.PATH
  t.teardown(() => { process.env.PATH = path })
  t.equal(await missingXattrTools(['getfattr', 'setfattr']), undefined)
  process.env.PATH = t.testdir()
  t.equal(await missingXattrTools(['getfattr', 'setfattr']), 'getfattr/setfattr (Debian package attr) are not installed')
  t.equal(await missingXattrTools(['getfattr']), 'getfattr (Debian package attr) is not installed')
})
