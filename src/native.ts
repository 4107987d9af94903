// The public types use Node's (NodeJS.ProcessEnv, node:http, AbortSignal): this keeps them in a consumer's program
// even when its tsconfig lists no "types" (what `tsc --init` writes); @types/node itself is the consumer's.
/// <reference types="node" preserve="true" />
/**
 * The one loader of the native addon: an explicit path from DIFFUSION_SEARCH_NATIVE, else the
 * local build in build/Release, else the prebuild (variant packages, prebuilds/) whose libtorch is
 * on this machine (src/prebuilds.ts, src/libtorch.ts). When loading fails, the error names the
 * cause, what was found and what to install.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { DiffusionSearchError } from './errors';
import * as libtorch from './libtorch';
import type { LibtorchInstall } from './libtorch';
import {
  choosePrebuild,
  installAdvice,
  listPrebuilds,
  mismatch,
  type Choice,
  type Prebuild,
  type PrebuildTags,
} from './prebuilds';

export type DType = 'float32' | 'float64' | 'int32' | 'int64' | 'uint8' | 'float16' | 'bfloat16' | 'bool';
export type TypedArray = Float32Array | Float64Array | Int32Array | BigInt64Array | Uint8Array;

/** A tensor living in native memory (CPU or CUDA); JS holds only this handle. */
export interface NativeTensor {
  readonly shape: number[];
  readonly dtype: DType;
  readonly device: string;
  readonly numel: number;
  readonly disposed: boolean;
  /** Frees the native memory now (safe to call twice); the GC would do it later anyway. */
  dispose(): void;
  /** dispose(), for `using t = ...` (freed at the end of the block). */
  [Symbol.dispose](): void;
  /** Copies the data out, after all earlier work queued on `stream`. */
  toArray(stream?: NativeStream): Promise<TypedArray>;
  to(device: string, stream?: NativeStream): Promise<NativeTensor>;
}

export interface NativeStream {
  readonly device: string;
  readonly closed: boolean;
  close(): Promise<void>;
  /** Another handle on this queue (the same order and worker); closing or dropping it leaves the queue open. */
  view(): NativeStream;
}

export type ModuleInput = NativeTensor | number | bigint | boolean | string | null | ModuleInput[];
export type ModuleOutput = NativeTensor | number | boolean | string | null | ModuleOutput[];

/** Options of one module call (native/addon/call_options.h). */
export interface NativeCallOptions {
  precision?: 'fp32' | 'bf16';
  /** The most intra-op threads the call uses on a CPU (default: its stream's). */
  threads?: number;
  /** With more than one thread, a call of at least twice this many rows runs as row chunks side by side. */
  chunkRows?: number;
}

export interface NativeModule {
  readonly card: string | null;
  readonly methods: string[];
  readonly device: string;
  readonly path: string;
  call(
    method: string,
    inputs: ModuleInput[],
    stream?: NativeStream,
    options?: NativeCallOptions,
  ): Promise<ModuleOutput>;
  /**
   * One call of `method` on the pieces' rows [start, end) of their inputs, joined along dim 0 in one
   * job; every tensor of the output cut back into the pieces' rows (one output per piece).
   */
  callJoined(
    method: string,
    pieces: Array<[inputs: NativeTensor[], start: number, end: number]>,
    stream?: NativeStream,
    options?: NativeCallOptions,
  ): Promise<ModuleOutput[]>;
  /** A frozen copy (every method kept); `inference`: with optimize_for_inference's passes too. */
  optimize(options?: { inference?: boolean }, stream?: NativeStream): Promise<NativeModule>;
  schema(method: string): string;
  dispose(): void;
}

export interface NativeInfo {
  torch: { version: string; cuda: boolean; cxx11abi?: number };
  build?: { tool: string; napi: number; cudaOff: string };
  cuda: { kernelsCompiled: boolean; kernelsLinked: boolean; available: boolean; deviceCount: number };
  threads: { intraOp: number; interOp: number; hardware: number };
  parallel: string;
  /** CPU features bf16 autocast runs natively on (absent in builds before them). */
  cpu?: { avx512: boolean; avx512bf16: boolean; amxbf16: boolean };
}

export interface NativeBinding {
  init(options: { errorClass: typeof DiffusionSearchError }): void;
  info(): NativeInfo;
  setNumThreads(n: number): void;
  fromArray(data: TypedArray, shape?: readonly number[], options?: { device?: string }): NativeTensor;
  loadModule(file: string, options?: { device?: string }, stream?: NativeStream): Promise<NativeModule>;
  Stream: new (options?: { device?: string; shareThreads?: boolean }) => NativeStream;
  /** The intra-op threads a call with these options gets on `stream` (libtorch's count inside its job). */
  callThreads(options?: { threads?: number }, stream?: NativeStream): Promise<number>;
  [op: string]: unknown;
}

export const packageRoot = path.resolve(__dirname, '..');

const INSTALL_HINT =
  'Build it with `npm run build:native` (needs cmake, g++ and libtorch: on Debian/Ubuntu ' +
  '`apt-get install -y cmake g++ libtorch-dev`; with PyTorch, set Torch_DIR to ' +
  "`$(python3 -c 'import torch; print(torch.utils.cmake_prefix_path)')/Torch`).";

/** Turns a loader failure into a message that names the cause and the fix. */
export function explainLoadFailure(error: unknown, where: string, context = ''): DiffusionSearchError {
  const message = error instanceof Error ? error.message : String(error);
  const missingLib = /(lib[\w+-]+\.so[.\d]*): cannot open shared object file/.exec(message);
  let text: string;
  if (missingLib) {
    const lib = missingLib[1];
    const torchLib = /^lib(torch|c10|gomp|cudart|nvrtc|protobuf|dnnl)/.test(lib);
    text =
      `the native addon (${where}) needs ${lib}, which the dynamic loader cannot find. ` +
      (torchLib
        ? 'Install libtorch (`apt-get install -y libtorch-dev`) or, for a PyTorch build, point the loader at it: ' +
          "DIFFUSION_SEARCH_LIBTORCH=$(python3 -c 'import torch, os; print(os.path.dirname(torch.__file__))')/lib " +
          '(or add that directory to LD_LIBRARY_PATH).'
        : 'Install the package that provides it, or rebuild the addon on this machine: npm run build:native.');
  } else if (/No native build was found/.test(message)) {
    text = `the native addon is not built (looked in prebuilds/ and build/Release under ${where}). ${INSTALL_HINT}`;
  } else if (/Cannot find module|ENOENT/.test(message)) {
    text = `no native addon at ${where}. ${INSTALL_HINT}`;
  } else if (/undefined symbol/.test(message)) {
    text =
      `the native addon (${where}) was built against a different libtorch than the one loaded now ` +
      `(${message.split('\n')[0]}). Rebuild it: npm run build:native.`;
  } else {
    text = `cannot load the native addon (${where}): ${message.split('\n')[0]}. ${INSTALL_HINT}`;
  }
  return new DiffusionSearchError(context ? `${text}\n${context}` : text, 'NATIVE_LOAD', { cause: error });
}

/** Which binary the loader took, and why: `info()` reports it. */
export interface NativeSource {
  /** 'explicit': DIFFUSION_SEARCH_NATIVE; 'build': this package's build/Release; 'prebuild'. */
  kind: 'explicit' | 'build' | 'prebuild';
  file: string;
  /** The package holding the prebuild (a variant package, or diffusion-search's own prebuilds/). */
  package?: string;
  tags?: PrebuildTags;
  /** The libtorch the prebuild was matched to (and preloaded from). */
  libtorch?: { version: string; libDir: string; from: string; cuda: string | null };
  /** Why CUDA is off with this binary and libtorch, when the loader can tell already. */
  cudaOff?: string | null;
  reason: string;
}

/** The variant packages this package names (optionalDependencies) for this platform and arch. */
export function variantPackages(root = packageRoot): string[] {
  try {
    const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')) as {
      optionalDependencies?: Record<string, string>;
    };
    const prefix = `diffusion-search-${process.platform}-${process.arch}-`;
    return Object.keys(pkg.optionalDependencies ?? {}).filter((n) => n.startsWith(prefix));
  } catch {
    return [];
  }
}

/** Every prebuild installed: the variant packages first, then this package's own prebuilds/. */
export function installedPrebuilds(root = packageRoot): {
  prebuilds: Prebuild[];
  packages: Record<string, string | null>;
} {
  const prebuilds: Prebuild[] = [];
  const packages: Record<string, string | null> = {};
  for (const name of variantPackages(root)) {
    let dir: string | null = null;
    try {
      dir = path.dirname(require.resolve(`${name}/package.json`, { paths: [root] }));
    } catch {
      /* not installed */
    }
    packages[name] = dir;
    if (dir) prebuilds.push(...listPrebuilds(path.join(dir, 'prebuilds'), name));
  }
  prebuilds.push(...listPrebuilds(path.join(root, 'prebuilds'), 'diffusion-search'));
  return { prebuilds, packages };
}

/**
 * Maps the chosen libtorch's libraries into the process before the addon, by absolute path, so the
 * addon's DT_NEEDED entries (libtorch.so, libc10.so …) resolve to them without LD_LIBRARY_PATH.
 * process.dlopen refuses a library that is no Node addon ("did not self-register") after loading
 * it; RTLD_NODELETE keeps it mapped.
 */
export function preloadLibtorch(c: Pick<LibtorchInstall, 'libDir'>, cuda: boolean): string[] {
  const f = libtorch;
  const libs = [
    'libc10',
    ...(cuda ? ['libc10_cuda'] : []),
    'libtorch_cpu',
    ...(cuda ? ['libtorch_cuda'] : []),
    'libtorch',
  ];
  return preloadLibraries(libs.map((l) => f.libFile(c.libDir, l)).filter((x): x is string => !!x));
}

/** dlopens each file (absolute paths) and keeps it mapped; returns those that loaded. */
export function preloadLibraries(files: string[]): string[] {
  const flags = os.constants.dlopen as { RTLD_LAZY: number; RTLD_NODELETE?: number };
  const loaded: string[] = [];
  for (const file of files) {
    try {
      process.dlopen({ exports: {} } as NodeJS.Module, file, flags.RTLD_LAZY | (flags.RTLD_NODELETE ?? 0x1000));
    } catch (e) {
      if (!/did not self-register/.test((e as Error).message)) continue; // the addon's load reports it
    }
    loaded.push(file);
  }
  return loaded;
}

const fmtPrebuild = (p: Prebuild) =>
  `${p.from}: ${path.basename(p.file)} (libtorch ${p.torch}, ${p.style} sonames, ` +
  `${p.cxx11abi ? 'C++11' : 'pre-C++11'} ABI, ${p.device})`;

/**
 * Picks the prebuild to load. Cheap libtorch locations first; python3's PyTorch only when they fit
 * no prebuild or a CUDA prebuild could be used with it. Throws NATIVE_LOAD listing what was found.
 */
export function selectPrebuild(
  env: NodeJS.ProcessEnv = process.env,
  root = packageRoot,
): { choice: Choice; installs: LibtorchInstall[] } {
  const { prebuilds, packages } = installedPrebuilds(root);
  const device = env.DIFFUSION_SEARCH_VARIANT || undefined;
  const f = libtorch;
  let installs = f.findLibtorch({ env, python: false });
  let choice = choosePrebuild(prebuilds, installs, device);
  const wantsPython =
    !env.DIFFUSION_SEARCH_LIBTORCH &&
    (!choice ||
      (choice.prebuild.cudaMajor === null &&
        prebuilds.some((p) => p.cudaMajor !== null && (!device || p.device === device))));
  if (wantsPython && prebuilds.length) {
    installs = [
      ...installs,
      ...f.findLibtorch({ env, python: 'only' }).filter((c) => !installs.some((d) => d.realDir === c.realDir)),
    ];
    choice = choosePrebuild(prebuilds, installs, device);
  }
  if (choice) return { choice, installs };

  const where = `${process.platform}-${process.arch}`;
  const lines: string[] = [];
  const pkgNames = Object.keys(packages);
  if (!prebuilds.length) {
    lines.push(
      `no prebuilt binary for ${where} is installed` +
        (pkgNames.length
          ? ' (variant packages: ' +
            `${pkgNames.map((n) => `${n} ${packages[n] ? 'has none' : 'not installed'}`).join(', ')})`
          : '') +
        ', and this package has no build (build/Release).',
    );
  } else {
    lines.push(
      `no prebuilt binary fits a libtorch on this machine${device ? ` (DIFFUSION_SEARCH_VARIANT=${device})` : ''}, ` +
        'and this package has no build (build/Release).',
    );
    lines.push('Binaries installed:');
    for (const p of prebuilds)
      lines.push(`  - ${fmtPrebuild(p)}${device && p.device !== device ? ' — not the requested variant' : ''}`);
  }
  if (!installs.length) {
    lines.push(
      'libtorch found: none (looked at DIFFUSION_SEARCH_LIBTORCH, Torch_DIR, LD_LIBRARY_PATH, the system library ' +
        'directories, python3 and /usr/bin/python3).',
    );
  } else {
    lines.push('libtorch found:');
    for (const c of installs) {
      const why = prebuilds
        .filter((p) => !device || p.device === device)
        .map((p) => `${p.device}/${p.torch}: ${mismatch(p, c)}`);
      lines.push(`  - ${f.describe(c)}${why.length ? `\n      ${why.join('; ')}` : ''}`);
    }
  }
  const wanted = prebuilds.filter((p) => !device || p.device === device);
  if (wanted.length) {
    lines.push('Install one of:');
    for (const a of installAdvice(wanted)) lines.push(`  - ${a}`);
  } else {
    lines.push(
      `Install the binary for your libtorch: npm install diffusion-search-${where}-cpu (Debian's libtorch 1.13), ` +
        `or diffusion-search-${where}-cuda<major> (PyTorch with CUDA).`,
    );
  }
  lines.push(
    'Or build from source on this machine: npm rebuild diffusion-search (needs g++ and libtorch headers; ' +
      'cmake and `npm install cmake-js` for CUDA) — see the README, Install.',
  );
  throw new DiffusionSearchError(`cannot load the native addon: ${lines.join('\n')}`, 'NATIVE_LOAD');
}

let source: NativeSource | undefined;

/** Which binary was loaded and why (undefined before the first native() call). */
export function nativeSource(): NativeSource | undefined {
  return source;
}

let binding: NativeBinding | undefined;

/** Tensors are `using`-able: the addon's Tensor class gets [Symbol.dispose] (its dispose) once, here. */
function addDisposeSymbol(b: NativeBinding): void {
  const proto = (b.Tensor as { prototype?: Partial<Disposable> & { dispose?(): void } } | undefined)?.prototype;
  if (!proto || typeof proto.dispose !== 'function' || proto[Symbol.dispose]) return;
  Object.defineProperty(proto, Symbol.dispose, {
    value(this: { dispose(): void }) {
      this.dispose();
    },
    configurable: true,
    writable: true,
  });
}

/**
 * OpenMP's default wait policy spins idle threads, which slows a search several-fold on a shared
 * machine (bench/RESULTS.md). libgomp reads OMP_WAIT_POLICY once, when the addon's dlopen loads
 * it, so it is set here, before the require, unless the user chose one.
 */
export function applyThreadDefaults(env: NodeJS.ProcessEnv = process.env): void {
  if (!env.OMP_WAIT_POLICY) env.OMP_WAIT_POLICY = 'PASSIVE';
}

/**
 * The native binding, loaded once. Order: DIFFUSION_SEARCH_NATIVE; this package's own build
 * (build/Release, a source build made on this machine); a prebuild whose libtorch is present
 * (selectPrebuild), its libtorch preloaded. Never falls back to another device's binary: when
 * nothing fits it throws DiffusionSearchError('NATIVE_LOAD') naming what it found and what to install.
 */
export function native(): NativeBinding {
  if (binding) return binding;
  applyThreadDefaults();
  const explicit = process.env.DIFFUSION_SEARCH_NATIVE;
  const build = path.join(packageRoot, 'build', 'Release', 'ds_native.node');
  const { loaded, found } = explicit
    ? loadExplicit(explicit)
    : fs.existsSync(build)
      ? loadBuild(build)
      : loadPrebuild();
  loaded.init({ errorClass: DiffusionSearchError });
  addDisposeSymbol(loaded);
  source = found;
  binding = loaded;
  return binding;
}

type Loaded = { loaded: NativeBinding; found: NativeSource };

/** The binary DIFFUSION_SEARCH_NATIVE names. */
function loadExplicit(explicit: string): Loaded {
  const file = path.resolve(explicit);
  const found: NativeSource = { kind: 'explicit', file, reason: 'DIFFUSION_SEARCH_NATIVE names it' };
  try {
    return { loaded: require(file) as NativeBinding, found };
  } catch (e) {
    throw explainLoadFailure(e, `DIFFUSION_SEARCH_NATIVE=${file}`);
  }
}

/** This package's own build (build/Release), its libtorch preloaded when its rpath does not reach one. */
function loadBuild(build: string): Loaded {
  const found: NativeSource = {
    kind: 'build',
    file: build,
    reason: 'a source build of this package (build/Release) comes before prebuilds',
  };
  const rebuild = 'Remove build/ to use a prebuilt binary instead, or rebuild: npm run build:native.';
  try {
    return { loaded: require(build) as NativeBinding, found };
  } catch (e) {
    // A build whose rpath does not reach its libtorch (moved, or linked without one): preload the
    // first libtorch found that has the missing library, then try once more.
    const missing = /(lib(?:torch|c10)[\w]*\.so[.\d]*): cannot open shared object file/.exec((e as Error).message)?.[1];
    const c = missing ? libtorch.findLibtorch().find((d) => fs.existsSync(path.join(d.libDir, missing))) : undefined;
    if (!c) throw explainLoadFailure(e, build, rebuild);
    preloadLibtorch(c, !!c.cuda);
    found.libtorch = { version: c.version, libDir: c.libDir, from: c.from, cuda: c.cuda };
    found.reason += `; its libtorch preloaded from ${c.libDir}`;
    try {
      return { loaded: require(build) as NativeBinding, found };
    } catch (e2) {
      throw explainLoadFailure(e2, build, rebuild);
    }
  }
}

/** The prebuild whose libtorch is present (selectPrebuild), that libtorch preloaded. */
function loadPrebuild(): Loaded {
  const { choice } = selectPrebuild();
  const { prebuild: p, libtorch: c } = choice;
  const found: NativeSource = {
    kind: 'prebuild',
    file: p.file,
    package: p.from,
    tags: {
      napi: p.napi,
      torch: p.torch,
      cxx11abi: p.cxx11abi,
      style: p.style,
      device: p.device,
      cudaMajor: p.cudaMajor,
    },
    libtorch: { version: c.version, libDir: c.libDir, from: c.from, cuda: c.cuda },
    cudaOff: choice.cudaOff,
    reason: `libtorch ${c.version} (${c.from}) fits the ${p.device} binary of ${p.from}`,
  };
  preloadLibtorch(c, p.cudaMajor !== null);
  try {
    return { loaded: require(p.file) as NativeBinding, found };
  } catch (e) {
    throw explainLoadFailure(e, p.file, `It was chosen because ${found.reason}.`);
  }
}
