#!/usr/bin/env bash
# Build and run the ds::kernels tests (no torch, no Node).
#   1. CPU test: g++ -fopenmp, every CPU op vs an independent float64 reference; runs here,
#      again with the Philox paths capped at AVX2 and at scalar code (DS_KERNELS_ISA).
#   2. nvcc: compiles every native/kernels/*.cu (warnings are errors).
#   3. CUDA test: links the CUDA and CPU kernels into kernels_cuda_test (CUDA == CPU check);
#      runs only when a GPU is visible (skipped otherwise).
# Env: CXX (g++), NVCC (/usr/local/cuda/bin/nvcc or nvcc on PATH), NVCC_ARCH (default
# "-gencode arch=compute_80,code=sm_80 -gencode arch=compute_90,code=sm_90"), BUILD_DIR,
# SKIP_CUDA=1 to skip steps 2-3, EXTRA_CXXFLAGS (e.g. -march=native).
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
KDIR="$(cd "$HERE/.." && pwd)"
BUILD_DIR="${BUILD_DIR:-$HERE/build}"
CXX="${CXX:-g++}"
if [[ -z "${NVCC:-}" ]]; then
  if [[ -x /usr/local/cuda/bin/nvcc ]]; then NVCC=/usr/local/cuda/bin/nvcc; else NVCC=nvcc; fi
fi
NVCC_ARCH="${NVCC_ARCH:--gencode arch=compute_80,code=sm_80 -gencode arch=compute_90,code=sm_90}"
CXXFLAGS="-std=c++17 -O3 -fopenmp -ffp-contract=off -fno-math-errno -Wall -Wextra -Werror ${EXTRA_CXXFLAGS:-}"
mkdir -p "$BUILD_DIR"

echo "== 1. CPU kernels + test ($CXX) =="
objs=()
for src in "$KDIR"/*.cpp; do
  obj="$BUILD_DIR/$(basename "${src%.cpp}").o"
  $CXX $CXXFLAGS -fPIC -c "$src" -o "$obj"
  objs+=("$obj")
done
$CXX $CXXFLAGS "$HERE/kernels_test.cpp" "${objs[@]}" -o "$BUILD_DIR/kernels_test"
"$BUILD_DIR/kernels_test" "$@"
# The Philox SIMD paths below the widest one this CPU has must give the same bits too.
for isa in avx2 scalar; do
  echo "== 1b. CPU test with DS_KERNELS_ISA=$isa =="
  DS_KERNELS_ISA=$isa "$BUILD_DIR/kernels_test" "$@" | tail -1
done

if [[ "${SKIP_CUDA:-0}" == "1" ]]; then echo "(CUDA skipped: SKIP_CUDA=1)"; exit 0; fi
if ! command -v "$NVCC" >/dev/null 2>&1; then echo "(CUDA skipped: no nvcc)"; exit 0; fi

echo "== 2. nvcc: compile every .cu ($("$NVCC" --version | tail -1)) =="
cuobjs=()
for src in "$KDIR"/*.cu; do
  obj="$BUILD_DIR/$(basename "${src%.cu}")_cu.o"
  # shellcheck disable=SC2086
  $NVCC -std=c++17 $NVCC_ARCH -O3 -Werror all-warnings -Xcompiler -Wall,-Wextra,-fPIC \
    -c "$src" -o "$obj"
  echo "  ok $(basename "$src")"
  cuobjs+=("$obj")
done

echo "== 3. CUDA vs CPU test =="
# shellcheck disable=SC2086
$NVCC -std=c++17 $NVCC_ARCH -O3 -Werror all-warnings -Xcompiler -Wall,-Wextra,-fopenmp \
  "$HERE/kernels_cuda_test.cu" "${cuobjs[@]}" "${objs[@]}" -o "$BUILD_DIR/kernels_cuda_test" -lgomp
if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
  "$BUILD_DIR/kernels_cuda_test"
else
  echo "(no GPU visible: kernels_cuda_test built, not run)"
fi
