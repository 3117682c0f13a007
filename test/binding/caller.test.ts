import t from 'tap'
import { stat } from 'node:fs/promises'
import { mountMiniFs } from './mini-fs.js'
import { NOBODY, sh } from './child.js'

t.test('callerContext carries the requesting process through a real mount', async t => {
  const fs = await mountMiniFs()
  t.teardown(() => fs.unmount())
  const owner = async (path: string) => {
    const st = await stat(`${fs.mnt}${path}`)
    return { uid: st.uid, gid: st.gid, perm: st.mode & 0o7777 }
  }
  const call = (op: string, path: string) => fs.calls.find(c => c.op === op && c.path === path)

  t.test('a file created by nobody', async t => {
    const { pid } = await sh(`umask 027 && exec touch '${fs.mnt}/by-nobody'`, { as: NOBODY })
    t.match(call('create', '/by-nobody'), {
      caller: { ...NOBODY, pid, umask: 0o027 },
      mode: 0o100640
    }, 'create saw nobody\'s uid, gid, pid and umask (mode already masked by the kernel)')
    t.same(await owner('/by-nobody'), { ...NOBODY, perm: 0o640 }, 'the new file is owned by nobody')
  })

  t.test('a directory created by nobody', async t => {
    const { pid } = await sh(`umask 022 && exec mkdir '${fs.mnt}/dir-by-nobody'`, { as: NOBODY })
    t.match(call('mkdir', '/dir-by-nobody'), { caller: { ...NOBODY, pid, umask: 0o022 } }, 'mkdir saw nobody')
    t.same(await owner('/dir-by-nobody'), { ...NOBODY, perm: 0o755 }, 'the new dir is owned by nobody')
  })

  t.test('a file created by root, and nobody refused in a root-owned dir', async t => {
    const { pid } = await sh(`umask 022 && exec touch '${fs.mnt}/by-root'`)
    t.match(call('create', '/by-root'), { caller: { uid: 0, gid: 0, pid } }, 'create saw root')
    t.same(await owner('/by-root'), { uid: 0, gid: 0, perm: 0o644 }, 'owned by root')
    await sh(`umask 022 && mkdir '${fs.mnt}/root-dir'`)
    await t.rejects(sh(`exec touch '${fs.mnt}/root-dir/x'`, { as: NOBODY }), /Permission denied/,
      'defaultPermissions checks against the stored owner: nobody cannot create in root\'s 0755 dir')
  })

  t.equal(fs.fuse.callerContext, null, 'callerContext is null outside a handler')
})
