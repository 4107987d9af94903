/**
 * Prebuilt binaries and the choice between them. A prebuild's file name carries what it needs at
 * run time, after node-gyp-build's own tags (`napi`, `glibc`, which it checks) come ours (which it
 * ignores):
 *
 *   ds_native.napi.glibc.napi8.torch1_13.cxx11abi1.system.cpu.node
 *             │    │     │     │         │         │      └ cpu | cuda<major>
 *             │    │     │     │         │         └ system (versioned sonames: Debian's libtorch)
 *             │    │     │     │         │           | pytorch (PyTorch wheels, libtorch zips)
 *             │    │     │     │         └ libtorch's C++ ABI (_GLIBCXX_USE_CXX11_ABI)
 *             │    │     │     └ libtorch major.minor it was linked against
 *             │    │     └ the N-API version it needs
 *             └ node-gyp-build's tags
 *
 * The loader (src/native.ts) lists them in the variant packages (diffusion-search-<platform>-<arch>-
 * <device>) and in the package's own prebuilds/, finds the libtorch installs (src/libtorch.ts)
 * and picks the pair that fits, CUDA first when both a CUDA binary and a CUDA libtorch are there.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { LibtorchInstall } from './libtorch';

export type { LibtorchInstall } from './libtorch';

export interface PrebuildTags {
  napi: number;
  torch: string; // major.minor
  cxx11abi: 0 | 1;
  style: 'system' | 'pytorch';
  device: string; // 'cpu' | 'cuda12' …
  cudaMajor: number | null;
}

export interface Prebuild extends PrebuildTags {
  file: string;
  /** The package it came from: a variant package's name, or 'diffusion-search' for its prebuilds/. */
  from: string;
}

export function prebuildName(t: PrebuildTags, libc: 'glibc' | 'musl' | null = 'glibc'): string {
  return [
    'ds_native',
    'napi',
    libc,
    `napi${t.napi}`,
    `torch${t.torch.replace('.', '_')}`,
    `cxx11abi${t.cxx11abi}`,
    t.style,
    t.device,
    'node',
  ]
    .filter(Boolean)
    .join('.');
}

const PREBUILD_NAME = new RegExp(
  String.raw`^ds_native\.napi\.(?:glibc\.|musl\.)?napi(\d+)\.torch(\d+)_(\d+)\.cxx11abi([01])` +
    String.raw`\.(system|pytorch)\.(cpu|cuda(\d+))\.node$`,
);

/** The tags of a prebuild's file name, or null when it is not one of ours. */
export function parsePrebuildName(name: string): PrebuildTags | null {
  const m = PREBUILD_NAME.exec(name);
  if (!m) return null;
  return {
    napi: Number(m[1]),
    torch: `${m[2]}.${m[3]}`,
    cxx11abi: Number(m[4]) as 0 | 1,
    style: m[5] as 'system' | 'pytorch',
    device: m[6],
    cudaMajor: m[7] ? Number(m[7]) : null,
  };
}

/** Our prebuilds in `dir` (a prebuilds/ folder): only this platform-arch, N-API this Node has. */
export function listPrebuilds(dir: string, from: string, napi = Number(process.versions.napi)): Prebuild[] {
  const sub = path.join(dir, `${process.platform}-${process.arch}`);
  let names: string[];
  try {
    names = fs.readdirSync(sub).sort();
  } catch {
    return [];
  }
  const out: Prebuild[] = [];
  for (const n of names) {
    const t = parsePrebuildName(n);
    if (t && t.napi <= napi) out.push({ ...t, file: path.join(sub, n), from });
  }
  return out;
}

/** Why `p` cannot run on `c`, or null when it can. */
export function mismatch(p: PrebuildTags, c: LibtorchInstall): string | null {
  if (c.mm !== p.torch) return `needs libtorch ${p.torch}, this is ${c.mm ?? c.version}`;
  if (c.style !== p.style)
    return (
      `needs ${p.style} sonames (${p.style === 'system' ? "Debian's libtorch" : "PyTorch's"}), this has ` + `${c.style}`
    );
  if (c.cxx11abi !== null && c.cxx11abi !== p.cxx11abi) return `needs the ${p.cxx11abi ? 'C++11' : 'pre-C++11'} ABI`;
  if (p.cudaMajor !== null && c.cudaMajor !== p.cudaMajor)
    return c.cuda
      ? `needs CUDA ${p.cudaMajor}, this libtorch has CUDA ${c.cuda}`
      : `needs a CUDA ${p.cudaMajor} libtorch, this one is CPU-only`;
  return null;
}

export interface Choice {
  prebuild: Prebuild;
  libtorch: LibtorchInstall;
  /** Why CUDA will be off with this pair, or null when it can be on. */
  cudaOff: string | null;
}

/**
 * The best (prebuild, libtorch) pair: a CUDA prebuild on its CUDA libtorch first; then any fitting
 * pair, libtorch installs in search order, prebuilds in the order given. `device` ('cpu',
 * 'cuda12', from DIFFUSION_SEARCH_VARIANT) keeps only those prebuilds.
 */
export function choosePrebuild(prebuilds: Prebuild[], installs: LibtorchInstall[], device?: string): Choice | null {
  const ps = device ? prebuilds.filter((p) => p.device === device) : prebuilds;
  const pairs: Choice[] = [];
  for (const c of installs)
    for (const p of ps)
      if (!mismatch(p, c)) pairs.push({ prebuild: p, libtorch: c, cudaOff: cudaOffReason(p, c, prebuilds) });
  return pairs.find((x) => x.prebuild.cudaMajor !== null) ?? pairs[0] ?? null;
}

function cudaOffReason(p: PrebuildTags, c: LibtorchInstall, all: Prebuild[]): string | null {
  if (p.cudaMajor !== null) return null;
  if (!c.cuda) return `the libtorch found (${c.version} in ${c.libDir}) is a CPU build`;
  const cudaPkg = `diffusion-search-${process.platform}-${process.arch}-cuda${c.cudaMajor ?? '<major>'}`;
  const have = all.some((q) => q.cudaMajor !== null);
  return (
    `the ${p.device} binary was loaded, though libtorch ${c.version} has CUDA ${c.cuda}: ` +
    (have
      ? `no CUDA binary is built for it (installed CUDA binaries need another libtorch)`
      : `install ${cudaPkg} for CUDA`)
  );
}

/** What to install so that one of `prebuilds` fits: one line per distinct requirement. */
export function installAdvice(prebuilds: PrebuildTags[]): string[] {
  const lines = new Set<string>();
  for (const p of prebuilds) {
    if (p.style === 'system')
      lines.add(`libtorch ${p.torch} from Debian/Ubuntu: apt-get install -y libtorch${p.torch} (or libtorch-dev)`);
    else if (p.cudaMajor !== null)
      lines.add(
        `PyTorch ${p.torch}.x with CUDA ${p.cudaMajor} for python3: pip install 'torch==${p.torch}.*' --index-url ` +
          `https://download.pytorch.org/whl/cu${p.cudaMajor}<minor>`,
      );
    else
      lines.add(
        `PyTorch ${p.torch}.x for python3 (CPU): pip install 'torch==${p.torch}.*' --index-url ` +
          'https://download.pytorch.org/whl/cpu',
      );
  }
  return [...lines];
}
