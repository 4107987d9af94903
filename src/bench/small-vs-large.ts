/**
 * A small model with search against a large one without (EvoSearch's headline), at equal compute per
 * sample: every cell runs over seeds with a verifier that counts the rows it scores, so a sample's
 * multiply-accumulates are NFE × (the denoiser's MACs per NFE) + rows scored × (the verifier's MACs
 * per row), both counted by scripts/science/flops.py. Eval accuracy and log p are the held-out eval
 * model's (report.eval); intervals are 95 % t-intervals over seeds.
 */
import { generate } from '../generate';
import { type Interval, tInterval } from '../eval/interval';
import { loadVerifier } from '../models/registry';
import type { AlgorithmName } from '../search';
import { FunctionVerifier } from '../verifiers/verifier';
import { lineChartSvg } from '../io/svg';

export interface ComputeCell {
  model: string;
  algorithm: AlgorithmName;
  budget: number;
}

export interface ComputeOptions {
  classes: string[];
  cells: ComputeCell[];
  n: number;
  seeds: number;
  /** MACs per NFE of each model, and per scored row of the verifier. */
  macsPerNfe: Record<string, number>;
  verifierMacs: number;
  verifier: string;
}

export interface ComputeRow extends ComputeCell {
  cls: string;
  nfe: Interval;
  gmacs: Interval;
  eval_accuracy: Interval;
  eval_log_prob: Interval;
  wall_ms_per_sample: Interval;
}

/** The verifier, wrapped to count the rows it scores. */
async function countingVerifier(name: string) {
  const inner = await loadVerifier([name]);
  const counter = { rows: 0 };
  const v = new FunctionVerifier(`counted(${inner.name})`, async (x0, cond, extras) => {
    counter.rows += cond.length;
    return inner.score(x0, cond, extras);
  });
  return { v, counter };
}

/** One seed of one cell: NFE, GMACs and wall ms per sample, eval accuracy and log p. */
async function runOnce(o: ComputeOptions, c: ComputeCell, cls: string, seed: number) {
  const { v, counter } = await countingVerifier(o.verifier);
  const opts = c.algorithm === 'baseline' ? { scaleSteps: true } : {};
  const r = await generate({
    model: c.model,
    class: cls,
    algorithm: c.algorithm,
    budget: c.budget,
    n: o.n,
    seed,
    verifier: [v],
    algorithmOptions: opts,
    eval: true,
  });
  const rep = r.report;
  const macs = rep.nfe_used * o.macsPerNfe[c.model] + counter.rows * o.verifierMacs;
  return {
    nfe: rep.nfe_used / rep.n,
    gmacs: macs / rep.n / 1e9,
    wall: (1000 * rep.search_seconds) / rep.n,
    acc: rep.eval?.accuracy ?? NaN,
    logp: rep.eval?.mean_log_prob ?? NaN,
  };
}

/** Every class × cell over the seeds. */
export async function smallVsLarge(o: ComputeOptions, log: (s: string) => void = () => {}): Promise<ComputeRow[]> {
  const rows: ComputeRow[] = [];
  for (const cls of o.classes)
    for (const c of o.cells) {
      const runs: Array<Awaited<ReturnType<typeof runOnce>>> = [];
      for (let s = 0; s < o.seeds; s++) runs.push(await runOnce(o, c, cls, s));
      const iv = (k: keyof (typeof runs)[number]) => tInterval(runs.map((r) => r[k]));
      rows.push({
        ...c,
        cls,
        nfe: iv('nfe'),
        gmacs: iv('gmacs'),
        eval_accuracy: iv('acc'),
        eval_log_prob: iv('logp'),
        wall_ms_per_sample: iv('wall'),
      });
      log(JSON.stringify(rows[rows.length - 1]));
    }
  return rows;
}

const pm = (x: Interval, d: number, scale = 1) =>
  x.half === null ? (scale * x.mean).toFixed(d) : `${(scale * x.mean).toFixed(d)} ± ${(scale * x.half).toFixed(d)}`;

export function computeTable(rows: ComputeRow[]): string {
  const lines = [
    '| class | model | algorithm | budget | NFE/sample | GMACs/sample | eval accuracy | eval log p | wall ms/sample |',
    '|---|---|---|---:|---:|---:|---:|---:|---:|',
  ];
  for (const r of rows)
    lines.push(
      `| ${r.cls} | ${r.model} | ${r.algorithm} | ${r.budget} | ${r.nfe.mean.toFixed(0)} | ` +
        `${r.gmacs.mean.toFixed(2)} | ` +
        `${pm(r.eval_accuracy, 0, 100)} % | ${pm(r.eval_log_prob, 3)} | ${pm(r.wall_ms_per_sample, 0)} |`,
    );
  return lines.join('\n') + '\n';
}

/** Legend names of the shipped pair (the legend has room for about 22 characters). */
const SHORT: Record<string, string> = { 'fashion-flow': 'large', 'fashion-flow-small': 'small' };

/** One panel per class: `measure` against GMACs per sample, a series per model × algorithm, 95 % bars. */
export function computeSvg(rows: ComputeRow[], measure: 'eval_accuracy' | 'eval_log_prob'): string {
  const scale = measure === 'eval_accuracy' ? 100 : 1;
  const label = (r: ComputeRow) => `${SHORT[r.model] ?? r.model} ${r.algorithm === 'baseline' ? 'plain' : r.algorithm}`;
  const names = [...new Set(rows.map(label))];
  const panels = [...new Set(rows.map((r) => r.cls))].map((cls) => ({
    title: cls,
    ylabel: measure === 'eval_accuracy' ? 'eval accuracy (%)' : 'eval mean log p(class | x)',
    series: names.map((name) => {
      const rs = rows.filter((r) => r.cls === cls && label(r) === name);
      return {
        name,
        points: rs.map((r) => [r.gmacs.mean, scale * r[measure].mean] as [number, number]),
        errors: rs.map((r) => (r[measure].half === null ? null : scale * (r[measure].half as number))),
      };
    }),
  }));
  return lineChartSvg(panels, 'GMACs per sample (denoiser + verifier; log scale); bars: 95 % t-intervals');
}
