#!/usr/bin/env bash
# The main job on the embedded default model, from a fresh clone: installs what is missing,
# builds, then runs EvoSearch for shirts (the hardest class) and writes out/demo/.
set -euo pipefail
cd "$(dirname "$0")/../.."
bash scripts/install/install-deps.sh
[[ -d node_modules ]] || npm ci
[[ -f lib/cli/index.js && -f build/Release/ds_native.node ]] || npm run build
node lib/cli/index.js generate --model fashion-flow --class Shirt --algorithm evosearch --budget 500 --n 8 --steps 10 \
  --out out/demo "$@"
