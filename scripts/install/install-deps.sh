#!/usr/bin/env bash
# Installs what a fresh Debian machine lacks to build and run diffusion-search (as root, or via sudo).
# When another apt or dpkg holds the package lock (unattended upgrades on a fresh machine, a second
# install), it waits for it — up to DS_APT_LOCK_WAIT seconds (default 600), saying who holds it —
# instead of failing at once.
set -euo pipefail
lock_wait=${DS_APT_LOCK_WAIT:-600}
locks=(/var/lib/dpkg/lock-frontend /var/lib/dpkg/lock /var/lib/apt/lists/lock /var/cache/apt/archives/lock)

# The pid holding a POSIX lock on one of the apt/dpkg lock files, or nothing. apt takes these
# locks with fcntl, so /proc/locks names the holder; the files' inodes identify them there.
lock_holder() {
  local f inode
  for f in "${locks[@]}"; do
    [[ -e $f ]] || continue
    inode=$(stat -c %i "$f")
    awk -v ino="$inode" \
      '$2 == "POSIX" || $2 == "OFDLCK" { split($6, a, ":"); if (a[3] == ino) { print $5; exit } }' /proc/locks
  done | head -n 1
}

holder_name() { ps -o comm= -p "$1" 2>/dev/null || echo '?'; }

wait_for_apt() {
  local waited=0 pid
  while pid=$(lock_holder) && [[ -n $pid ]]; do
    if ((waited >= lock_wait)); then
      echo "install-deps: the package lock is still held by pid $pid ($(holder_name "$pid")) after ${lock_wait} s;" \
        "wait for it to finish (or stop it) and run again" >&2
      return 1
    fi
    ((waited % 30 == 0)) \
      && echo "install-deps: waiting for pid $pid ($(holder_name "$pid")) to release the package lock" \
        "(up to ${lock_wait} s)" >&2
    sleep 1
    waited=$((waited + 1))
  done
}

# `install-deps.sh --wait-lock` only waits for the lock (the tests use it on a lock they hold).
if [[ ${1:-} == --wait-lock ]]; then
  wait_for_apt
  exit
fi
# `--browser` (CI) also installs chromium for the playground's browser tests, if it can.
browser=0
[[ ${1:-} == --browser ]] && browser=1

need=()
dpkg -s libtorch-dev >/dev/null 2>&1 || need+=(libtorch-dev)
dpkg -s python3-torch >/dev/null 2>&1 || need+=(python3-torch)            # training/export scripts, test fixtures
dpkg -s dataset-fashion-mnist >/dev/null 2>&1 || need+=(dataset-fashion-mnist)  # tests on the real test split
command -v cmake >/dev/null 2>&1 || need+=(cmake)
command -v g++ >/dev/null 2>&1 || need+=(g++)
command -v ninja >/dev/null 2>&1 || need+=(ninja-build)
# the queue tests and bench:queue start their own server
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
if ((${#need[@]})); then
  echo "install-deps: installing ${need[*]}"
  sudo=""
  [[ $(id -u) -ne 0 ]] && sudo="sudo"
  export DEBIAN_FRONTEND=noninteractive
  # apt also waits on the lock itself (DPkg::Lock::Timeout) for the moment between our check and its start.
  wait_for_apt
  $sudo apt-get -o DPkg::Lock::Timeout="$lock_wait" update
  wait_for_apt
  $sudo apt-get -o DPkg::Lock::Timeout="$lock_wait" install -y --no-install-recommends "${need[@]}"
fi
# Best effort: where no chromium package exists, test/playground.test.ts skips and says why.
if ((browser)) && ! command -v chromium >/dev/null 2>&1; then
  echo "install-deps: installing chromium (the playground's browser tests)"
  [[ $(id -u) -ne 0 ]] && sudo="sudo" || sudo=""
  wait_for_apt
  apt_get() { DEBIAN_FRONTEND=noninteractive $sudo apt-get -o DPkg::Lock::Timeout="$lock_wait" "$@"; }
  apt_get install -y chromium || { apt_get update && apt_get install -y chromium; } \
    || echo "install-deps: could not install chromium: the playground's browser tests will skip" >&2
fi
if command -v nvcc >/dev/null 2>&1; then
  echo "install-deps: nvcc found (the build compiles CUDA kernels only when the libtorch has CUDA too)"
else
  echo "install-deps: no nvcc: CPU kernels only"
fi
