import t from 'tap'
import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import { mountMiniFs } from './mini-fs.js'
import { loadedAddonPath } from './fuse-native-api.js'
const run = promisify(execFile)
t.test('explore', async t => {
  const fs = await mountMiniFs()
  t.teardown(() => fs.unmount())
  const env = { ...process.env, TZ: 'UTC' }
  const sh = async (cmd: string) => { try { const r = await run('sh', ['-c', cmd], { env }); return r.stdout + r.stderr } catch (e: any) { return 'ERR ' + e.message } }
  t.comment(loadedAddonPath)
  t.comment(await sh(`touch -d '2001-02-03 04:05:06.123456789' ${fs.mnt}/f && stat -c '%x|%y|%z' ${fs.mnt}/f`))
  t.comment(await sh(`touch -m -d '2010-01-01 00:00:00.5' ${fs.mnt}/f && stat -c '%x|%y|%z' ${fs.mnt}/f`))
  t.comment(await sh(`touch -a -d '2011-01-01 00:00:00.25' ${fs.mnt}/f && stat -c '%x|%y|%z' ${fs.mnt}/f`))
  t.comment(await sh(`touch ${fs.mnt}/f && stat -c '%x|%y|%z' ${fs.mnt}/f`))
  t.comment(await sh(`setpriv --reuid=65534 --regid=65534 --clear-groups sh -c 'umask 027; exec touch ${fs.mnt}/g'; setpriv --reuid=65534 --regid=65534 --clear-groups sh -c 'umask 022; exec mkdir ${fs.mnt}/d'; stat -c '%n %u %g %a' ${fs.mnt}/g ${fs.mnt}/d; ls -la ${fs.mnt}`))
  for (const c of fs.calls) t.comment(JSON.stringify(c, (_k, v) => typeof v === 'bigint' ? v.toString() + 'n' : v))
  t.comment(JSON.stringify(fs.fuse.threadLocalsStats()), JSON.stringify(fs.inFlight))
  t.pass()
})
