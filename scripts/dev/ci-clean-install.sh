#!/usr/bin/env bash
# Installs the packed package as a user would, where no compiler exists, and checks it runs.
#   1. the CPU prebuild (npm run prebuild) and both tarballs: diffusion-search and
#      diffusion-search-linux-x64-cpu (npm pack); the main tarball is checked for strays.
#   2. a fresh project whose PATH holds node, npm, sh and python3 only (no cmake, g++, make, nvcc),
#      with no LD_LIBRARY_PATH or Torch_DIR: npm install of both tarballs; the log must show the
#      prebuild taken and nothing compiled; `diffusion-search info --json` and a tiny generate.
#   3. the same with npm install --ignore-scripts: the loader still finds the prebuild.
#   4. with --source: the main tarball alone where g++ is present (no prebuild, no cmake-js):
#      the install hook builds the CPU addon with node-gyp (binding.gyp); then info, generate and
#      the addon smoke tests (vitest, DIFFUSION_SEARCH_NATIVE=that build).
# Needs: lib/ and build/Release/ds_native.node (npm run build). Sizes and times are printed last.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
source_build=0
[[ ${1:-} == --source ]] && source_build=1
work=$(mktemp -d "${TMPDIR:-/tmp}/ds-clean-install.XXXXXX")
trap 'rm -rf "$work"' EXIT
summary=()
fail() { echo "ci-clean-install: FAIL: $*" >&2; exit 1; }

[[ -f lib/native.js && -f build/Release/ds_native.node ]] || fail "build first: npm run build"

echo "== 1. prebuild and pack"
rm -rf npm/linux-x64-cpu/prebuilds
node scripts/install/prebuild.js
main_tgz=$(npm pack --ignore-scripts --silent --pack-destination "$work" | tail -1)
cpu_tgz=$(npm pack ./npm/linux-x64-cpu --silent --pack-destination "$work" | tail -1)
ls -l "$work"/*.tgz
tar -tzf "$work/$main_tgz" > "$work/main.list"
unwanted='^package/(native/kernels/test/|build/|checkpoints/|out/|prebuilds/|test/|bench/|src/|scripts/(dev|train)/'
unwanted+='|\.gpu/)|\.node$|\.o$|\.map$'
if grep -E "$unwanted" "$work/main.list"; then
  fail "the main tarball holds the files above"
fi
for f in binding.gyp CMakeLists.txt lib/native.js lib/libtorch.js scripts/install/libtorch.js \
  scripts/install/build-native.js native/addon/addon.cpp models/gmm2d.pt; do
  grep -qx "package/$f" "$work/main.list" || fail "the main tarball lacks $f"
done
tagged='^package/prebuilds/linux-x64/ds_native\.napi\.glibc\.napi[0-9]+\.torch[0-9]+_[0-9]+'
tagged+='\.cxx11abi[01]\.(system|pytorch)\.cpu\.node$'
tar -tzf "$work/$cpu_tgz" | grep -E "$tagged" \
  || fail "the cpu variant tarball holds no tagged prebuild"
size() { stat -c %s "$1" | awk '{ printf "%.2f MB", $1 / 1e6 }'; }
summary+=("tarball $main_tgz: $(size "$work/$main_tgz") ($(wc -l < "$work/main.list") files)")
summary+=("tarball $cpu_tgz: $(size "$work/$cpu_tgz")")

# A PATH with no compiler or build tool: node, npm, npx, sh, bash, env and python3 only.
mkdir -p "$work/bin"
for t in node npm npx sh bash env python3; do ln -s "$(command -v $t)" "$work/bin/$t"; done
ln -sf /usr/bin/python3 "$work/bin/python3" 2>/dev/null || true
clean_env=(env -u LD_LIBRARY_PATH -u Torch_DIR -u DIFFUSION_SEARCH_NATIVE -u DIFFUSION_SEARCH_LIBTORCH
  -u DIFFUSION_SEARCH_VARIANT
  -u CXX -u CC PATH="$work/bin" OMP_WAIT_POLICY=PASSIVE)
"${clean_env[@]}" bash -c \
  'for t in cmake g++ gcc c++ cc make nvcc clang++; do if command -v $t; then exit 1; fi; done' \
  || fail "the clean PATH still has a compiler or build tool"

new_project() {
  mkdir -p "$1"
  echo '{ "name": "app", "version": "1.0.0", "private": true }' > "$1/package.json"
}

smoke() { # dir label expected-kind expected-package-or-tool
  local dir=$1 label=$2
  (cd "$dir" && "${clean_env[@]}" npx --no-install diffusion-search info --json > info.json) \
    || fail "$label: info failed"
  node -e '
    const i = require(process.argv[1]), [label, kind, what] = process.argv.slice(2);
    const ok = i.native.kind === kind && (i.native.package === what || i.native.build.tool === what);
    console.log(`${label}: info: ${i.native.kind} ${i.native.package ?? ""} built by ${i.native.build.tool}, ` +
      `libtorch ${i.torch.version}, CUDA off: ${i.cuda.off}`);
    if (!ok) { console.error(JSON.stringify(i.native, null, 2)); process.exit(1); }' \
    "$dir/info.json" "$label" "$3" "$4" || fail "$label: wrong binary"
  (cd "$dir" && "${clean_env[@]}" npx --no-install diffusion-search generate --model gmm2d --budget 40 --n 2 \
    --steps 4 --out out > gen.log 2>&1) \
    || { cat "$dir/gen.log"; fail "$label: generate failed"; }
  [[ -f $dir/out/report.json && -f $dir/out/samples.npy ]] || fail "$label: generate wrote no report"
}

echo "== 2. install both tarballs with no compiler on PATH"
new_project "$work/app"
t0=$(date +%s.%N)
(cd "$work/app" && "${clean_env[@]}" npm install --foreground-scripts --no-audit --no-fund --prefer-offline \
  "$work/$main_tgz" "$work/$cpu_tgz" > install.log 2>&1) || { cat "$work/app/install.log"; fail "npm install failed"; }
t1=$(date +%s.%N)
sed 's/^/  | /' "$work/app/install.log" | grep -v '^  | $' | tail -8
grep -q 'using the prebuilt binary from diffusion-search-linux-x64-cpu' "$work/app/install.log" \
  || fail "the install hook did not take the prebuild"
compiled='gyp info|CXX\(target\)|cmake-js|building (the|with)|-- The CXX compiler|g\+\+ '
if grep -Ei "$compiled" "$work/app/install.log"; then
  fail "the install compiled"
fi
smoke "$work/app" "install" prebuild diffusion-search-linux-x64-cpu
summary+=("install (no compiler on PATH): $(awk "BEGIN { printf \"%.1f\", $t1 - $t0 }") s, nothing compiled")

echo "== 3. npm install --ignore-scripts"
new_project "$work/app-noscripts"
(cd "$work/app-noscripts" && "${clean_env[@]}" npm install --ignore-scripts --no-audit --no-fund --prefer-offline \
  "$work/$main_tgz" "$work/$cpu_tgz" > install.log 2>&1) \
  || { cat "$work/app-noscripts/install.log"; fail "npm install --ignore-scripts failed"; }
smoke "$work/app-noscripts" "--ignore-scripts" prebuild diffusion-search-linux-x64-cpu

echo "== 3b. the main tarball alone, no compiler: the install completes, the library says what to install"
new_project "$work/app-none"
(cd "$work/app-none" && "${clean_env[@]}" npm install --foreground-scripts --no-audit --no-fund --prefer-offline \
  "$work/$main_tgz" > install.log 2>&1) \
  || { cat "$work/app-none/install.log"; fail "npm install of the main tarball alone failed"; }
grep -q 'no C++ compiler on PATH' "$work/app-none/install.log" \
  || fail "the install hook did not say that it cannot build"
if (cd "$work/app-none" && "${clean_env[@]}" npx --no-install diffusion-search info > info.txt 2>&1); then
  fail "info loaded a binary that is not installed"
fi
sed 's/^/  | /' "$work/app-none/info.txt"
grep -q 'NATIVE_LOAD' "$work/app-none/info.txt" \
  && grep -q 'diffusion-search-linux-x64-cpu not installed' "$work/app-none/info.txt" \
  || fail "no NATIVE_LOAD error naming the missing variant package"

if ((source_build)); then
  echo "== 4. the main tarball alone, g++ present: the install hook builds binding.gyp with node-gyp"
  new_project "$work/app-source"
  t0=$(date +%s.%N)
  (cd "$work/app-source" && env -u LD_LIBRARY_PATH -u DIFFUSION_SEARCH_NATIVE DS_BUILD_JOBS="${DS_BUILD_JOBS:-2}" \
    npm install --foreground-scripts --no-audit --no-fund --prefer-offline "$work/$main_tgz" > install.log 2>&1) \
    || { tail -40 "$work/app-source/install.log"; fail "the source install failed"; }
  t1=$(date +%s.%N)
  grep -q 'building the CPU addon with node-gyp' "$work/app-source/install.log" \
    || { tail -20 "$work/app-source/install.log"; fail "the source install did not use node-gyp"; }
  built="$work/app-source/node_modules/diffusion-search/build/Release/ds_native.node"
  [[ -f $built ]] || fail "node-gyp left no $built"
  smoke "$work/app-source" "source (node-gyp)" build node-gyp
  summary+=("source install (node-gyp, binding.gyp): $(awk "BEGIN { printf \"%.0f\", $t1 - $t0 }") s")
  echo "   addon smoke tests on the node-gyp build"
  DIFFUSION_SEARCH_NATIVE="$built" OMP_WAIT_POLICY=PASSIVE npx vitest run \
    test/tensor.test.ts test/stream.test.ts test/module.test.ts test/kernels.test.ts \
    || fail "addon smoke tests on the node-gyp build"
fi

echo "== ci-clean-install: all passed"
printf '  %s\n' "${summary[@]}"
