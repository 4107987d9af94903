/**
 * EvoSearch selection: the reference code's (the default: every trajectory scored through the level
 * in the pool, earlier generations included, ⌊0.9·P⌋ entrants drawn without replacement, elites
 * included) against a pool of the elites and the latest children only, and against our earliest
 * default (⌊0.2·P⌋ entrants with replacement, latest pool). Same seeds for every setting
 * (paired), on the gmm2d toy (its reward) and on fashion-flow "Shirt" with the classifier verifier,
 * judged by the held-out eval classifier (accuracy, mean log-probability of the class).
 *
 *   node bench/tournament.js [--gmm-seeds 100] [--fashion-seeds 24] [--json]   (figures: bench/RESULTS.md)
 */
import fs from 'node:fs';
import { Evaluator, DEFAULT_EVAL_MODEL } from '../eval/metrics';
import { Denoiser } from '../models/denoiser';
import { loadVerifier, resolveModel } from '../models/registry';
import { uniform } from '../schedules';
import { evoSearch, type EvoSearchOptions } from '../search/evosearch';
import type { Verifier } from '../verifiers/verifier';

export const SETTINGS: Record<string, EvoSearchOptions> = {
  'pool all, ⌊0.9·P⌋ without replacement (reference; default)': {},
  'pool latest, ⌊0.9·P⌋ without replacement': { pool: 'latest' },
  'pool latest, 0.2 with replacement (earliest default)': { pool: 'latest', tournament: 0.2, replacement: true },
};

interface Row {
  model: string;
  setting: string;
  seeds: number;
  budget: number;
  mean_reward: number;
  /** Standard error of the paired difference to the first setting (same seeds). */
  diff_vs_first: number;
  diff_se: number;
  eval_accuracy?: number;
  eval_log_prob?: number;
  eval_log_prob_diff?: number;
  eval_log_prob_se?: number;
}

async function runSetting(
  denoiser: Denoiser,
  verifier: Verifier,
  cls: number,
  budget: number,
  steps: number,
  seeds: number[],
  o: EvoSearchOptions,
) {
  const rewards: number[] = [];
  const samples: Float32Array[] = [];
  for (const seed of seeds) {
    const r = await evoSearch({ denoiser, verifier, cls, budget, sigmas: uniform(steps), seed }, o);
    rewards.push(r.reward);
    samples.push((await r.sample.toArray()) as Float32Array);
    r.sample.dispose();
  }
  return { rewards, samples };
}

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
const se = (xs: number[]) =>
  Math.sqrt(xs.reduce((s, x) => s + (x - mean(xs)) ** 2, 0) / Math.max(1, xs.length - 1) / xs.length);

async function compare(
  model: string,
  verifier: Verifier,
  cls: number,
  budget: number,
  steps: number,
  seeds: number[],
  judge?: Evaluator,
): Promise<Row[]> {
  const denoiser = await Denoiser.load(resolveModel(model).file, { maxBatch: 64 });
  const rows: Row[] = [];
  let base: number[] | null = null,
    baseJudge: number[] | null = null;
  for (const [setting, o] of Object.entries(SETTINGS)) {
    const { rewards, samples } = await runSetting(denoiser, verifier, cls, budget, steps, seeds, o);
    base ??= rewards;
    const d = rewards.map((r, i) => r - base![i]);
    const row: Row = {
      model,
      setting,
      seeds: seeds.length,
      budget,
      mean_reward: mean(rewards),
      diff_vs_first: mean(d),
      diff_se: se(d),
    };
    if (judge) {
      // Per seed, for the paired difference.
      const reps = [];
      for (const s of samples) reps.push(await judge.evaluate(s, [1, ...denoiser.sampleShape], [cls]));
      const lp = reps.map((r) => r.mean_log_prob);
      baseJudge ??= lp;
      const dj = lp.map((v, i) => v - baseJudge![i]);
      row.eval_accuracy = mean(reps.map((r) => r.accuracy));
      row.eval_log_prob = mean(lp);
      row.eval_log_prob_diff = mean(dj);
      row.eval_log_prob_se = se(dj);
    }
    rows.push(row);
  }
  return rows;
}

export async function benchTournament(o: { gmmSeeds?: number; fashionSeeds?: number } = {}): Promise<Row[]> {
  const rows: Row[] = [];
  const gmmSeeds = Array.from({ length: o.gmmSeeds ?? 100 }, (_, i) => 1000 + i);
  rows.push(...(await compare('gmm2d', await loadVerifier(['gmm2d-reward']), 0, 3000, 20, gmmSeeds)));
  const n = o.fashionSeeds ?? 24;
  if (n > 0) {
    const judge = fs.existsSync(DEFAULT_EVAL_MODEL) ? await Evaluator.load() : undefined;
    rows.push(
      ...(await compare(
        'fashion-flow',
        await loadVerifier(['classifier']),
        6,
        500,
        10,
        Array.from({ length: n }, (_, i) => i),
        judge,
      )),
    );
  }
  return rows;
}

/** The command line: prints a Markdown table (or --json). */
export function main(): void {
  process.env.OMP_WAIT_POLICY ??= 'PASSIVE';
  const arg = (name: string) => {
    const i = process.argv.indexOf(name);
    return i > 0 ? Number(process.argv[i + 1]) : undefined;
  };
  benchTournament({ gmmSeeds: arg('--gmm-seeds'), fashionSeeds: arg('--fashion-seeds') }).then(
    (rows) => {
      if (process.argv.includes('--json')) return console.log(JSON.stringify(rows, null, 2));
      console.log(
        '| model | setting | seeds | NFE | mean best reward | paired diff vs the first (± s.e.) | eval accuracy | ' +
          'eval log-prob | paired diff vs the first (± s.e.) |',
      );
      console.log('|---|---|---:|---:|---:|---:|---:|---:|---:|');
      for (const r of rows) {
        const logProbDiff =
          r.eval_log_prob_diff === undefined
            ? ''
            : `${r.eval_log_prob_diff.toFixed(3)} ± ${r.eval_log_prob_se!.toFixed(3)}`;
        console.log(
          `| ${r.model} | ${r.setting} | ${r.seeds} | ${r.budget} | ${r.mean_reward.toFixed(4)} | ` +
            `${r.diff_vs_first.toFixed(4)} ± ${r.diff_se.toFixed(4)} | ` +
            `${r.eval_accuracy === undefined ? '' : (100 * r.eval_accuracy).toFixed(1) + ' %'} | ` +
            `${r.eval_log_prob?.toFixed(3) ?? ''} | ${logProbDiff} |`,
        );
      }
    },
    (e) => {
      console.error(e);
      process.exit(1);
    },
  );
}

if (require.main === module) main();
