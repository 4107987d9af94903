/**
 * Results in bf16 against fp32: the same searches (same seeds, classes, prompts) on fashion-flow
 * and fashion-t2i in both precisions, judged by the eval/ classifier (never a verifier): its
 * accuracy and mean log p of the samples' classes, and the searches' mean reward. bf16 passes
 * where every difference is within the stated bounds.
 */
import os from 'node:os';
import { generate } from '../generate';
import type { Precision } from '../precision';

/** Bounds on |bf16 − fp32|: issue 27 asks mean log p within 0.05; accuracy and reward likewise. */
export const BOUNDS = { mean_log_prob: 0.05, accuracy: 0.05, mean_reward: 0.05 } as const;

interface Case {
  model: 'fashion-flow' | 'fashion-t2i';
  algorithm: 'best-of-n' | 'evosearch';
}

export interface PrecisionRow extends Case {
  precision: Precision;
  seconds: number;
  accuracy: number | null;
  mean_log_prob: number | null;
  mean_reward: number;
}

const PROMPTS = ['a dark dress', 'a small bright bag', 'a large grey coat', 'a sneaker'];
const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

async function run(c: Case, precision: Precision, budget: number, n: number): Promise<PrecisionRow> {
  const t = performance.now();
  const t2i = c.model === 'fashion-t2i';
  const r = await generate({
    model: c.model,
    algorithm: c.algorithm,
    budget,
    n: t2i ? Math.max(1, Math.round(n / PROMPTS.length)) : n,
    steps: 10,
    seed: 7,
    precision,
    ...(t2i ? { prompt: PROMPTS } : { class: 'Shirt' }),
  });
  const ev = t2i ? r.report.prompt_eval?.classes : r.report.eval;
  return {
    ...c,
    precision,
    seconds: (performance.now() - t) / 1000,
    accuracy: ev?.accuracy ?? null,
    mean_log_prob: ev?.mean_log_prob ?? null,
    mean_reward: mean(r.report.rewards),
  };
}

export async function benchPrecision(o: { budget?: number; n?: number } = {}) {
  const budget = o.budget ?? 100,
    n = o.n ?? 16;
  const rows: PrecisionRow[] = [];
  for (const model of ['fashion-flow', 'fashion-t2i'] as const)
    for (const algorithm of ['best-of-n', 'evosearch'] as const)
      for (const precision of ['fp32', 'bf16'] as const)
        rows.push(await run({ model, algorithm }, precision, budget, n));
  const pairs = rows
    .filter((r) => r.precision === 'fp32')
    .map((a) => {
      const b = rows.find((r) => r.precision === 'bf16' && r.model === a.model && r.algorithm === a.algorithm)!;
      const d = (k: keyof typeof BOUNDS) => (a[k] === null || b[k] === null ? null : Math.abs(b[k]! - a[k]!));
      const diff = { accuracy: d('accuracy'), mean_log_prob: d('mean_log_prob'), mean_reward: d('mean_reward') };
      const within = (Object.keys(BOUNDS) as Array<keyof typeof BOUNDS>).every(
        (k) => diff[k] === null || diff[k]! <= BOUNDS[k],
      );
      return { model: a.model, algorithm: a.algorithm, diff, within, speed: b.seconds / a.seconds };
    });
  return { budget, n, load: os.loadavg(), bounds: BOUNDS, rows, pairs };
}

export function formatPrecision(r: Awaited<ReturnType<typeof benchPrecision>>): string {
  const f = (x: number | null, d = 3) => (x === null ? '–' : x.toFixed(d));
  const lines = [
    `bf16 against fp32, same seeds: budget ${r.budget} NFE, ${r.n} searches per run, 10 steps; eval = ` +
      `eval/fashion-eval.pt (t2i: rows whose prompt names a class); load average ` +
      `${r.load.map((l) => l.toFixed(1)).join(' ')}`,
    '',
    '| model | algorithm | precision | eval accuracy | eval mean log p | mean reward | seconds |',
    '|---|---|---|---:|---:|---:|---:|',
    ...r.rows.map(
      (x) =>
        `| ${x.model} | ${x.algorithm} | ${x.precision} | ${f(x.accuracy)} | ${f(x.mean_log_prob)} | ` +
        `${f(x.mean_reward, 4)} | ${x.seconds.toFixed(2)} |`,
    ),
    '',
    `| model | algorithm | Δ accuracy (≤ ${BOUNDS.accuracy}) | Δ mean log p (≤ ${BOUNDS.mean_log_prob}) | ` +
      `Δ mean reward (≤ ${BOUNDS.mean_reward}) | within | bf16 ÷ fp32 seconds |`,
    '|---|---|---:|---:|---:|---|---:|',
    ...r.pairs.map(
      (p) =>
        `| ${p.model} | ${p.algorithm} | ${f(p.diff.accuracy)} | ${f(p.diff.mean_log_prob)} | ` +
        `${f(p.diff.mean_reward, 4)} | ${p.within ? 'yes' : 'NO'} | ${p.speed.toFixed(2)} |`,
    ),
  ];
  return lines.join('\n');
}

/** bench/precision.js: --json, --budget b, --n n. */
export async function main(argv: string[]): Promise<void> {
  const arg = (name: string) => {
    const i = argv.indexOf(name);
    return i >= 0 ? Number(argv[i + 1]) : undefined;
  };
  const r = await benchPrecision({ budget: arg('--budget'), n: arg('--n') });
  process.stdout.write((argv.includes('--json') ? JSON.stringify(r, null, 2) : formatPrecision(r)) + '\n');
  if (r.pairs.some((p) => !p.within)) process.exitCode = 1;
}
