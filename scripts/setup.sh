#!/usr/bin/env bash
# Installs whatever tierfs needs on a Debian machine with Node 20, and nothing that is already there.
#
#   bash scripts/setup.sh [--test] [--bench] [--build] [--check]
#
#   (always)  Node >= 20 and npm; /dev/fuse usable; Debian libfuse2 (fuse-native loads it), fuse3
#             (fusermount) and attr (getfattr/setfattr: backup ingest and restore copy xattrs with
#             them, and the xattr tests use them); npm packages (`npm ci` when node_modules is
#             missing or differs from package-lock.json); fuse-native loads with our patch (else
#             re-run its patch).
#   --test    what the test suite needs beyond that (nothing more today)
#   --bench   also Debian restic borgbackup python3-llfuse fio rclone (peers and load tools for benchmarks)
#   --build   also `npm run build` when dist/ is missing or older than src/, daemon/ or the configs
#   --check   install nothing: list what is missing and exit 1 if anything is
#
# Idempotent and silent when nothing is missing; on failure it says what to do and exits non-zero.
# Debian's `fuse` package is never installed: it conflicts with fuse3 and would remove it.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin"

want_bench=0 want_build=0 check_only=0
for arg in "$@"; do
  case "$arg" in
    --test) ;;
    --bench) want_bench=1 ;;
    --build) want_build=1 ;;
    --check) check_only=1 ;;
    -h|--help) sed -n '2,17p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "setup: unknown option $arg (try --help)" >&2; exit 2 ;;
  esac
done

say() { printf 'setup: %s\n' "$*" >&2; }
die() {
  printf '\nsetup: ERROR: %s\n' "$1" >&2
  shift
  for line in "$@"; do printf '       %s\n' "$line" >&2; done
  printf '\n' >&2
  exit 1
}
# Problems are collected so that one run names all of them (a first line, then how to fix it).
problems=()
problem() {
  local text=$1 line
  shift
  for line in "$@"; do text+=$'\n'"       $line"; done
  problems+=("$text")
}
# Exits 1 listing the problems, if any.
report_problems() {
  [ "${#problems[@]}" -gt 0 ] || return 0
  local p
  printf '\n' >&2
  for p in "${problems[@]}"; do printf 'setup: ERROR: %s\n' "$p" >&2; done
  printf '\n' >&2
  exit 1
}

# --- Node and npm -----------------------------------------------------------------------------
command -v node >/dev/null 2>&1 || die "node is not installed" "tierfs needs Node.js 20 or newer (with npm) on PATH."
node_major=$(node -p 'process.versions.node.split(".")[0]')
if [ "$node_major" -lt 20 ]; then
  die "Node.js $(node --version) is too old" "tierfs needs Node.js 20 or newer; this PATH has $(command -v node)."
fi
command -v npm >/dev/null 2>&1 || die "npm is not installed" "tierfs needs npm (it ships with Node.js) on PATH."

# --- /dev/fuse ----------------------------------------------------------------------------------
if [ ! -c /dev/fuse ] && [ "$(id -u)" = 0 ] && [ "$check_only" = 0 ]; then
  modprobe fuse >/dev/null 2>&1 || true
fi
if [ ! -c /dev/fuse ]; then
  problem "/dev/fuse does not exist: the kernel's FUSE device is missing." \
    "Load the module as root: modprobe fuse" \
    "In a container, start it with: --device /dev/fuse --cap-add SYS_ADMIN"
elif [ ! -r /dev/fuse ] || [ ! -w /dev/fuse ]; then
  problem "$(id -un) cannot open /dev/fuse ($(stat -c '%A %U:%G' /dev/fuse))." \
    "tierfs mounts need it: run as root (e.g. sudo npm start, sudo npm test)."
fi

# --- Debian packages ----------------------------------------------------------------------------
# shellcheck disable=SC2317  # invoked through need_deb
have_libfuse2() {
  compgen -G '/usr/lib/*/libfuse.so.2' >/dev/null || compgen -G '/lib/*/libfuse.so.2' >/dev/null
}
# shellcheck disable=SC2317
have() { command -v "$1" >/dev/null 2>&1; }
# borg mount (the backup benchmark's peer) needs llfuse, a recommendation apt skips here.
have_llfuse() { dpkg-query -W -f='${Status}' python3-llfuse 2>/dev/null | grep -q 'install ok installed'; }
need_deb() { # PACKAGE PRESENT-TEST...
  local pkg=$1
  shift
  if ! "$@"; then
    case " ${debs[*]-} " in *" $pkg "*) ;; *) debs+=("$pkg") ;; esac
  fi
}
collect_debs() {
  debs=()
  need_deb libfuse2 have_libfuse2
  need_deb fuse3 have fusermount
  need_deb fuse3 have fusermount3
  need_deb attr have getfattr
  need_deb attr have setfattr
  if [ "$want_bench" = 1 ]; then
    need_deb restic have restic
    need_deb borgbackup have borg
    need_deb python3-llfuse have_llfuse
    need_deb fio have fio
    need_deb rclone have rclone
  fi
}
# The names to give apt-get: libfuse2 is libfuse2t64 from Debian 13 on.
apt_names() {
  local p
  for p in "${debs[@]}"; do
    if [ "$p" = libfuse2 ] && apt-cache show libfuse2t64 >/dev/null 2>&1; then echo libfuse2t64; else echo "$p"; fi
  done
}

collect_debs
if [ "${#debs[@]}" -gt 0 ] && { [ "$check_only" = 1 ] || [ "$(id -u)" != 0 ]; }; then
  mapfile -t names < <(apt_names)
  problem "missing Debian packages: ${names[*]}" \
    "Install them as root:  apt-get update && apt-get install -y ${names[*]}" \
    "(Never install Debian 'fuse': it removes fuse3.)"
fi

# Nothing is installed while a problem stands that only the user can fix.
[ "$check_only" = 1 ] || report_problems

if [ "${#debs[@]}" -gt 0 ] && [ "$check_only" = 0 ]; then
  say "installing Debian packages: ${debs[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get -o DPkg::Lock::Timeout=300 update -qq ||
    die "apt-get update failed (see above)" "Check the apt sources and the network to Debian's mirrors."
  mapfile -t names < <(apt_names)
  apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends "${names[@]}" ||
    die "apt-get install ${names[*]} failed (see above)"
  collect_debs
  [ "${#debs[@]}" = 0 ] || die "still missing after apt-get install: ${debs[*]}"
fi

# --- npm packages -------------------------------------------------------------------------------
# Fresh when npm's own record of node_modules (node_modules/.package-lock.json) lists exactly the
# packages and versions of package-lock.json, each one is on disk, and package.json asks for nothing
# the lock lacks. Cheaper than `npm ci` by minutes, and content-based, so clones and touches don't
# matter.
npm_fresh() {
  node - <<'EOF'
const fs = require('fs')
const read = (f) => JSON.parse(fs.readFileSync(f, 'utf8'))
let lock, hidden, pkg
try {
  lock = read('package-lock.json'); hidden = read('node_modules/.package-lock.json'); pkg = read('package.json')
} catch { process.exit(1) }
const want = lock.packages || {}
const have = hidden.packages || {}
const stale = (why) => { if (process.env.SETUP_DEBUG) console.error('stale: ' + why); process.exit(1) }
for (const name of Object.keys({ ...pkg.dependencies, ...pkg.devDependencies })) {
  if (!want['node_modules/' + name]) stale(name + ' is in package.json but not in package-lock.json')
}
for (const [key, w] of Object.entries(want)) {
  if (key === '' || !key.startsWith('node_modules/')) continue
  const h = have[key]
  if (!h) {
    if (w.optional || w.devOptional || w.peer) continue
    stale(key + ' is not installed')
  }
  if (h.version !== w.version) stale(key + ' is ' + h.version + ', the lock wants ' + w.version)
  if (!fs.existsSync(key + (w.link ? '' : '/package.json'))) stale(key + ' is missing on disk')
}
for (const key of Object.keys(have)) if (!(key in want)) stale(key + ' is not in package-lock.json')
EOF
}

if ! npm_fresh; then
  if [ "$check_only" = 1 ]; then
    problem "npm packages: node_modules is missing or differs from package-lock.json (npm ci)"
  else
    say "installing npm packages (npm ci)"
    npm ci --include=dev --no-audit --no-fund ||
      die "npm ci failed (see above)" "A failing 'postinstall' is scripts/patch-fuse-native.mjs (needs python3, make, g++ and libfuse2)."
    npm_fresh || die "node_modules still differs from package-lock.json after npm ci" \
      "Run SETUP_DEBUG=1 bash scripts/setup.sh to see which package."
  fi
fi

# --- fuse-native, patched -----------------------------------------------------------------------
# The patched index.js refuses to load an addon without the patch, so loading it is the check.
fuse_native_loads() { node -e "require('fuse-native')" >/dev/null 2>&1; }
if [ -d node_modules ] && ! fuse_native_loads; then
  if [ "$check_only" = 1 ]; then
    problem "fuse-native does not load with the tierfs patch (node scripts/patch-fuse-native.mjs)"
  else
    say "patching and rebuilding fuse-native"
    node scripts/patch-fuse-native.mjs || die "scripts/patch-fuse-native.mjs failed (see above)"
    fuse_native_loads || die "fuse-native still does not load after patching" \
      "See: node -e \"require('fuse-native')\""
  fi
fi

# --- build --------------------------------------------------------------------------------------
BUILD_STAMP=dist/.build-stamp
build_stale() {
  [ -f dist/src/cli/main.js ] && [ -f dist/daemon/main.js ] && [ -f "$BUILD_STAMP" ] || return 0
  [ -n "$(find src daemon tsconfig.json package.json package-lock.json -newer "$BUILD_STAMP" -print -quit 2>/dev/null)" ]
}
if [ "$want_build" = 1 ] && build_stale; then
  if [ "$check_only" = 1 ]; then
    problem "build: dist/ is missing or older than the sources (npm run build)"
  else
    say "building (npm run build)"
    # Stamped with the time the build started, so a source edited during the build stays stale.
    mkdir -p dist
    touch "$BUILD_STAMP.next"
    npm run build --silent || { rm -f "$BUILD_STAMP.next"; die "npm run build failed (see the TypeScript errors above)"; }
    mv -f "$BUILD_STAMP.next" "$BUILD_STAMP"
  fi
fi

report_problems
