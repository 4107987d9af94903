#!/usr/bin/env node
// Builds the native addon with cmake-js (CMakeLists.txt is the one real build).
// `--if-needed` (the npm install hook) first tries a matching prebuild or an earlier build.
'use strict';
const { spawnSync } = require('node:child_process');
const path = require('node:path');

const root = path.resolve(__dirname, '..');
const args = process.argv.slice(2);

if (args.includes('--if-needed') && !process.env.DIFFUSION_SEARCH_BUILD_FROM_SOURCE) {
  try {
    require('node-gyp-build')(root);
    console.log('diffusion-search: using an existing native binary (prebuild or build/Release)');
    process.exit(0);
  } catch {
    console.log('diffusion-search: no usable prebuilt binary; building from source with cmake-js');
  }
}

const cmakeJs = require.resolve('cmake-js/bin/cmake-js');
const cmakeArgs = [cmakeJs, 'compile', '--directory', root];
if (process.env.Torch_DIR) cmakeArgs.push(`--CDTorch_DIR=${process.env.Torch_DIR}`);
const jobs = process.env.DS_BUILD_JOBS || String(require('node:os').availableParallelism?.() ?? 2);
cmakeArgs.push('--parallel', jobs);

const result = spawnSync(process.execPath, cmakeArgs, { stdio: 'inherit', cwd: root });
if (result.status !== 0) {
  console.error(
    '\ndiffusion-search: the native build failed. It needs cmake, a C++17 compiler and libtorch:\n' +
      '  Debian/Ubuntu: apt-get install -y cmake g++ libtorch-dev\n' +
      "  PyTorch users: export Torch_DIR=$(python3 -c 'import torch; print(torch.utils.cmake_prefix_path)')/Torch\n",
  );
  process.exit(result.status ?? 1);
}
