#!/usr/bin/env bash
# `npm run bench`: installs the benchmark peers and tools (scripts/setup.sh --bench: restic,
# borgbackup, fio, rclone, attr), builds tierfs into dist/, then runs every
# test/bench/*.bench.ts one after another, from the project folder.
#
#   bash scripts/bench.sh [NAME ...] [-- | --OPTION ...]
#     NAME       only these benchmarks (test/bench/NAME.bench.ts, or a path to a .bench.ts)
#     --OPTION   passed to every benchmark, e.g. `npm run bench -- --quick`
#
# How they run: `node --import @tapjs/typescript/import FILE.bench.ts`, the TypeScript loader tap
# itself uses (already a dev dependency). Benchmarks are not compiled: they start helpers such as
# test/bench/workload.ts beside themselves by their .ts path, and they time the tierfs daemon, which
# runs compiled from dist/ (hence the build first), in child processes, so the loader costs no
# timed work. Results go to ./bench-out (git-ignored; BENCH_OUT_DIR tells a benchmark where).
# Exits non-zero if any benchmark fails; with no benchmarks it says so and exits 0.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

benches=() bench_args=()
for arg in "$@"; do
  case "$arg" in
    --) ;;
    -*) bench_args+=("$arg") ;;
    */*|*.ts)
      [ -f "$arg" ] || { echo "bench: no such benchmark: $arg" >&2; exit 2; }
      benches+=("$arg")
      ;;
    *)
      [ -f "test/bench/$arg.bench.ts" ] || { echo "bench: no such benchmark: test/bench/$arg.bench.ts" >&2; exit 2; }
      benches+=("test/bench/$arg.bench.ts")
      ;;
  esac
done
if [ "${#benches[@]}" = 0 ]; then
  mapfile -t benches < <(find test/bench -maxdepth 1 -name '*.bench.ts' 2>/dev/null | LC_ALL=C sort)
fi
if [ "${#benches[@]}" = 0 ]; then
  echo "bench: no benchmarks (test/bench/*.bench.ts) yet; nothing to run."
  exit 0
fi

bash scripts/setup.sh --bench --test --build

export BENCH_OUT_DIR="$ROOT/bench-out"
mkdir -p "$BENCH_OUT_DIR"
passed=() failed=()
for f in "${benches[@]}"; do
  echo
  echo "=== bench: $f ${bench_args[*]}"
  start=$(date +%s)
  if node --import @tapjs/typescript/import "$f" "${bench_args[@]}"; then
    passed+=("$f")
    echo "=== bench: $f done in $(($(date +%s) - start)) s"
  else
    rc=$?
    failed+=("$f (exit $rc)")
    echo "=== bench: $f FAILED (exit $rc) after $(($(date +%s) - start)) s"
  fi
done

echo
echo "bench: results in bench-out/"
if [ "${#failed[@]}" -gt 0 ]; then
  echo "bench: FAILED:"
  printf '  %s\n' "${failed[@]}"
fi
echo "${#passed[@]} passed, ${#failed[@]} failed"
[ "${#failed[@]}" = 0 ]
