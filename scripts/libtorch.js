#!/usr/bin/env node
// Finds the libtorch installs on this machine: the one place that knows where libtorch lives, for
// the run-time loader (src/native.ts picks the prebuilt binary that fits one of them), the install
// hook (scripts/build-native.js) and binding.gyp (`<!(node scripts/libtorch.js include)` …).
//
// Search order (the README's "what the loader looks for"):
//   1. DIFFUSION_SEARCH_LIBTORCH: a libtorch root, its lib/ directory, or a PyTorch package dir;
//      when set, nothing else is searched.
//   2. Torch_DIR (the CMake directory, …/share/cmake/Torch, that source builds use).
//   3. directories on LD_LIBRARY_PATH that hold libtorch_cpu.so*.
//   4. the system library directories: /usr/lib/<multiarch> (Debian's libtorch-dev / libtorch1.x),
//      /usr/local/lib, /usr/lib64, /opt/libtorch/lib, /usr/local/libtorch/lib.
//   5. the PyTorch that `python3` imports (DIFFUSION_SEARCH_PYTHON overrides the interpreter),
//      then /usr/bin/python3's. Found with importlib's find_spec: torch itself is never imported.
// Steps 1-4 only stat and read small files; step 5 starts Python, so callers ask for it only when
// the cheap steps found nothing that fits (`python: false`).
//
// Each install is described by: libDir, version (major.minor.patch as far as known), mm
// (major.minor: the compatibility key), cxx11abi (0/1, from libc10's symbol names), cuda (the CUDA
// major.minor libtorch was built with, or null), style ('system': versioned sonames such as
// libtorch_cpu.so.1.13, as Debian ships; 'pytorch': plain libtorch_cpu.so, as PyTorch wheels and
// the libtorch zips do), includeDirs (when headers are present: needed to build, not to run).
'use strict';
const fs = require('node:fs');
const path = require('node:path');
const { spawnSync } = require('node:child_process');

const MULTIARCH = { x64: 'x86_64-linux-gnu', arm64: 'aarch64-linux-gnu', ppc64: 'powerpc64le-linux-gnu', s390x: 's390x-linux-gnu' };

function exists(p) {
  try {
    fs.statSync(p);
    return true;
  } catch {
    return false;
  }
}

function readdir(dir) {
  try {
    return fs.readdirSync(dir);
  } catch {
    return [];
  }
}

/** The file in `dir` that provides `lib` (e.g. libtorch_cpu): lib.so, else the shortest lib.so.X.Y. */
function libFile(dir, lib) {
  const names = readdir(dir).filter((n) => n === `${lib}.so` || n.startsWith(`${lib}.so.`));
  if (!names.length) return null;
  names.sort((a, b) => a.length - b.length);
  return path.join(dir, names[0]);
}

function versionFromHeader(includeRoot) {
  const h = path.join(includeRoot, 'torch', 'csrc', 'api', 'include', 'torch', 'version.h');
  try {
    const text = fs.readFileSync(h, 'utf8');
    const v = /#define TORCH_VERSION "([^"]+)"/.exec(text);
    if (v) return v[1];
    const maj = /TORCH_VERSION_MAJOR (\d+)/.exec(text);
    const min = /TORCH_VERSION_MINOR (\d+)/.exec(text);
    const pat = /TORCH_VERSION_PATCH (\d+)/.exec(text);
    if (maj && min) return `${maj[1]}.${min[1]}${pat ? '.' + pat[1] : ''}`;
  } catch {
    /* no headers */
  }
  return null;
}

/** 1 when libc10 was compiled with the C++11 std::string ABI, 0 when not, null when unknown. */
function cxx11abi(libDir) {
  const f = libFile(libDir, 'libc10');
  if (!f) return null;
  try {
    const buf = fs.readFileSync(f);
    return buf.includes('St7__cxx11') || buf.includes('NSt7__cxx11') ? 1 : 0;
  } catch {
    return null;
  }
}

/**
 * Describes the libtorch whose libraries are in libDir, or null when there is none.
 * `extra`: what the caller knows (from, version, cuda, torchDir).
 */
function describeDir(libDir, extra = {}) {
  const cpu = libFile(libDir, 'libtorch_cpu');
  if (!cpu || !libFile(libDir, 'libc10') || !libFile(libDir, 'libtorch')) return null;
  let real;
  try {
    real = fs.realpathSync(cpu);
  } catch {
    return null;
  }
  const m = /\.so\.(\d+\.\d+(?:\.\d+)?)$/.exec(path.basename(real));
  const style = m ? 'system' : 'pytorch';
  const realDir = path.dirname(real);
  // Headers: <root>/include next to lib/, else /usr/include for the system directories.
  let includeRoot = null;
  for (const root of [path.dirname(libDir), path.dirname(realDir), extra.torchDir, '/usr'].filter(Boolean)) {
    if (exists(path.join(root, 'include', 'torch', 'csrc', 'api', 'include', 'torch', 'torch.h'))) {
      includeRoot = path.join(root, 'include');
      break;
    }
  }
  if (includeRoot === '/usr/include' && !realDir.startsWith('/usr/lib')) includeRoot = null;
  let version = extra.version || null;
  if (!version && includeRoot) version = versionFromHeader(includeRoot);
  if (!version) {
    // libtorch zips: <root>/build-version holds e.g. 2.5.1+cu121.
    try {
      version = fs.readFileSync(path.join(path.dirname(libDir), 'build-version'), 'utf8').trim();
    } catch {
      /* none */
    }
  }
  if (!version && m) version = m[1];
  let cuda = extra.cuda === undefined ? undefined : extra.cuda;
  const hasCudaLib = !!libFile(libDir, 'libtorch_cuda');
  if (cuda === undefined) {
    const cu = version && /\+cu(\d+)(\d)$/.exec(version);
    cuda = cu ? `${cu[1]}.${cu[2]}` : hasCudaLib ? 'unknown' : null;
  }
  if (cuda && !hasCudaLib) cuda = null;
  const vm = version && /^(\d+)\.(\d+)/.exec(version);
  return {
    from: extra.from || libDir,
    libDir,
    realDir,
    version: version || 'unknown',
    mm: vm ? `${vm[1]}.${vm[2]}` : null,
    cxx11abi: cxx11abi(libDir),
    cuda: cuda || null,
    cudaMajor: cuda && /^\d+/.test(cuda) ? Number(/^\d+/.exec(cuda)[0]) : null,
    style,
    includeDirs: includeRoot ? [includeRoot, path.join(includeRoot, 'torch', 'csrc', 'api', 'include')] : null,
  };
}

/** A path given by the user: a libtorch root, its lib dir, a torch package dir, or Torch_DIR. */
function describeGiven(p, from) {
  const dirs = [p, path.join(p, 'lib'), path.resolve(p, '..', '..', '..', 'lib'), path.resolve(p, '..', '..', '..')];
  for (const d of dirs) {
    const torchDir = path.basename(path.dirname(d)) === 'torch' ? path.dirname(d) : undefined;
    const c = describeDir(d, { from, torchDir, ...(torchDir ? pyVersion(torchDir) : {}) });
    if (c) return c;
  }
  return null;
}

/** __version__ and cuda from torch/version.py, without importing torch. */
function pyVersion(torchDir) {
  try {
    const text = fs.readFileSync(path.join(torchDir, 'version.py'), 'utf8');
    const v = /__version__\s*=\s*'([^']+)'/.exec(text);
    const c = /^cuda\s*(?::[^=]*)?=\s*'([^']+)'/m.exec(text);
    return { version: v ? v[1] : undefined, cuda: c ? c[1] : null };
  } catch {
    return { version: undefined, cuda: undefined };
  }
}

/** The torch package directory that `python` would import, or null (fast: no import of torch). */
function pythonTorchDir(python) {
  const r = spawnSync(python, ['-c', "import importlib.util as u; s = u.find_spec('torch'); print(s.origin if s and s.origin else '')"], {
    encoding: 'utf8',
    timeout: 15000,
    stdio: ['ignore', 'pipe', 'ignore'],
  });
  const origin = r.status === 0 ? r.stdout.trim() : '';
  return origin ? path.dirname(origin) : null;
}

function fromPython(python) {
  const torchDir = pythonTorchDir(python);
  if (!torchDir) return null;
  const { version, cuda } = pyVersion(torchDir);
  return describeDir(path.join(torchDir, 'lib'), { from: `the PyTorch of ${python} (${torchDir})`, version, cuda, torchDir });
}

/**
 * The libtorch installs found, in search order, without duplicates (same real directory).
 * options.python: false skips step 5; 'only' runs only step 5.
 */
function findLibtorch(options = {}) {
  const env = options.env || process.env;
  const out = [];
  const seen = new Set();
  const add = (c) => {
    if (!c || seen.has(c.realDir)) return;
    seen.add(c.realDir);
    out.push(c);
  };
  if (env.DIFFUSION_SEARCH_LIBTORCH) {
    const c = describeGiven(path.resolve(env.DIFFUSION_SEARCH_LIBTORCH), `DIFFUSION_SEARCH_LIBTORCH=${env.DIFFUSION_SEARCH_LIBTORCH}`);
    return c ? [c] : [];
  }
  if (options.python !== 'only') {
    if (env.Torch_DIR) add(describeGiven(path.resolve(env.Torch_DIR), `Torch_DIR=${env.Torch_DIR}`));
    for (const d of (env.LD_LIBRARY_PATH || '').split(':').filter(Boolean)) add(describeDir(d, { from: `LD_LIBRARY_PATH (${d})` }));
    const multiarch = MULTIARCH[process.arch];
    const system = [multiarch && `/usr/lib/${multiarch}`, '/usr/local/lib', '/usr/lib64', '/usr/lib', '/opt/libtorch/lib', '/usr/local/libtorch/lib'];
    for (const d of system.filter(Boolean)) add(describeDir(d, { from: `the system libraries (${d})` }));
  }
  if (options.python !== false) {
    const pythons = [env.DIFFUSION_SEARCH_PYTHON || 'python3', '/usr/bin/python3'];
    for (const py of [...new Set(pythons)]) add(fromPython(py));
  }
  return out;
}

/** One line for messages: "libtorch 1.13.0 (CPU, C++11 ABI, system sonames) in /usr/lib/… — from …". */
function describe(c) {
  const dev = c.cuda ? `CUDA ${c.cuda}` : 'CPU';
  const abi = c.cxx11abi === 1 ? 'C++11 ABI' : c.cxx11abi === 0 ? 'pre-C++11 ABI' : 'ABI unknown';
  return `libtorch ${c.version} (${dev}, ${abi}, ${c.style} sonames) in ${c.libDir} — from ${c.from}`;
}

/** The libtorch a source build uses: the first install found that has headers. */
function forBuild(env = process.env) {
  const cheap = findLibtorch({ env, python: false }).find((c) => c.includeDirs);
  return cheap || findLibtorch({ env, python: 'only' }).find((c) => c.includeDirs) || null;
}

/** The library files a binary built against `c` links: the files themselves (sonames differ by style). */
function linkFiles(c) {
  return ['libtorch', 'libtorch_cpu', 'libc10'].map((l) => libFile(c.libDir, l)).filter(Boolean);
}

module.exports = { findLibtorch, describe, describeDir, forBuild, linkFiles, libFile, pyVersion };

if (require.main === module) {
  const what = process.argv[2] || 'json';
  if (what === 'list') {
    for (const c of findLibtorch()) console.log(describe(c));
    process.exit(0);
  }
  const c = forBuild();
  if (!c) {
    console.error(
      'diffusion-search: no libtorch with headers found (looked at DIFFUSION_SEARCH_LIBTORCH, Torch_DIR, LD_LIBRARY_PATH, ' +
        'the system library directories and python3\'s PyTorch). Install one: apt-get install -y libtorch-dev, or pip install torch.',
    );
    process.exit(1);
  }
  // binding.gyp's <!@(...) expansions split on whitespace: one item per word.
  if (what === 'include') console.log(c.includeDirs.join(' '));
  else if (what === 'libs') console.log(linkFiles(c).join(' '));
  else if (what === 'libdir') console.log(c.libDir);
  else if (what === 'abi') console.log(c.cxx11abi === null ? 1 : c.cxx11abi);
  else if (what === 'version') console.log(c.version);
  else console.log(JSON.stringify(c, null, 2));
}
