/**
 * The one loader of the native addon: an explicit path from DIFFUSION_SEARCH_NATIVE, else a
 * prebuild in prebuilds/ or the local build in build/Release (through node-gyp-build).
 * When loading fails, the error names the cause and what to install.
 */
import path from 'node:path';
import { DiffusionSearchError } from './errors';

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
  /** Copies the data out, after all earlier work queued on `stream`. */
  toArray(stream?: NativeStream): Promise<TypedArray>;
  to(device: string, stream?: NativeStream): Promise<NativeTensor>;
}

export interface NativeStream {
  readonly device: string;
  readonly closed: boolean;
  close(): Promise<void>;
}

export type ModuleInput = NativeTensor | number | bigint | boolean | string | null | ModuleInput[];
export type ModuleOutput = NativeTensor | number | boolean | string | null | ModuleOutput[];

export interface NativeModule {
  readonly card: string | null;
  readonly methods: string[];
  readonly device: string;
  readonly path: string;
  call(method: string, inputs: ModuleInput[], stream?: NativeStream): Promise<ModuleOutput>;
  schema(method: string): string;
  dispose(): void;
}

export interface NativeInfo {
  torch: { version: string; cuda: boolean };
  cuda: { kernelsCompiled: boolean; kernelsLinked: boolean; available: boolean; deviceCount: number };
  threads: { intraOp: number; interOp: number; hardware: number };
  parallel: string;
}

export interface NativeBinding {
  init(options: { errorClass: typeof DiffusionSearchError }): void;
  info(): NativeInfo;
  setNumThreads(n: number): void;
  fromArray(data: TypedArray, shape?: readonly number[], options?: { device?: string }): NativeTensor;
  loadModule(file: string, options?: { device?: string }, stream?: NativeStream): Promise<NativeModule>;
  Stream: new (options?: { device?: string }) => NativeStream;
  [op: string]: unknown;
}

export const packageRoot = path.resolve(__dirname, '..');

const INSTALL_HINT =
  'Build it with `npm run build:native` (needs cmake, g++ and libtorch: on Debian/Ubuntu ' +
  '`apt-get install -y cmake g++ libtorch-dev`; with PyTorch, set Torch_DIR to ' +
  "`$(python3 -c 'import torch; print(torch.utils.cmake_prefix_path)')/Torch`).";

/** Turns a loader failure into a message that names the cause and the fix. */
export function explainLoadFailure(error: unknown, where: string): DiffusionSearchError {
  const message = error instanceof Error ? error.message : String(error);
  const missingLib = /(lib[\w+-]+\.so[.\d]*): cannot open shared object file/.exec(message);
  let text: string;
  if (missingLib) {
    const lib = missingLib[1];
    const torchLib = /^lib(torch|c10|gomp|cudart|nvrtc|protobuf|dnnl)/.test(lib);
    text =
      `the native addon (${where}) needs ${lib}, which the dynamic loader cannot find. ` +
      (torchLib
        ? 'Install libtorch (`apt-get install -y libtorch-dev`) or, for a PyTorch build, add its lib ' +
          "directory to LD_LIBRARY_PATH: $(python3 -c 'import torch, os; print(os.path.dirname(torch.__file__))')/lib."
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
  return new DiffusionSearchError(text, 'NATIVE_LOAD', { cause: error });
}

let binding: NativeBinding | undefined;

/**
 * OpenMP's default wait policy spins idle threads; on a shared machine a search then ran 3x
 * slower. libgomp reads OMP_WAIT_POLICY once, when the addon's dlopen loads it, so it is set
 * here, before the require, unless the user chose one.
 */
export function applyThreadDefaults(env: NodeJS.ProcessEnv = process.env): void {
  if (!env.OMP_WAIT_POLICY) env.OMP_WAIT_POLICY = 'PASSIVE';
}

/** The native binding, loaded once. Throws DiffusionSearchError('NATIVE_LOAD') with the fix. */
export function native(): NativeBinding {
  if (binding) return binding;
  applyThreadDefaults();
  const explicit = process.env.DIFFUSION_SEARCH_NATIVE;
  let loaded: NativeBinding;
  if (explicit) {
    const file = path.resolve(explicit);
    try {
      loaded = require(file) as NativeBinding;
    } catch (e) {
      throw explainLoadFailure(e, `DIFFUSION_SEARCH_NATIVE=${file}`);
    }
  } else {
    try {
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      const load = require('node-gyp-build') as (dir: string) => unknown;
      loaded = load(packageRoot) as NativeBinding;
    } catch (e) {
      throw explainLoadFailure(e, packageRoot);
    }
  }
  loaded.init({ errorClass: DiffusionSearchError });
  binding = loaded;
  return binding;
}
