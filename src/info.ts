/** Facts about this build: package, libtorch, CUDA, threads. */
import fs from 'node:fs';
import path from 'node:path';
import { native, packageRoot } from './native';

export interface Info {
  version: string;
  node: string;
  torch: { version: string; cuda: boolean };
  cuda: { kernelsCompiled: boolean; kernelsLinked: boolean; available: boolean; deviceCount: number };
  threads: { intraOp: number; interOp: number; hardware: number };
}

export function packageVersion(): string {
  const pkg = JSON.parse(fs.readFileSync(path.join(packageRoot, 'package.json'), 'utf8')) as { version: string };
  return pkg.version;
}

export function info(): Info {
  const n = native().info();
  return { version: packageVersion(), node: process.version, torch: n.torch, cuda: n.cuda, threads: n.threads };
}
