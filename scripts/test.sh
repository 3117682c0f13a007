#!/usr/bin/env bash
# Runs the whole test suite (`npm test`): setup (Debian and npm packages, attr), build, then tap
# over every test/**/*.test.ts, one file at a time (.taprc: jobs 1, timeout 600).
#
#   bash scripts/test.sh                      the whole suite
#   bash scripts/test.sh test/x.test.ts ...   only these files (any tap option may be given too)
#   bash scripts/test.sh --summarize FILE     print the count line of a raw TAP file and exit
#
# Exits non-zero on any failure. The last line is `N passed, N failed`, taken from tap's own
# closing tally of test points (`# { total, pass, fail, todo, skip }`) in the raw TAP of the run,
# which is kept in .tap/tierfs-run.tap. If tap died before writing it, the count falls back to
# top-level test files.
#
# Tests run with TMPDIR set to a private directory removed at the end; FUSE mounts left under it,
# or new ones under .tap/ (t.testdir()), are unmounted on exit (tierfs umount, else fusermount -uz).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

# Sets pass, fail, skip, todo and how (what was counted) from a raw TAP file.
summarize() {
  local file=$1 tally
  tally=$(grep -E '^# \{ total: [0-9]+' "$file" 2>/dev/null | tail -n 1 || true)
  field() { sed -nE "s/.*[{ ,]$1: ([0-9]+).*/\\1/p" <<<"$tally"; }
  if [ -n "$tally" ]; then
    pass=$(field pass) fail=$(field fail) skip=$(field skip) todo=$(field todo)
    how="test points"
  else
    pass=$(grep -cE '^ok ' "$file" 2>/dev/null || true)
    fail=$(grep -cE '^not ok ' "$file" 2>/dev/null || true)
    skip=0 todo=0
    how="test files (tap's closing tally is missing)"
  fi
  pass=${pass:-0} fail=${fail:-0} skip=${skip:-0} todo=${todo:-0}
}

if [ "${1-}" = --summarize ]; then
  if [ -z "${2-}" ] || [ ! -f "$2" ]; then echo "usage: test.sh --summarize FILE.tap" >&2; exit 2; fi
  summarize "$2"
  echo "$pass passed, $fail failed"
  exit 0
fi

# FUSE mount points (unescaped) whose path starts with one of the given prefixes.
fuse_mounts_under() {
  local mp type prefix
  while read -r _ mp type _; do
    case "$type" in fuse|fuse.*|fuseblk) ;; *) continue ;; esac
    mp=$(printf '%b' "$mp")
    for prefix in "$@"; do
      case "$mp" in "$prefix"/*) printf '%s\n' "$mp"; break ;; esac
    done
  done </proc/mounts
}

bash scripts/setup.sh --test --build

if [ "$#" -gt 0 ]; then
  tap_args=("$@")
else
  mapfile -t tap_args < <(find test -name '*.test.ts' -not -path '*/fixtures/*' -not -path '*/node_modules/*' | LC_ALL=C sort)
  if [ "${#tap_args[@]}" = 0 ]; then
    echo "test: ERROR: no test files (test/**/*.test.ts) found" >&2
    exit 1
  fi
fi

RUN_TMP=$(mktemp -d "${TMPDIR:-/tmp}/tierfs-test.XXXXXX")
chmod 755 "$RUN_TMP" # tests reach mounts under it as other users
mapfile -t mounts_before < <(fuse_mounts_under "$ROOT/.tap")
cleaned=0
cleanup() {
  [ "$cleaned" = 0 ] || return 0
  cleaned=1
  local mp old known
  while IFS= read -r mp; do
    known=0
    for old in "${mounts_before[@]}"; do [ "$old" = "$mp" ] && known=1 && break; done
    [ "$known" = 0 ] || continue
    echo "test: unmounting stray test mount $mp" >&2
    # tierfs umount also ends the daemon; a lazy unmount alone would leave it running.
    timeout 30 node dist/src/cli/main.js umount "$mp" >/dev/null 2>&1 || fusermount -uz "$mp" 2>/dev/null ||
      umount -l "$mp" 2>/dev/null || echo "test: could not unmount $mp" >&2
  done < <(fuse_mounts_under "$RUN_TMP" "$ROOT/.tap")
  rm -rf --one-file-system "$RUN_TMP" 2>/dev/null || true
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

TAP_OUT="$ROOT/.tap/tierfs-run.tap"
mkdir -p "$ROOT/.tap"
rm -f "$TAP_OUT"
echo "test: running ${#tap_args[@]} tap argument(s); raw TAP in ${TAP_OUT#"$ROOT"/}" >&2
set +e
if [ -t 1 ]; then
  TMPDIR="$RUN_TMP" node_modules/.bin/tap -o "$TAP_OUT" "${tap_args[@]}"
  rc=$?
else
  # Without a terminal tap's own reporter prints raw TAP; tee keeps it (tap's -o would print it twice).
  TMPDIR="$RUN_TMP" node_modules/.bin/tap -R tap "${tap_args[@]}" | tee "$TAP_OUT"
  rc=${PIPESTATUS[0]}
fi
set -e
cleanup

summarize "$TAP_OUT"
echo
if [ "$skip" != 0 ] || [ "$todo" != 0 ]; then echo "test: $skip skipped, $todo todo"; fi
if [ "$fail" != 0 ]; then
  echo "test: FAILED: $fail failed $how; failing test files:"
  grep -E '^not ok ' "$TAP_OUT" | sed -E 's/^not ok [0-9]+ - /  /; s/ # time=.*//' || true
elif [ "$rc" != 0 ] && grep -q '^# No coverage generated' "$TAP_OUT"; then
  echo "test: FAILED: tap exited $rc because no coverage was generated (these test files import nothing from src/)"
elif [ "$rc" != 0 ]; then
  echo "test: FAILED: tap exited $rc with no failed test point (a runner error, a timeout or coverage: see above)"
elif [ $((pass + fail)) = 0 ]; then
  echo "test: FAILED: no test point ran"
  rc=1
fi
[ "$rc" != 0 ] || [ "$fail" = 0 ] || rc=1
echo "$pass passed, $fail failed"
exit "$rc"
