/**
 * Model benchmark: the addon's forward of a TorchScript denoiser against PyTorch's forward of
 * the same file (bench/torch_model.py, a child process with the same batches, threads and
 * repeats), so the ratio addon/python is measured in one run on one machine state.
 */
import { spawnSync } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import { DiffusionSearchError } from '../errors';
import { loadModule } from '../module';
import { packageRoot } from '../native';
import { resolveModel } from '../models/registry';
import { createStream, setNumThreads } from '../stream';
import { tensor } from '../tensor';
import { info } from '../info';

export const DEFAULT_BATCHES = [1, 16, 50, 256];

export interface ModelBenchRow {
  batch: number;
  addon_ms: { min: number; median: number };
  python_ms: { min: number; median: number };
  /** addon / python, of the minimum and of the median. */
  ratio_min: number;
  ratio_median: number;
}

export interface ModelBenchOptions {
  model?: string;
  batches?: number[];
  threads?: number;
  repeats?: number;
  warmup?: number;
  python?: string;
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
export const summary = (ms: number[]) => ({ min: Math.min(...ms), median: median(ms) });

function randn(n: number, seed: number): Float32Array {
  // Box–Muller on a small LCG: inputs only need to be plausible, not match Python's.
  let s = seed >>> 0;
  const u = () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) + 1) / 4294967297;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = Math.sqrt(-2 * Math.log(u())) * Math.cos(2 * Math.PI * u());
  return out;
}

/** The Python with PyTorch: $PYTHON, else the first of python3 and /usr/bin/python3 that imports torch. */
export function findPython(explicit = process.env.PYTHON): string {
  if (explicit) return explicit;
  for (const p of ['python3', '/usr/bin/python3'])
    if (spawnSync(p, ['-c', 'import torch'], { stdio: 'ignore' }).status === 0) return p;
  return 'python3';
}

/** Runs bench/<script> with PyTorch's Python and parses the JSON it prints last. */
// biome-ignore lint/suspicious/noExplicitAny: each script's own JSON, read field by field by its bench
export function runPython(script: string, args: string[], python = findPython()): any {
  const file = path.join(packageRoot, 'bench', script);
  const r = spawnSync(python, [file, ...args], { encoding: 'utf8', maxBuffer: 64 << 20 });
  if (r.error || r.status !== 0)
    throw new DiffusionSearchError(
      `${python} ${script} failed (needs PyTorch: apt-get install python3-torch, or set PYTHON): ` +
        `${r.error?.message ?? r.stderr.trim().split('\n').slice(-3).join(' ')}`,
      'NATIVE',
    );
  const last = r.stdout.trim().split('\n').pop() ?? '';
  return JSON.parse(last);
}

export async function benchModel(o: ModelBenchOptions = {}) {
  const { file } = resolveModel(o.model ?? 'fashion-flow');
  const batches = o.batches ?? DEFAULT_BATCHES;
  const threads = o.threads ?? 1;
  const repeats = o.repeats ?? 20;
  const warmup = o.warmup ?? 3;
  const python = findPython(o.python);
  // Python first: a missing PyTorch fails in a second, not after the addon's half.
  const py = runPython(
    'torch_model.py',
    [
      '--model',
      file,
      '--batches',
      batches.join(','),
      '--threads',
      String(threads),
      '--repeats',
      String(repeats),
      '--warmup',
      String(warmup),
    ],
    python,
  ) as { torch: string; threads: number; rows: Array<{ batch: number; ms: number[] }> };
  setNumThreads(threads);
  const module = await loadModule(file);
  const stream = createStream();
  const addon: number[][] = [];
  for (const b of batches) {
    const x = tensor(randn(b * 784, b), [b, 1, 28, 28]);
    const sigma = tensor(
      Float32Array.from({ length: b }, (_, i) => (i + 0.5) / b),
      [b],
    );
    const cls = tensor(
      BigInt64Array.from({ length: b }, (_, i) => BigInt(i % 10)),
      [b],
    );
    const once = async () => {
      const t = performance.now();
      const out = (await module.call('forward', [x, sigma, cls], stream)) as { dispose(): void };
      const ms = performance.now() - t;
      out.dispose();
      return ms;
    };
    for (let i = 0; i < warmup; i++) await once();
    const ms: number[] = [];
    for (let i = 0; i < repeats; i++) ms.push(await once());
    addon.push(ms);
    x.dispose(), sigma.dispose(), cls.dispose();
  }
  await stream.close();
  module.dispose();
  const rows: ModelBenchRow[] = batches.map((batch, i) => {
    const a = summary(addon[i]),
      p = summary(py.rows[i].ms);
    return { batch, addon_ms: a, python_ms: p, ratio_min: a.min / p.min, ratio_median: a.median / p.median };
  });
  const inf = info();
  return {
    machine: {
      cpu: os.cpus()[0]?.model ?? 'unknown',
      cores: os.cpus().length,
      libtorch: inf.torch.version,
      python_torch: py.torch,
    },
    model: file,
    threads,
    repeats,
    omp_wait_policy: process.env.OMP_WAIT_POLICY ?? null,
    rows,
  };
}

export function formatModelBench(r: Awaited<ReturnType<typeof benchModel>>): string {
  const f = (x: number) => x.toFixed(2).padStart(9);
  const lines = [
    `forward of ${path.relative(process.cwd(), r.model) || r.model}, ${r.threads} thread(s), ${r.repeats} repeats ` +
      `(${r.machine.cpu}, ${r.machine.cores} cores, libtorch ${r.machine.libtorch}, python torch ` +
      `${r.machine.python_torch}, OMP_WAIT_POLICY=${r.omp_wait_policy ?? 'unset'})`,
    'batch   addon min  addon med  python min python med   ratio min  ratio med',
  ];
  for (const x of r.rows)
    lines.push(
      `${String(x.batch).padStart(5)}  ${f(x.addon_ms.min)}  ${f(x.addon_ms.median)}  ${f(x.python_ms.min)}  ` +
        `${f(x.python_ms.median)}  ${f(x.ratio_min)}  ${f(x.ratio_median)}`,
    );
  lines.push('ms per forward; ratio = addon / python (goal ≤ 1.1)');
  return lines.join('\n');
}
