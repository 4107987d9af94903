#!/usr/bin/env bash
# Issue 27's figures in one run (bench/RESULTS.md, "Toward the CPU's limit"): the forward in fp32
# and bf16 against python3-torch's fp32 eager forward of the same file (1 and 2 threads), best-of-N
# end to end against the plain PyTorch loop, the serve scenarios with small model calls against
# their ceiling, and bf16's results against fp32's by the eval classifier. Baselines and candidates
# alternate within each bench. Run on a quiet machine: bash scripts/dev/bench-27.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
export OMP_WAIT_POLICY=PASSIVE
ROUNDS=${ROUNDS:-3}
cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2)
echo "== machine: $(nproc) cores,$cpu, load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "== each shipped denoiser as saved, frozen, and frozen with optimize_for_inference (sets OPTIMIZED_FORWARDS)"
node bench/optimize.js --models fashion-flow,fashion-t2i,fashion-video
for t in 1 2; do
  echo "== forward, $t thread(s)"
  node bench/model.js --batches 1,4,16,64 --threads "$t" --repeats 10 --rounds "$ROUNDS" --precision bf16
done
echo "== best-of-N end to end (500 NFE x 4 samples, 10 steps) against the plain PyTorch loop"
node bench/model.js --e2e --threads 2 --repeats "$ROUNDS" --precision bf16
echo "== serve: small model calls, batching on and off, 16 clients"
node bench/serve.js --scenarios plain,zero-order:100,particles-k4:100,evosearch-small:100 --clients 16 \
  --seconds "${SECONDS_PER_CELL:-10}"
echo "== serve in bf16: the 100-NFE scenarios"
node bench/serve.js --scenarios zero-order:100,particles-k4:100,evosearch-small:100 --clients 16 \
  --seconds "${SECONDS_PER_CELL:-10}" --no-under-load --serve-args '--precision bf16'
echo "== bf16 against fp32 by the eval classifier"
node bench/precision.js
echo "== a lone request: one slot of 2 threads (generate's), two slots, one thread"
node scripts/dev/bench-27-lone.js "$ROUNDS"
