/** Facts about this build: package, libtorch, CUDA (and why it is off), threads, which binary loaded. */
import fs from 'node:fs';
import path from 'node:path';
import { native, nativeSource, packageRoot, type NativeSource } from './native';
import { precisionRefusal } from './precision';

export interface Info {
  version: string;
  node: string;
  torch: { version: string; cuda: boolean; cxx11abi?: number };
  cuda: {
    kernelsCompiled: boolean;
    kernelsLinked: boolean;
    available: boolean;
    deviceCount: number;
    /** Why CUDA cannot be used here, or null when a device is available to the CUDA kernels. */
    off: string | null;
  };
  threads: { intraOp: number; interOp: number; hardware: number };
  /** Whether `precision: 'bf16'` runs here (CPU features), and why not when it does not. */
  bf16: { available: boolean; why: string | null };
  /** The binary the loader took and why (kind: explicit | build | prebuild), and how it was built. */
  native: NativeSource & { build: { tool: string; napi: number } };
}

export function packageVersion(): string {
  const pkg = JSON.parse(fs.readFileSync(path.join(packageRoot, 'package.json'), 'utf8')) as { version: string };
  return pkg.version;
}

export function info(): Info {
  const n = native().info();
  const src = nativeSource()!;
  const build = { tool: n.build?.tool ?? 'unknown', napi: n.build?.napi ?? 0 };
  let off: string | null = null;
  if (!n.cuda.kernelsLinked || !n.torch.cuda)
    off =
      src.cudaOff ||
      n.build?.cudaOff ||
      (n.torch.cuda ? 'the CUDA kernels are not linked' : `libtorch ${n.torch.version} is a CPU build`);
  else if (!n.cuda.available)
    off = 'no CUDA device is visible to libtorch (no GPU or driver, or CUDA_VISIBLE_DEVICES hides them)';
  return {
    version: packageVersion(),
    node: process.version,
    torch: n.torch,
    cuda: { ...n.cuda, off },
    threads: n.threads,
    bf16: { available: precisionRefusal('bf16') === null, why: precisionRefusal('bf16') },
    native: { ...src, build },
  };
}
