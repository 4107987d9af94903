#!/usr/bin/env bash
# Every GPU check in one call, for a machine with a GPU, nvcc and a CUDA PyTorch:
#   there:  npm ci && npm run build, then bash scripts/dev/gpu-check.sh  (cmake-js is a dev dependency)
#   back here: node scripts/install/prebuild.js --import <files_at>/prebuilds   (the CUDA variant package,
#           npm/linux-x64-cuda<major>/; then npm pack ./npm/linux-x64-cuda<major>)
# 1. native kernels: the CPU test, every .cu through nvcc, CUDA == CPU bit for bit and CUDA
#    bandwidth (native/kernels/test/kernels_cuda_test);
# 2. the addon, built against the machine's CUDA libtorch, tagged as a prebuild in $OUT/prebuilds/;
# 3. every op through the addon, CPU vs CUDA (scripts/dev/gpu-equal.js);
# 4. bench kernels on CUDA (vs_copy: against a device-to-device copy), and the demo on CUDA;
# 5. the serve bench on CUDA, batching on vs off (about 2 min).
# Logs and results go to $OUT or ./gpu-check-out; a summary is
# printed last. Exit status 1 if any check failed.
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-$PWD/gpu-check-out}
mkdir -p "$OUT"
failed=()
SIZES=65536,262144,1048576,4194304,16777216,67108864

nvidia-smi > "$OUT/nvidia-smi.txt" 2>&1 || failed+=("nvidia-smi")
head -12 "$OUT/nvidia-smi.txt"

echo "== 1. native kernels (log: kernels.log)"
bash native/kernels/test/build_and_run.sh > "$OUT/kernels.log" 2>&1 || failed+=("kernels")
grep -E "FAIL|checks|GB/s|skipped|CUDA" "$OUT/kernels.log" | tail -25

echo "== 2. addon against the CUDA libtorch (log: build.log)"
DS_BUILD_JOBS=${DS_BUILD_JOBS:-16} node scripts/install/build-native.js > "$OUT/build.log" 2>&1 || failed+=("build")
tail -3 "$OUT/build.log"
node lib/cli/index.js info | tee "$OUT/info.txt"
node -e 'process.exit(require("./lib").info().cuda.available ? 0 : 1)' || failed+=("addon sees no CUDA device")
node scripts/install/prebuild.js --dest "$OUT" || failed+=("prebuild")

echo "== 3. every op, CPU vs CUDA (log: equal.log)"
node scripts/dev/gpu-equal.js cuda:0 > "$OUT/equal.log" 2>&1 || failed+=("gpu-equal")
grep -E "FAIL|gpu-equal" "$OUT/equal.log"

echo "== 4. bench kernels on CUDA (bench-cuda.json, bench-cuda.txt), demo on CUDA (demo/)"
if node lib/cli/index.js bench kernels --device cuda --sizes "$SIZES" --json \
  > "$OUT/bench-cuda.json" 2> "$OUT/bench.log"; then
  node -e 'const { formatKernelBench } = require("./lib/bench/kernels");
    console.log(formatKernelBench(require(process.argv[1])))' "$OUT/bench-cuda.json" | tee "$OUT/bench-cuda.txt"
else
  failed+=("bench"); tail -5 "$OUT/bench.log"
fi
node lib/cli/index.js generate --model fashion-flow --class Shirt --algorithm evosearch --budget 500 \
  --n 8 --steps 10 --device cuda --out "$OUT/demo" > "$OUT/demo.log" 2>&1 || failed+=("demo")
tail -4 "$OUT/demo.log"

echo "== 5. engine on CUDA: serve bench, batching on vs off (serve-cuda.txt)"
node bench/serve.js --scenarios best-of-n:100,evosearch:500 --clients 1,16 --seconds 5 --no-floor \
  --serve-args '--device cuda' > "$OUT/serve-cuda.txt" 2> "$OUT/serve-cuda.log" || failed+=("serve bench")
tail -14 "$OUT/serve-cuda.txt"

if ((${#failed[@]})); then echo "gpu-check: FAILED: ${failed[*]}"; exit 1; fi
echo "gpu-check: all passed"
