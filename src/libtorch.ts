/**
 * Finds the libtorch installs on this machine: the one place that knows where libtorch lives, for
 * the run-time loader (src/native.ts picks the prebuilt binary that fits one of them), the install
 * hook and binding.gyp (both through scripts/install/libtorch.js, which runs before TypeScript is
 * compiled in a git checkout; so this file imports node builtins only and is transpiled on its own there).
 *
 * Search order (docs/install.md, "What the loader looks for"):
 *   1. DIFFUSION_SEARCH_LIBTORCH: a libtorch root, its lib/ directory, or a PyTorch package dir;
 *      when set, nothing else is searched.
 *   2. Torch_DIR (the CMake directory, …/share/cmake/Torch, that source builds use).
 *   3. directories on LD_LIBRARY_PATH that hold libtorch_cpu.so*.
 *   4. the system library directories: /usr/lib/<multiarch> (Debian's libtorch-dev / libtorch1.x),
 *      /usr/local/lib, /usr/lib64, /opt/libtorch/lib, /usr/local/libtorch/lib.
 *   5. the PyTorch that `python3` imports (DIFFUSION_SEARCH_PYTHON overrides the interpreter),
 *      then /usr/bin/python3's. Found with importlib's find_spec: torch itself is never imported.
 * Steps 1-4 only stat and read small files; step 5 starts Python, so callers ask for it only when
 * the cheap steps found nothing that fits (`python: false`).
 */
import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';

/** A libtorch install found on this machine. */
export interface LibtorchInstall {
  /** Where it was found, for messages. */
  from: string;
  libDir: string;
  /** libDir with symlinks resolved: two finds of one install share it. */
  realDir: string;
  /** major.minor.patch as far as known, or 'unknown'. */
  version: string;
  /** major.minor: the compatibility key. */
  mm: string | null;
  /** From libc10's symbol names: 1 when built with the C++11 std::string ABI. */
  cxx11abi: 0 | 1 | null;
  /** The CUDA major.minor libtorch was built with, or null. */
  cuda: string | null;
  cudaMajor: number | null;
  /** 'system': versioned sonames (libtorch_cpu.so.1.13, as Debian ships); 'pytorch': plain libtorch_cpu.so. */
  style: 'system' | 'pytorch';
  /** When headers are present: needed to build, not to run. */
  includeDirs: string[] | null;
}

/** What a caller knows of a directory before looking at it. */
interface DirExtra {
  from?: string;
  version?: string;
  cuda?: string | null;
  torchDir?: string;
}

export interface FindOptions {
  env?: NodeJS.ProcessEnv;
  /** false skips step 5 (Python); 'only' runs only step 5. */
  python?: boolean | 'only';
}

const MULTIARCH: Record<string, string> = {
  x64: 'x86_64-linux-gnu',
  arm64: 'aarch64-linux-gnu',
  ppc64: 'powerpc64le-linux-gnu',
  s390x: 's390x-linux-gnu',
};

function exists(p: string): boolean {
  try {
    fs.statSync(p);
    return true;
  } catch {
    return false;
  }
}

function readdir(dir: string): string[] {
  try {
    return fs.readdirSync(dir);
  } catch {
    return [];
  }
}

/** The file in `dir` that provides `lib` (e.g. libtorch_cpu): lib.so, else the shortest lib.so.X.Y. */
export function libFile(dir: string, lib: string): string | null {
  const names = readdir(dir).filter((n) => n === `${lib}.so` || n.startsWith(`${lib}.so.`));
  if (!names.length) return null;
  names.sort((a, b) => a.length - b.length);
  return path.join(dir, names[0]);
}

function versionFromHeader(includeRoot: string): string | null {
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
function cxx11abi(libDir: string): 0 | 1 | null {
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
export function describeDir(libDir: string, extra: DirExtra = {}): LibtorchInstall | null {
  const cpu = libFile(libDir, 'libtorch_cpu');
  if (!cpu || !libFile(libDir, 'libc10') || !libFile(libDir, 'libtorch')) return null;
  let real: string;
  try {
    real = fs.realpathSync(cpu);
  } catch {
    return null;
  }
  const m = /\.so\.(\d+\.\d+(?:\.\d+)?)$/.exec(path.basename(real));
  const style = m ? 'system' : 'pytorch';
  const realDir = path.dirname(real);
  // Headers: <root>/include next to lib/, else /usr/include for the system directories.
  let includeRoot: string | null = null;
  for (const root of [path.dirname(libDir), path.dirname(realDir), extra.torchDir, '/usr'].filter(
    (r): r is string => !!r,
  )) {
    if (exists(path.join(root, 'include', 'torch', 'csrc', 'api', 'include', 'torch', 'torch.h'))) {
      includeRoot = path.join(root, 'include');
      break;
    }
  }
  if (includeRoot === '/usr/include' && !realDir.startsWith('/usr/lib')) includeRoot = null;
  let version: string | null = extra.version || null;
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
  let cuda: string | null | undefined = extra.cuda;
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
    cudaMajor: cuda && /^\d+/.test(cuda) ? Number(/^\d+/.exec(cuda)![0]) : null,
    style,
    includeDirs: includeRoot ? [includeRoot, path.join(includeRoot, 'torch', 'csrc', 'api', 'include')] : null,
  };
}

/** A path given by the user: a libtorch root, its lib dir, a torch package dir, or Torch_DIR. */
function describeGiven(p: string, from: string): LibtorchInstall | null {
  const dirs = [p, path.join(p, 'lib'), path.resolve(p, '..', '..', '..', 'lib'), path.resolve(p, '..', '..', '..')];
  for (const d of dirs) {
    const torchDir = path.basename(path.dirname(d)) === 'torch' ? path.dirname(d) : undefined;
    const c = describeDir(d, { from, torchDir, ...(torchDir ? pyVersion(torchDir) : {}) });
    if (c) return c;
  }
  return null;
}

/** __version__ and cuda from torch/version.py, without importing torch. */
export function pyVersion(torchDir: string): { version: string | undefined; cuda: string | null | undefined } {
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
function pythonTorchDir(python: string): string | null {
  const r = spawnSync(
    python,
    ['-c', "import importlib.util as u; s = u.find_spec('torch'); print(s.origin if s and s.origin else '')"],
    {
      encoding: 'utf8',
      timeout: 15000,
      stdio: ['ignore', 'pipe', 'ignore'],
    },
  );
  const origin = r.status === 0 ? r.stdout.trim() : '';
  return origin ? path.dirname(origin) : null;
}

function fromPython(python: string): LibtorchInstall | null {
  const torchDir = pythonTorchDir(python);
  if (!torchDir) return null;
  const { version, cuda } = pyVersion(torchDir);
  return describeDir(path.join(torchDir, 'lib'), {
    from: `the PyTorch of ${python} (${torchDir})`,
    version,
    cuda,
    torchDir,
  });
}

/**
 * The libtorch installs found, in search order, without duplicates (same real directory).
 * options.python: false skips step 5; 'only' runs only step 5.
 */
export function findLibtorch(options: FindOptions = {}): LibtorchInstall[] {
  const env = options.env || process.env;
  const out: LibtorchInstall[] = [];
  const seen = new Set<string>();
  const add = (c: LibtorchInstall | null) => {
    if (!c || seen.has(c.realDir)) return;
    seen.add(c.realDir);
    out.push(c);
  };
  if (env.DIFFUSION_SEARCH_LIBTORCH) {
    const c = describeGiven(
      path.resolve(env.DIFFUSION_SEARCH_LIBTORCH),
      `DIFFUSION_SEARCH_LIBTORCH=${env.DIFFUSION_SEARCH_LIBTORCH}`,
    );
    return c ? [c] : [];
  }
  if (options.python !== 'only') {
    if (env.Torch_DIR) add(describeGiven(path.resolve(env.Torch_DIR), `Torch_DIR=${env.Torch_DIR}`));
    for (const d of (env.LD_LIBRARY_PATH || '').split(':').filter(Boolean))
      add(describeDir(d, { from: `LD_LIBRARY_PATH (${d})` }));
    const multiarch = MULTIARCH[process.arch];
    const system = [
      multiarch && `/usr/lib/${multiarch}`,
      '/usr/local/lib',
      '/usr/lib64',
      '/usr/lib',
      '/opt/libtorch/lib',
      '/usr/local/libtorch/lib',
    ];
    for (const d of system.filter((s): s is string => !!s))
      add(describeDir(d, { from: `the system libraries (${d})` }));
  }
  if (options.python !== false) {
    const pythons = [env.DIFFUSION_SEARCH_PYTHON || 'python3', '/usr/bin/python3'];
    for (const py of [...new Set(pythons)]) add(fromPython(py));
  }
  return out;
}

/** One line for messages: "libtorch 1.13.0 (CPU, C++11 ABI, system sonames) in /usr/lib/… — from …". */
export function describe(c: LibtorchInstall): string {
  const dev = c.cuda ? `CUDA ${c.cuda}` : 'CPU';
  const abi = c.cxx11abi === 1 ? 'C++11 ABI' : c.cxx11abi === 0 ? 'pre-C++11 ABI' : 'ABI unknown';
  return `libtorch ${c.version} (${dev}, ${abi}, ${c.style} sonames) in ${c.libDir} — from ${c.from}`;
}

/** The libtorch a source build uses: the first install found that has headers. */
export function forBuild(env: NodeJS.ProcessEnv = process.env): LibtorchInstall | null {
  const cheap = findLibtorch({ env, python: false }).find((c) => c.includeDirs);
  return cheap || findLibtorch({ env, python: 'only' }).find((c) => c.includeDirs) || null;
}

/** The library files a binary built against `c` links: the files themselves (sonames differ by style). */
export function linkFiles(c: LibtorchInstall): string[] {
  return ['libtorch', 'libtorch_cpu', 'libc10'].map((l) => libFile(c.libDir, l)).filter((f): f is string => !!f);
}
