#!/usr/bin/env bash
# Installs what a fresh Debian machine lacks to build and run diffusion-search (as root, or via sudo).
set -euo pipefail
need=()
dpkg -s libtorch-dev >/dev/null 2>&1 || need+=(libtorch-dev)
dpkg -s python3-torch >/dev/null 2>&1 || need+=(python3-torch)            # training/export scripts, test fixtures
dpkg -s dataset-fashion-mnist >/dev/null 2>&1 || need+=(dataset-fashion-mnist)  # tests on the real test split
command -v cmake >/dev/null 2>&1 || need+=(cmake)
command -v g++ >/dev/null 2>&1 || need+=(g++)
command -v ninja >/dev/null 2>&1 || need+=(ninja-build)
if ((${#need[@]})); then
  echo "install-deps: installing ${need[*]}"
  sudo=""
  [[ $(id -u) -ne 0 ]] && sudo="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update
  $sudo apt-get install -y --no-install-recommends "${need[@]}"
fi
if command -v nvcc >/dev/null 2>&1; then echo "install-deps: nvcc found: CUDA kernels are compiled too"; else echo "install-deps: no nvcc: CPU kernels only"; fi
