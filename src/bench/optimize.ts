/**
 * Each shipped denoiser's forward, and each class-scored verifier's and eval model's (x0, class),
 * as saved, frozen (torch::jit::freeze) and frozen with optimize_for_inference, per batch size and
 * thread count, the three taking turns forward by forward; with the largest relative difference
 * of each copy's output. It is the curve that sets OPTIMIZED_FORWARDS (src/request/defaults.ts).
 */
import os from 'node:os';
import { loadModule } from '../module';
import { native, type NativeModule, type NativeTensor } from '../native';
import { maxRelDiff } from '../module-variant';
import { shipped } from '../models/shipped';
import { setNumThreads } from '../stream';
import { tensor } from '../tensor';
import { summary } from './model';

interface Spec {
  sample_shape?: number[];
  classes?: unknown[];
  /** An eval model's labels when they are not the classes (video-direction-eval's directions). */
  directions?: unknown[];
  conditions?: Array<{ dtype: string; shape: number[] }>;
}

/** A shipped model's forward inputs for `rows` rows; null for kinds this bench does not feed. */
function inputsFor(kind: string, card: Spec & { inputs?: unknown }, rows: number): NativeTensor[] | null {
  if (kind === 'denoiser') return inputs(card, rows);
  if ((kind !== 'verifier' && kind !== 'eval') || card.inputs || !card.sample_shape) return null;
  const [x, sigma, cls] = inputs({ sample_shape: card.sample_shape, classes: card.directions ?? card.classes }, rows);
  sigma.dispose();
  return [x, cls];
}

function inputs(card: Spec, rows: number): NativeTensor[] {
  const size = (card.sample_shape ?? []).reduce((a, b) => a * b, 1);
  const x = tensor(
    Float32Array.from({ length: rows * size }, (_, i) => Math.sin(i * 12.9898) * 0.9),
    [rows, ...(card.sample_shape ?? [])],
  );
  const sigma = tensor(
    Float32Array.from({ length: rows }, (_, i) => (i + 0.5) / rows),
    [rows],
  );
  if (!card.conditions)
    return [
      x,
      sigma,
      tensor(
        BigInt64Array.from({ length: rows }, (_, i) => BigInt(i % (card.classes?.length || 10))),
        [rows],
      ),
    ];
  const conds = card.conditions.map((c) => {
    const n = rows * c.shape.reduce((a, b) => a * b, 1);
    if (c.dtype === 'bool') return native().fromArray(new Uint8Array(n).fill(1), [rows, ...c.shape]) as NativeTensor;
    return tensor(
      Float32Array.from({ length: n }, (_, i) => Math.cos(i * 7.31) * 0.5),
      [rows, ...c.shape],
    );
  });
  return [x, sigma, ...conds];
}

async function time(m: NativeModule, x: NativeTensor[]): Promise<[number, Float32Array]> {
  const t = performance.now();
  const y = (await m.call('forward', x)) as NativeTensor;
  const ms = performance.now() - t;
  const a = (await y.toArray()) as Float32Array;
  y.dispose();
  return [ms, a];
}

export async function benchOptimize(
  o: { batches?: number[]; threads?: number[]; repeats?: number; models?: string[] } = {},
) {
  const batches = o.batches ?? [1, 2, 4, 16, 64],
    threads = o.threads ?? [1, 2],
    repeats = o.repeats ?? 8;
  const rows = [];
  for (const s of shipped.filter((m) => !o.models || o.models.includes(m.name))) {
    const m = await loadModule(s.name).catch(() => null);
    if (!m) continue;
    if (!inputsFor(s.kind, m.card as Spec, 1)) {
      m.dispose();
      continue;
    }
    const plain = await native().loadModule(m.path);
    const variants = [plain, await plain.optimize({ inference: false }), await plain.optimize({ inference: true })];
    for (const t of threads) {
      setNumThreads(t);
      for (const b of batches) {
        const x = inputsFor(s.kind, m.card as Spec, b)!;
        const ms: number[][] = variants.map(() => []);
        let ref: Float32Array | null = null;
        const diff = [0, 0, 0];
        for (let r = 0; r < repeats + 2; r++)
          for (let k = 0; k < variants.length; k++) {
            const [v, a] = await time(variants[k], x);
            if (k === 0) ref = a;
            else diff[k] = Math.max(diff[k], maxRelDiff(a, ref!));
            if (r >= 2) ms[k].push(v / b);
          }
        const [p, f, i] = ms.map(summary);
        rows.push({ model: s.name, threads: t, batch: b, plain: p, frozen: f, inference: i, diff });
        for (const v of x) v.dispose();
      }
    }
    for (const v of variants) v.dispose();
    m.dispose();
  }
  return { load: os.loadavg(), repeats, rows };
}

export function formatOptimize(r: Awaited<ReturnType<typeof benchOptimize>>): string {
  const f = (x: { min: number; median: number }) => `${x.min.toFixed(2)} / ${x.median.toFixed(2)}`;
  return [
    `ms per row, min / median of ${r.repeats} (the three take turns); load average ` +
      r.load.map((l) => l.toFixed(1)).join(' '),
    '',
    '| model | threads | batch | as saved | frozen | frozen + optimize_for_inference | inference ÷ saved (min) | ' +
      'max rel. diff frozen, inference |',
    '|---|---:|---:|---:|---:|---:|---:|---:|',
    ...r.rows.map(
      (x) =>
        `| ${x.model} | ${x.threads} | ${x.batch} | ${f(x.plain)} | ${f(x.frozen)} | ${f(x.inference)} | ` +
        `${(x.inference.min / x.plain.min).toFixed(2)} | ` +
        `${x.diff[1].toExponential(1)}, ${x.diff[2].toExponential(1)} |`,
    ),
  ].join('\n');
}

/** bench/optimize.js: --json, --models fashion-flow,classifier (default: every shipped model it can feed). */
export async function main(argv: string[]): Promise<void> {
  const i = argv.indexOf('--models');
  const r = await benchOptimize({ models: i >= 0 ? argv[i + 1].split(',') : undefined });
  process.stdout.write((argv.includes('--json') ? JSON.stringify(r, null, 2) : formatOptimize(r)) + '\n');
}
