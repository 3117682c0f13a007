// Patches node_modules/fuse-native 2.2.6 in place and rebuilds its addon (package.json postinstall).
//
// What each patch fixes, and why:
// 1. utimens: upstream marshals atime into both argument slots, so mtime from `touch -d`, `cp -a`,
//    `rsync -t`, `tar -x` is lost, and times are cut to milliseconds. Patched, ops.utimens(path,
//    atime, mtime, cb) gets each time as a bigint of nanoseconds since the epoch. The addon also
//    sets libfuse's flag_utime_omit_ok, so libfuse 2.9 calls utimens when only one time is set and
//    passes the special values through: UTIME_NOW arrives as -1n (Fuse.UTIME_NOW), UTIME_OMIT as
//    -2n (Fuse.UTIME_OMIT). Without the flag libfuse skips utimens unless both times are set.
//    getattr/readdir stats may carry bigint `atimeNs`, `mtimeNs`, `ctimeNs`; the stat array grows
//    from 18 to 22 uint32 slots: three hold the sub-millisecond nanoseconds, the last the high 32
//    bits of st_ino (`inoHigh`), so with `use_ino` a filesystem can give 64-bit inode numbers
//    (tierfs gives every restore point its own inode space). Stat times are signed, so times
//    before 1970 survive (upstream packs them as unsigned milliseconds).
// 2. Caller identity: the FUSE thread copies fuse_get_context()'s uid, gid, pid and umask into the
//    first 16 bytes of its per-thread locals before waking JS; `fuse.callerContext` reads them
//    from that buffer while an ops handler runs synchronously (only valid at handler entry, before
//    any await or callback). Without it new nodes get the daemon's uid/gid.
// 3. Per-thread locals leak: libfuse 2's fuse_loop_mt starts a worker whenever all are busy and
//    drops idle ones above 10; each new worker got a locals buffer and a uv_async_t that were
//    never freed, and libuv walks every async handle on each wake-up, so requests slow down as
//    they pile up. A pthread key destructor now returns an exiting thread's locals to a
//    mutex-protected free list that get_thread_locals() reuses first, so the number of locals is
//    bounded by the peak number of concurrent workers. `fuse.threadLocalsStats()` reports
//    { allocated, free }.
// 4. Mount errors: upstream throws a bare "fuse failed" for both fuse_mount and fuse_new failures,
//    and when fuse_new rejects an option it leaves the kernel mount in place and a ref'd uv_async_t
//    that keeps the process alive forever. Patched, the message names the failing step, mount
//    point and options (err.code stays "fuse failed"; libfuse still prints the reason on stderr),
//    and a rejected fuse_new unmounts before throwing.
// 5. getxattr/listxattr with a buffer too small: upstream copies what fits and returns the full
//    length, so libfuse replies with bytes read past its buffer. Patched: ERANGE, as the kernel
//    expects (a zero-size call still returns the size needed).
// The patched index.js refuses to load an addon without this patch's marker (for example the
// unpatched prebuild in prebuilds/linux-x64), so a failed rebuild cannot go unnoticed.
//
// Idempotent: a patched file carries MARKER and is left alone; the addon is rebuilt only when
// build/Release/fuse.node lacks MARKER. Every hunk must match exactly once or nothing is written.
// Concurrent runs (two installs in one tree) are serialized by a lock directory, because two
// node-gyp builds in one build/ directory break each other.
// Never relies on fuse-native's own install script: npm 11 may skip it (allowScripts denial or
// strict-allow-scripts), and when it runs it only checks that the unpatched prebuild loads.
import { spawnSync } from 'node:child_process'
import { existsSync, mkdirSync, readFileSync, realpathSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

const VERSION = '2.2.6'
// Bump when any hunk changes: a tree patched with an older marker is refused (reinstall pristine).
const MARKER = 'tierfs-patch-4'
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const dir = path.join(root, 'node_modules', 'fuse-native')

function fail (message) {
  console.error(`\npatch-fuse-native: ${message}\n`)
  process.exit(1)
}

const C_HUNKS = [
  ['marker', '#define FUSE_USE_VERSION 29\n',
    `/* ${MARKER}: patched by tierfs scripts/patch-fuse-native.mjs */\n#define FUSE_USE_VERSION 29\n`],
  ['capture caller in every handler',
    '  fuse_thread_locals_t *l = get_thread_locals();\\\n  l->op = op_##name;\\\n',
    '  fuse_thread_locals_t *l = get_thread_locals();\\\n  capture_caller(l);\\\n  l->op = op_##name;\\\n'],
  ['free list in fuse_thread_t', '  uv_sem_t sem;\n} fuse_thread_t;', `  uv_sem_t sem;

  // Locals of exited worker threads, reused by get_thread_locals (guarded by free_mut)
  uv_mutex_t free_mut;
  void *free_locals;
  uint32_t locals_allocated;
  uint32_t locals_free;
} fuse_thread_t;`],
  ['caller fields first in locals', 'typedef struct {\n  napi_ref self;\n', `typedef struct {
  // Caller of the current request, written by the FUSE thread before it wakes JS.
  // Must stay first: index.js reads them at byte offsets 0, 4, 8 and 12.
  uint32_t caller_uid;
  uint32_t caller_gid;
  uint32_t caller_pid;
  uint32_t caller_umask;
  void *next_free;

  napi_ref self;
`],
  ['utimens keeps timespecs', '  size_t atime;\n  size_t mtime;\n', '  struct timespec atime;\n  struct timespec mtime;\n'],
  ['bigint times and caller capture', `static uint64_t timespec_to_uint64 (const struct timespec* ts) {
  uint64_t ms = (ts->tv_sec * 1000) + (ts->tv_nsec / 1000000);
  return ms;
}`, `static void timespec_to_bigint (napi_env env, const struct timespec* ts, napi_value* out) {
  int64_t ns = (int64_t) ts->tv_sec * 1000000000 + ts->tv_nsec;
  if (ts->tv_nsec == UTIME_NOW) ns = -1;
  if (ts->tv_nsec == UTIME_OMIT) ns = -2;
  napi_create_bigint_int64(env, ns, out);
}

static void capture_caller (fuse_thread_locals_t *l) {
  struct fuse_context *ctx = fuse_get_context();
  l->caller_uid = ctx->uid;
  l->caller_gid = ctx->gid;
  l->caller_pid = ctx->pid;
  l->caller_umask = ctx->umask;
}`],
  ['signed stat times (before 1970)', `static void uint32s_to_timespec (struct timespec* ts, uint32_t** ints) {
  uint64_t ms = uint32s_to_uint64(ints);
  ts->tv_sec = ms / 1000;
  ts->tv_nsec = (ms % 1000) * 1000000;
}`, `static void uint32s_to_timespec (struct timespec* ts, uint32_t** ints) {
  int64_t ms = (int64_t) uint32s_to_uint64(ints);
  int64_t sec = ms / 1000;
  int64_t rem = ms % 1000;
  if (rem < 0) { rem += 1000; sec -= 1; }
  ts->tv_sec = sec;
  ts->tv_nsec = rem * 1000000;
}`],
  ['stat carries sub-millisecond nanoseconds', `  uint32s_to_timespec(&stat->st_ctim, &ints);
#endif`, `  uint32s_to_timespec(&stat->st_ctim, &ints);
  stat->st_atim.tv_nsec += *ints++;
  stat->st_mtim.tv_nsec += *ints++;
  stat->st_ctim.tv_nsec += *ints++;
  stat->st_ino |= ((uint64_t) *ints++) << 32;
#endif`],
  ['capture caller in init too', 'static void * fuse_native_init (struct fuse_conn_info *conn) {\n  fuse_thread_locals_t *l = get_thread_locals();\n',
    'static void * fuse_native_init (struct fuse_conn_info *conn) {\n  fuse_thread_locals_t *l = get_thread_locals();\n  capture_caller(l);\n'],
  ['utimens passes atime and mtime as bigint ns', `FUSE_METHOD_VOID(utimens, 5, 0, (const char *path, const struct timespec tv[2]), {
  l->path = path;
  l->atime = timespec_to_uint64(&tv[0]);
  l->mtime = timespec_to_uint64(&tv[1]);
}, {
  napi_create_string_utf8(env, l->path, NAPI_AUTO_LENGTH, &(argv[2]));
  FUSE_UINT64_TO_INTS_ARGV(l->atime, 3)
  FUSE_UINT64_TO_INTS_ARGV(l->atime, 5)
})`, `FUSE_METHOD_VOID(utimens, 3, 0, (const char *path, const struct timespec tv[2]), {
  l->path = path;
  l->atime = tv[0];
  l->mtime = tv[1];
}, {
  napi_create_string_utf8(env, l->path, NAPI_AUTO_LENGTH, &(argv[2]));
  timespec_to_bigint(env, &(l->atime), &(argv[3]));
  timespec_to_bigint(env, &(l->mtime), &(argv[4]));
})`],
  ['recycle locals of exited threads', `  void *data = pthread_getspecific(thread_locals_key);

  if (data != NULL) {
    return (fuse_thread_locals_t *) data;
  }
`, `  void *data = pthread_getspecific(thread_locals_key);

  if (data != NULL) {
    return (fuse_thread_locals_t *) data;
  }

  uv_mutex_lock(&(ft->free_mut));
  fuse_thread_locals_t *reused = (fuse_thread_locals_t *) ft->free_locals;
  if (reused != NULL) {
    ft->free_locals = reused->next_free;
    ft->locals_free--;
  }
  uv_mutex_unlock(&(ft->free_mut));

  if (reused != NULL) {
    pthread_setspecific(thread_locals_key, (void *) reused);
    return reused;
  }
`],
  ['count allocated locals', `  fuse_thread_locals_t *l = (fuse_thread_locals_t*) ft->async.data;
`, `  fuse_thread_locals_t *l = (fuse_thread_locals_t*) ft->async.data;
  ft->locals_allocated++;
`],
  ['key destructor returns locals to the free list', 'static void* start_fuse_thread (void *data) {', `// pthread key destructor: runs when a libfuse worker exits (idle above 10, or cancelled at unmount;
// libfuse only cancels a worker while it waits for a request, never inside a handler).
static void release_thread_locals (void *data) {
  fuse_thread_locals_t *l = (fuse_thread_locals_t *) data;
  fuse_thread_t *ft = l->fuse;
  uv_mutex_lock(&(ft->free_mut));
  l->next_free = ft->free_locals;
  ft->free_locals = l;
  ft->locals_free++;
  uv_mutex_unlock(&(ft->free_mut));
}

static void* start_fuse_thread (void *data) {`],
  ['utimens accepts UTIME_NOW/UTIME_OMIT', '  if (implemented[op_utimens]) ops.utimens = fuse_native_utimens;\n', `  if (implemented[op_utimens]) {
    ops.utimens = fuse_native_utimens;
    ops.flag_utime_omit_ok = 1;
  }
`],
  ['mount errors say which step failed; a rejected fuse_new no longer leaves the mount behind', `  if (ch == NULL) {
    napi_throw_error(env, "fuse failed", "fuse failed");
    return NULL;
  }

  struct fuse *fuse = fuse_new(ch, &args, &ops, sizeof(struct fuse_operations), ft);
`, `  char why[2200];
  if (ch == NULL) {
    snprintf(why, sizeof(why), "fuse failed: fuse_mount(%s, %s) failed; libfuse printed the reason on stderr", mnt, mntopts);
    napi_throw_error(env, "fuse failed", why);
    return NULL;
  }

  struct fuse *fuse = fuse_new(ch, &args, &ops, sizeof(struct fuse_operations), ft);
  if (fuse == NULL) {
    fuse_unmount(mnt, ch);
    snprintf(why, sizeof(why), "fuse failed: fuse_new rejected options %s for %s; libfuse printed the reason on stderr", mntopts, mnt);
    napi_throw_error(env, "fuse failed", why);
    return NULL;
  }
`],
  ['init free list', '  uv_mutex_init(&(ft->mut));\n', `  uv_mutex_init(&(ft->mut));
  uv_mutex_init(&(ft->free_mut));
  ft->free_locals = NULL;
  ft->locals_allocated = 0;
  ft->locals_free = 0;
`],
  ['stats export', 'NAPI_INIT() {\n', `static const char *tierfs_patch = "${MARKER}";

// Debug snapshot [allocated, free] of this mount's thread locals (unlocked reads of two counters).
NAPI_METHOD(fuse_native_thread_locals_stats) {
  NAPI_ARGV(1)
  NAPI_ARGV_BUFFER_CAST(fuse_thread_t *, ft, 0);
  napi_value result;
  napi_value allocated;
  napi_value free_count;
  napi_create_array_with_length(env, 2, &result);
  napi_create_uint32(env, ft->locals_allocated, &allocated);
  napi_create_uint32(env, ft->locals_free, &free_count);
  napi_set_element(env, result, 0, allocated);
  napi_set_element(env, result, 1, free_count);
  return result;
}

NAPI_INIT() {
`],
  ['register key destructor', 'pthread_key_create(&(thread_locals_key), NULL); // TODO: add destructor',
    'pthread_key_create(&(thread_locals_key), release_thread_locals);'],
  ['export stats and marker', '  NAPI_EXPORT_FUNCTION(fuse_native_unmount)\n', `  NAPI_EXPORT_FUNCTION(fuse_native_unmount)
  NAPI_EXPORT_FUNCTION(fuse_native_thread_locals_stats)
  NAPI_EXPORT_STRING(tierfs_patch)
`]
]

const JS_HUNKS = [
  ['getxattr: ERANGE when the value does not fit', `        value.copy(valueBuf)
        return signal(value.length, valueBuf.buffer)
`, `        if (valueBuf.length > 0 && value.length > valueBuf.length) return signal(-34, valueBuf.buffer) // ERANGE
        value.copy(valueBuf)
        return signal(value.length, valueBuf.buffer)
`],
  ['listxattr: ERANGE when the list does not fit', `        let ptr = 0
        for (const name of list) {
`, `        let need = 0
        for (const name of list) need += Buffer.byteLength(name) + 1
        if (need > listBuf.length) return signal(-34, listBuf.buffer) // ERANGE
        let ptr = 0
        for (const name of list) {
`],
  ['marker', "const os = require('os')\n", `// ${MARKER}: patched by tierfs scripts/patch-fuse-native.mjs\nconst os = require('os')\n`],
  ['refuse an unpatched addon', "const binding = require('node-gyp-build')(__dirname)\n", `const binding = require('node-gyp-build')(__dirname)
if (binding.tierfs_patch !== '${MARKER}') {
  throw new Error('fuse-native: ' + require('node-gyp-build').resolve(__dirname) + ' is not the ${MARKER} build; run node scripts/patch-fuse-native.mjs')
}
const readU32 = os.endianness() === 'LE' ? (b, i) => b.readUInt32LE(i) : (b, i) => b.readUInt32BE(i)
`],
  ['caller slot', '    this._sync = true\n', '    this._sync = true\n    this._callerLocals = null\n'],
  ['expose caller locals during the synchronous handler call',
    '        return self[funcName].apply(self, [boundSignal, ...args])\n', `        self._callerLocals = nativeHandler
        try {
          return self[funcName].apply(self, [boundSignal, ...args])
        } finally {
          self._callerLocals = null
        }
`],
  ['utimens receives bigint ns', `  _op_utimens (signal, path, atimeLow, atimeHigh, mtimeLow, mtimeHigh) {
    const atime = getDoubleArg(atimeLow, atimeHigh)
    const mtime = getDoubleArg(mtimeLow, mtimeHigh)
    this.ops.utimens`, `  _op_utimens (signal, path, atime, mtime) {
    this.ops.utimens`],
  ['callerContext and threadLocalsStats', '  // Public API\n', `  // Public API

  // { uid, gid, pid, umask } of the process whose request is being handled. Only valid while an
  // ops handler runs synchronously (at its entry, before any await); null otherwise.
  get callerContext () {
    const l = this._callerLocals
    if (!l) return null
    return { uid: readU32(l, 0), gid: readU32(l, 4), pid: readU32(l, 8), umask: readU32(l, 12) }
  }

  // Per-thread locals of this mount: allocated in total, and currently on the free list.
  threadLocalsStats () {
    if (!this._thread) return { allocated: 0, free: 0 }
    const [allocated, free] = binding.fuse_native_thread_locals_stats(this._thread)
    return { allocated, free }
  }
`],
  ['UTIME sentinels', 'Fuse.EMEDIUMTYPE = -124\n', 'Fuse.EMEDIUMTYPE = -124\nFuse.UTIME_NOW = -1n\nFuse.UTIME_OMIT = -2n\n'],
  ['stat array with nanoseconds', `  const ints = new Uint32Array(18)
`, `  const ints = new Uint32Array(22)
`],
  ['stat times from bigint ns', `  setDoubleInt(ints, 12, toDateMS(stat && stat.atime))
  setDoubleInt(ints, 14, toDateMS(stat && stat.mtime))
  setDoubleInt(ints, 16, toDateMS(stat && stat.ctime))
`, `  setStatTime(ints, 12, 18, stat && stat.atimeNs, stat && stat.atime)
  setStatTime(ints, 14, 19, stat && stat.mtimeNs, stat && stat.mtime)
  setStatTime(ints, 16, 20, stat && stat.ctimeNs, stat && stat.ctime)
  ints[21] = (stat && stat.inoHigh) || 0
`],
  ['setStatTime helper', 'function getStatArray (stat) {\n', `// A non-negative bigint ns wins over the Date/ms field: ms go in the 64-bit slot, the rest in nsIdx.
function setStatTime (ints, msIdx, nsIdx, ns, time) {
  if (typeof ns !== 'bigint') return setDoubleInt(ints, msIdx, toDateMS(time))
  // Floor to whole ms (times before 1970 are negative), 64-bit two's complement in two slots.
  let ms = ns / 1000000n
  let sub = ns % 1000000n
  if (sub < 0n) { sub += 1000000n; ms -= 1n }
  const u = BigInt.asUintN(64, ms)
  ints[msIdx] = Number(u & 0xffffffffn)
  ints[msIdx + 1] = Number(u >> 32n)
  ints[nsIdx] = Number(sub)
}

function getStatArray (stat) {
`]
]

function patchFile (name, hunks) {
  const file = path.join(dir, name)
  const text = readFileSync(file, 'utf8')
  const applied = text.match(/tierfs-patch-\d+/)
  if (applied && applied[0] !== MARKER) {
    fail(`${file} carries ${applied[0]}, not ${MARKER}. Reinstall it pristine: rm -rf node_modules/fuse-native && npm install`)
  }
  if (applied) {
    const missing = hunks.filter(([, , replace]) => !text.includes(replace))
    if (missing.length) fail(`${file} has ${MARKER} but lacks hunks: ${missing.map(([d]) => d).join(', ')}. Reinstall it pristine.`)
    return false
  }
  let out = text
  for (const [desc, find, replace] of hunks) {
    const count = out.split(find).length - 1
    if (count !== 1) fail(`hunk "${desc}" matched ${count} times in ${file} (expected exactly 1); is this pristine fuse-native ${VERSION}?`)
    out = out.replace(find, () => replace)
  }
  return () => writeFileSync(file, out)
}

function nodeGypPath () {
  const candidates = [
    process.env.npm_config_node_gyp,
    path.join(path.dirname(realpathSync(process.execPath)), '../lib/node_modules/npm/node_modules/node-gyp/bin/node-gyp.js')
  ]
  if (process.env.npm_execpath) {
    candidates.push(path.join(path.dirname(process.env.npm_execpath), '../node_modules/node-gyp/bin/node-gyp.js'))
  }
  const found = candidates.find(p => p && existsSync(p))
  if (!found) fail(`cannot find npm's bundled node-gyp (looked at ${candidates.filter(Boolean).join(', ')})`)
  return found
}

function nodedirArgs () {
  if (process.env.npm_config_nodedir) return [`--nodedir=${process.env.npm_config_nodedir}`]
  const prefix = path.resolve(path.dirname(realpathSync(process.execPath)), '..')
  return existsSync(path.join(prefix, 'include/node/common.gypi')) ? [`--nodedir=${prefix}`] : []
}

function run (args, what) {
  const res = spawnSync(process.execPath, args, { cwd: dir, encoding: 'utf8' })
  if (res.status !== 0) fail(`${what} failed (exit ${res.status}):\n${res.stdout}\n${res.stderr}`)
  return res.stdout
}

if (!existsSync(path.join(dir, 'package.json'))) fail(`fuse-native is not installed at ${dir}`)
const { version } = createRequire(import.meta.url)(path.join(dir, 'package.json'))
if (version !== VERSION) {
  fail(`node_modules/fuse-native is version ${version}, but these patches are written for exactly ${VERSION}. Refusing to patch.`)
}

// mkdir is atomic: the first run holds the lock, later ones wait (a lock older than 5 min is stale).
const lock = path.join(dir, '.tierfs-patch.lock')
for (const started = Date.now(); ;) {
  try {
    mkdirSync(lock)
    break
  } catch (err) {
    if (err.code !== 'EEXIST') throw err
    const heldSince = statSync(lock, { throwIfNoEntry: false })?.mtimeMs ?? Date.now()
    if (Date.now() - heldSince > 300_000) rmSync(lock, { recursive: true, force: true })
    else if (Date.now() - started > 300_000) fail(`${lock} is held by another run for over 5 minutes`)
    else Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 250)
  }
}
process.on('exit', () => rmSync(lock, { recursive: true, force: true }))

const writes = [patchFile('fuse-native.c', C_HUNKS), patchFile('index.js', JS_HUNKS)]
for (const write of writes) if (write) write()

const addon = path.join(dir, 'build/Release/fuse.node')
const built = existsSync(addon) && readFileSync(addon).includes(MARKER)
if (!built) run([nodeGypPath(), 'rebuild', ...nodedirArgs()], 'node-gyp rebuild of fuse-native')

const loaded = run(['-e', "require('./'); process.stdout.write(require('node-gyp-build').resolve('.'))"],
  'loading the patched fuse-native (is Debian libfuse2 installed?)')
if (path.resolve(dir, loaded) !== addon) fail(`fuse-native loads ${loaded}, expected ${addon}`)

const did = writes.some(Boolean) ? 'patched' : 'already patched'
console.log(`patch-fuse-native: fuse-native ${VERSION} ${did} (${MARKER}); ${built ? 'addon up to date' : 'addon rebuilt'}: ${addon}`)
