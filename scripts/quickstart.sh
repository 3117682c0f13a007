#!/usr/bin/env bash
# `npm start`: installs what is missing (scripts/setup.sh --build), creates the store with the
# embedded default configuration if there is none, and mounts it; the daemon runs detached.
#
#   bash scripts/quickstart.sh [STORE [MOUNTPOINT]]     default: ./store and ./mnt in the project
#
# Already mounted by a live daemon: says so and exits 0. A stale mount left by a daemon that died
# (ENOTCONN, visible only in /proc/mounts) is cleaned with `fusermount -uz` first.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
STORE=$(realpath -m -- "${1:-$ROOT/store}")
MNT=$(realpath -m -- "${2:-$ROOT/mnt}")

bash scripts/setup.sh --build

CLI="$ROOT/dist/src/cli/main.js"
tierfs() { node "$CLI" "$@"; }
show() { # a path as the user should type it from the project folder
  case "$1" in "$ROOT"/*) printf './%s' "${1#"$ROOT"/}" ;; *) printf '%s' "$1" ;; esac
}
# The type of the mount at $MNT in /proc/mounts, or nothing.
mount_type() {
  local mp type
  while read -r _ mp type _; do
    if [ "$(printf '%b' "$mp")" = "$MNT" ]; then printf '%s' "$type"; fi
  done </proc/mounts
}
how_to() {
  local s m c
  s=$(show "$STORE") m=$(show "$MNT") c="node $(show "$CLI")"
  cat <<EOF

tierfs is mounted at $m (store $s, daemon log $s/log/tierfs.log).

  Use it:          cp -a /some/files $m/      ls -l $m/
  Check status:    $c status $m      (add --json for machine-readable figures)
  Unmount:         $c umount $m
  Check the store: $c fsck $s      (while unmounted; --repair to fix)
  Shorter:         alias tierfs='node $CLI'   (or install the command: npm link)
EOF
}

if [ ! -f "$STORE/tierfs.json" ]; then
  tierfs init "$STORE"
fi
mkdir -p "$MNT" 2>/dev/null || true

type=$(mount_type)
if [ -n "$type" ]; then
  if timeout 20 node "$CLI" status "$MNT" >/dev/null 2>&1; then
    echo "tierfs is already mounted at $(show "$MNT") by a live daemon; nothing to do."
    how_to
    exit 0
  fi
  case "$type" in
    fuse|fuse.*)
      stat_err=$(LC_ALL=C stat -- "$MNT" 2>&1 >/dev/null || true)
      if [[ "$stat_err" == *"not connected"* ]]; then
        echo "quickstart: cleaning a stale mount at $(show "$MNT") (its daemon is gone)"
        fusermount -uz "$MNT"
      else
        echo "quickstart: ERROR: $(show "$MNT") is a live FUSE mount ($type) that no tierfs daemon answers for." >&2
        echo "            Unmount it (fusermount -u $MNT) and run npm start again." >&2
        exit 1
      fi
      ;;
    *)
      echo "quickstart: ERROR: $(show "$MNT") is already a mount point ($type); choose another." >&2
      exit 1
      ;;
  esac
fi

tierfs mount "$STORE" "$MNT"
how_to
echo
tierfs status "$MNT" || true
