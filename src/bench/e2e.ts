/**
 * End-to-end benchmark: this library's best-of-N (`generate`, as the CLI runs it) against the
 * same search as a plain PyTorch loop (bench/torch_search.py), alternating the two runtimes so
 * both see the same machine state. Both time cold runs: loading the modules to the last score.
 */
import os from 'node:os';
import { generate } from '../generate';
import type { Precision } from '../precision';
import { resolveModel } from '../models/registry';
import { setNumThreads } from '../stream';
import { findPython, runPython, summary } from './model';

export interface E2eOptions {
  budget?: number;
  n?: number;
  steps?: number;
  cls?: number;
  threads?: number;
  repeats?: number;
  python?: string;
  /** 'bf16': also generate in bf16, in the same rounds (default 'fp32' only). */
  precision?: Precision;
}

export async function benchE2e(o: E2eOptions = {}) {
  const budget = o.budget ?? 500,
    n = o.n ?? 4,
    steps = o.steps ?? 10,
    cls = o.cls ?? 6;
  const threads = o.threads ?? 2,
    repeats = o.repeats ?? 3;
  const flow = resolveModel('fashion-flow').file,
    classifier = resolveModel('classifier').file;
  const py3 = findPython(o.python);
  setNumThreads(threads);
  const arms: Precision[] = o.precision === 'bf16' ? ['fp32', 'bf16'] : ['fp32'];
  const seconds: Record<string, number[]> = { fp32: [], bf16: [] },
    python: number[] = [];
  for (let i = 0; i < repeats; i++) {
    for (const precision of arms) {
      const t = performance.now();
      const r = await generate({
        model: 'fashion-flow',
        algorithm: 'best-of-n',
        budget,
        n,
        steps,
        class: cls,
        eval: false,
        precision,
      });
      seconds[precision].push((performance.now() - t) / 1000);
      if (r.samples.length === 0) throw new Error('generate returned no samples');
    }
    const py = runPython(
      'torch_search.py',
      [
        '--model',
        flow,
        '--classifier',
        classifier,
        '--cls',
        String(cls),
        '--budget',
        String(budget),
        '--n',
        String(n),
        '--steps',
        String(steps),
        '--threads',
        String(threads),
      ],
      py3,
    ) as { seconds: number[] };
    python.push(py.seconds[0]);
  }
  const a = summary(seconds.fp32),
    p = summary(python);
  const b = seconds.bf16.length ? summary(seconds.bf16) : null;
  return {
    search: `best-of-n, fashion-flow, class ${cls}, ${steps} Euler steps, ${budget} NFE x ${n} samples`,
    threads,
    repeats,
    omp_wait_policy: process.env.OMP_WAIT_POLICY ?? null,
    addon_seconds: a,
    python_seconds: p,
    ratio_min: a.min / p.min,
    ratio_median: a.median / p.median,
    bf16_seconds: b,
    bf16_ratio_min: b ? b.min / p.min : null,
    bf16_ratio_median: b ? b.median / p.median : null,
    load: os.loadavg(),
  };
}

export function formatE2e(r: Awaited<ReturnType<typeof benchE2e>>): string {
  const s = (x: { min: number; median: number }) => `min ${x.min.toFixed(2)} s, median ${x.median.toFixed(2)} s`;
  return [
    `${r.search}, ${r.threads} thread(s), ${r.repeats} repeats (OMP_WAIT_POLICY=${r.omp_wait_policy ?? 'unset'})`,
    `  diffusion-search generate: ${s(r.addon_seconds)}`,
    `  plain PyTorch loop:        ${s(r.python_seconds)}`,
    `  ratio: ${r.ratio_min.toFixed(3)} (min), ${r.ratio_median.toFixed(3)} (median); goal ≤ 1.05`,
    ...(r.bf16_seconds
      ? [
          `  diffusion-search bf16:     ${s(r.bf16_seconds)}`,
          `  bf16 ÷ PyTorch fp32 loop: ${r.bf16_ratio_min!.toFixed(3)} (min), ${r.bf16_ratio_median!.toFixed(3)} ` +
            '(median); goal ≤ 0.7',
        ]
      : []),
    `  load average ${r.load.map((l) => l.toFixed(1)).join(' ')}`,
  ].join('\n');
}
