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
import type { Precision } from '../precision';
import { inferenceLoad } from '../models/inference-load';

export const DEFAULT_BATCHES = [1, 16, 50, 256];

export interface ModelBenchRow {
  batch: number;
  addon_ms: { min: number; median: number };
  python_ms: { min: number; median: number };
  /** addon / python, of the minimum and of the median. */
  ratio_min: number;
  ratio_median: number;
  /** With precision bf16: the addon's bf16 forward, and it ÷ python's fp32 forward. */
  bf16_ms?: { min: number; median: number };
  bf16_ratio_min?: number;
  bf16_ratio_median?: number;
}

export interface ModelBenchOptions {
  model?: string;
  batches?: number[];
  threads?: number;
  repeats?: number;
  warmup?: number;
  python?: string;
  /** 'bf16': also the addon's bf16 forwards, interleaved with its fp32 ones (default 'fp32'). */
  precision?: Precision;
  /** Rounds of python then addon, so both sample the machine's state alike (default 1). */
  rounds?: number;
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
  const arms: Precision[] = o.precision === 'bf16' ? ['fp32', 'bf16'] : ['fp32'];
  const py: number[][] = batches.map(() => []);
  const addon: Record<string, number[][]> = Object.fromEntries(arms.map((a) => [a, batches.map(() => [])]));
  let torchVersion = '';
  for (let round = 0; round < (o.rounds ?? 1); round++) {
    // Python first: a missing PyTorch fails in a second, not after the addon's half.
    const p = pythonForwards(python, file, batches, threads, repeats, warmup);
    torchVersion = p.torch;
    p.rows.forEach((r, i) => py[i].push(...r.ms));
    const a = await addonForwards(file, batches, threads, repeats, warmup, arms);
    for (const arm of arms) a[arm].forEach((ms, i) => addon[arm][i].push(...ms));
  }
  const rows: ModelBenchRow[] = batches.map((batch, i) => {
    const a = summary(addon.fp32[i]),
      p = summary(py[i]);
    const row: ModelBenchRow = {
      batch,
      addon_ms: a,
      python_ms: p,
      ratio_min: a.min / p.min,
      ratio_median: a.median / p.median,
    };
    if (addon.bf16) {
      const b = summary(addon.bf16[i]);
      Object.assign(row, { bf16_ms: b, bf16_ratio_min: b.min / p.min, bf16_ratio_median: b.median / p.median });
    }
    return row;
  });
  const inf = info();
  return {
    machine: {
      cpu: os.cpus()[0]?.model ?? 'unknown',
      cores: os.cpus().length,
      libtorch: inf.torch.version,
      python_torch: torchVersion,
      load: os.loadavg(),
    },
    model: file,
    threads,
    repeats,
    rounds: o.rounds ?? 1,
    omp_wait_policy: process.env.OMP_WAIT_POLICY ?? null,
    rows,
  };
}

function pythonForwards(python: string, file: string, batches: number[], ...n: [number, number, number]) {
  const [threads, repeats, warmup] = n.map(String);
  const args = ['--model', file, '--batches', batches.join(','), '--threads', threads];
  return runPython('torch_model.py', [...args, '--repeats', repeats, '--warmup', warmup], python) as {
    torch: string;
    rows: Array<{ batch: number; ms: number[] }>;
  };
}

/** ms per forward of each arm at each batch; the arms take turns forward by forward. */
async function addonForwards(
  file: string,
  batches: number[],
  threads: number,
  repeats: number,
  warmup: number,
  arms: Precision[],
) {
  setNumThreads(threads);
  // As a denoiser loads it: small forwards on the checked, inference-optimised copy, on one thread.
  const modules = await Promise.all(arms.map((p) => loadModule(file, inferenceLoad('cpu', p))));
  const stream = createStream();
  const out: Record<string, number[][]> = Object.fromEntries(arms.map((a) => [a, []]));
  for (const b of batches) {
    const inputs = [
      tensor(randn(b * 784, b), [b, 1, 28, 28]),
      tensor(
        Float32Array.from({ length: b }, (_, i) => (i + 0.5) / b),
        [b],
      ),
      tensor(
        BigInt64Array.from({ length: b }, (_, i) => BigInt(i % 10)),
        [b],
      ),
    ];
    const once = async (m: (typeof modules)[number]) => {
      const t = performance.now();
      const y = (await m.call('forward', inputs, stream)) as { dispose(): void };
      const ms = performance.now() - t;
      y.dispose();
      return ms;
    };
    for (const m of modules) for (let i = 0; i < warmup; i++) await once(m);
    const ms = arms.map(() => [] as number[]);
    for (let i = 0; i < repeats; i++) for (let k = 0; k < arms.length; k++) ms[k].push(await once(modules[k]));
    arms.forEach((a, k) => out[a].push(ms[k]));
    for (const t of inputs) t.dispose();
  }
  await stream.close();
  for (const m of modules) m.dispose();
  return out;
}

export function formatModelBench(r: Awaited<ReturnType<typeof benchModel>>): string {
  const f = (x: number) => x.toFixed(2).padStart(9);
  const bf16 = r.rows.some((x) => x.bf16_ms);
  const lines = [
    `forward of ${path.relative(process.cwd(), r.model) || r.model}, ${r.threads} thread(s), ${r.repeats} repeats ` +
      `× ${r.rounds} round(s) (${r.machine.cpu}, ${r.machine.cores} cores, libtorch ${r.machine.libtorch}, python ` +
      `torch ${r.machine.python_torch}, OMP_WAIT_POLICY=${r.omp_wait_policy ?? 'unset'}, load average ` +
      `${r.machine.load.map((l) => l.toFixed(1)).join(' ')})`,
    'batch   addon min  addon med  python min python med   ratio min  ratio med' +
      (bf16 ? '    bf16 min   bf16 med  bf16/py min bf16/py med' : ''),
  ];
  for (const x of r.rows)
    lines.push(
      `${String(x.batch).padStart(5)}  ${f(x.addon_ms.min)}  ${f(x.addon_ms.median)}  ${f(x.python_ms.min)}  ` +
        `${f(x.python_ms.median)}  ${f(x.ratio_min)}  ${f(x.ratio_median)}` +
        (x.bf16_ms
          ? `  ${f(x.bf16_ms.min)}  ${f(x.bf16_ms.median)}  ${f(x.bf16_ratio_min!)}  ${f(x.bf16_ratio_median!)}`
          : ''),
    );
  lines.push(
    'ms per forward; ratio = addon fp32 / python fp32 (goal ≤ 1.1)' +
      (bf16 ? '; bf16/py = addon bf16 / python fp32 eager (goal ≤ 0.7 at batch 16–64)' : ''),
  );
  return lines.join('\n');
}
