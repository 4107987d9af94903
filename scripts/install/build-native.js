#!/usr/bin/env node
// Builds the native addon from source. Two builds:
//   cmake-js over CMakeLists.txt — the full build (CUDA kernels when nvcc is found and the libtorch
//     has CUDA); needs cmake and cmake-js (a dev dependency here; users: npm install cmake-js).
//   node-gyp over binding.gyp — the CPU addon, with the node-gyp that npm bundles; needs g++ only.
// Default: cmake-js when it and cmake are installed, else node-gyp. --cmake / --gyp (or
// DIFFUSION_SEARCH_BUILDER=cmake-js|node-gyp) choose.
// `--if-needed` (the npm install hook) first asks the loader (lib/native.js) whether a binary
// already fits: a prebuild whose libtorch is here, or an earlier build. Then nothing is compiled.
'use strict';
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const root = path.resolve(__dirname, '..', '..');
const args = process.argv.slice(2);
const ifNeeded = args.includes('--if-needed');

function onPath(cmd) {
  return (process.env.PATH || '').split(path.delimiter).some((d) => {
    try {
      fs.accessSync(path.join(d, cmd), fs.constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}

if (ifNeeded && !process.env.DIFFUSION_SEARCH_BUILD_FROM_SOURCE) {
  const loader = path.join(root, 'lib', 'native.js');
  if (fs.existsSync(loader)) {
    try {
      const { native, nativeSource } = require(loader);
      native();
      const s = nativeSource();
      console.log(
        `diffusion-search: using the ${s.kind === 'prebuild' ? `prebuilt binary from ${s.package}` : s.kind} ` +
          `${path.relative(root, s.file) || s.file}: ${s.reason}. Nothing to compile.`,
      );
      process.exit(0);
    } catch (e) {
      console.log(
        'diffusion-search: no prebuilt binary fits here; building from source.\n  ' +
          `(${String(e.message).split('\n').join('\n   ')})`,
      );
    }
  } else {
    console.log('diffusion-search: no lib/ (a git checkout): building the addon from source');
  }
}

const jobs = process.env.DS_BUILD_JOBS || String(require('node:os').availableParallelism?.() ?? 2);
let cmakeJs = null;
try {
  cmakeJs = require.resolve('cmake-js/bin/cmake-js', { paths: [root] });
} catch {
  /* not installed */
}
const wanted = args.includes('--gyp')
  ? 'node-gyp'
  : args.includes('--cmake')
    ? 'cmake-js'
    : process.env.DIFFUSION_SEARCH_BUILDER;
const builder = wanted || (cmakeJs && onPath('cmake') ? 'cmake-js' : 'node-gyp');
const compiler = ['c++', 'g++', 'clang++'].some(onPath);

const HOWTO =
  '  Debian/Ubuntu:  apt-get install -y g++ libtorch-dev            (CPU build with node-gyp)\n' +
  '                  apt-get install -y cmake && npm install cmake-js   (full build, CUDA when nvcc and a CUDA ' +
  'libtorch are found)\n' +
  "  PyTorch users:  export Torch_DIR=$(python3 -c 'import torch; print(torch.utils.cmake_prefix_path)')/Torch\n" +
  '  Or install a prebuilt binary that fits your libtorch: npm install diffusion-search-linux-x64-cpu (Debian ' +
  'libtorch 1.13)\n';

if (!compiler) {
  console.error(`diffusion-search: cannot build the native addon: no C++ compiler on PATH.\n${HOWTO}`);
  // An install without a compiler still completes: using the library then throws NATIVE_LOAD, which
  // lists the binaries and libtorch installs found and what to install.
  process.exit(ifNeeded ? 0 : 1);
}

let result;
if (builder === 'cmake-js') {
  if (!cmakeJs) {
    console.error(
      'diffusion-search: the cmake-js build needs cmake-js: npm install cmake-js (or build the CPU addon with ' +
        `node-gyp: --gyp).\n${HOWTO}`,
    );
    process.exit(1);
  }
  const cmakeArgs = [cmakeJs, 'compile', '--directory', root, '--parallel', jobs];
  if (process.env.Torch_DIR) cmakeArgs.push(`--CDTorch_DIR=${process.env.Torch_DIR}`);
  if (process.env.DS_BUILD_CUDA !== undefined) cmakeArgs.push(`--CDDS_BUILD_CUDA=${process.env.DS_BUILD_CUDA}`);
  console.log(`diffusion-search: building with cmake-js (${jobs} jobs)`);
  result = spawnSync(process.execPath, cmakeArgs, { stdio: 'inherit', cwd: root });
} else {
  if (process.env.DS_BUILD_CUDA === '1') {
    console.error(
      'diffusion-search: DS_BUILD_CUDA=1 needs the cmake-js build (binding.gyp builds the CPU addon only): npm ' +
        'install cmake-js',
    );
    process.exit(1);
  }
  let gyp = process.env.npm_config_node_gyp;
  if (!gyp || !fs.existsSync(gyp)) {
    const npmGyp = path.join(
      path.dirname(process.execPath),
      '..',
      'lib',
      'node_modules',
      'npm',
      'node_modules',
      'node-gyp',
      'bin',
      'node-gyp.js',
    );
    gyp = fs.existsSync(npmGyp) ? npmGyp : null;
  }
  const gypArgs = gyp ? [process.execPath, [gyp]] : ['node-gyp', []];
  console.log(`diffusion-search: building the CPU addon with node-gyp (binding.gyp, ${jobs} jobs)`);
  result = spawnSync(gypArgs[0], [...gypArgs[1], 'rebuild', '--jobs', jobs], { stdio: 'inherit', cwd: root });
}
if (result.status !== 0) {
  console.error(
    `\ndiffusion-search: the native build (${builder}) failed. It needs a C++17 compiler and libtorch with its ` +
      `headers:\n${HOWTO}`,
  );
  process.exit(result.status ?? 1);
}
