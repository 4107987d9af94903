/** `diffusion-search sweep`: every algorithm at every budget on the same seeds; table and scaling plot. */
import path from 'node:path';
import { writeFileAtomic } from '../io/atomic';
import type { Command } from 'commander';
import { DiffusionSearchError } from '../errors';
import { DEFAULT_STEPS, generate, type GenerateResult } from '../generate';
import { lineChartSvg } from '../io/svg';
import { algorithms, type AlgorithmName } from '../search';
import { int, intList, num, oneOf } from './options';
import { prepareOut } from './generate-command';
import { ProgressBar } from './progress';

export interface SweepRow {
  algorithm: string;
  budget: number;
  nfe_used: number;
  mean_reward: number;
  eval_accuracy: number | null;
  eval_log_prob: number | null;
  fid: number | null;
  wall_seconds: number;
  /** Why the cell has no result (e.g. a budget below the algorithm's minimum). */
  skipped?: string;
}

export function addSweep(program: Command): void {
  program
    .command('sweep')
    .description('every algorithm at every budget on the same seeds: report.json, table.md and scaling.svg')
    .option('--model <name|path>', 'shipped model name or TorchScript file', 'fashion-flow')
    .option('--class <name|index>', 'class to condition on', '0')
    .option('--algorithms <list>', 'comma-separated algorithms', 'baseline,best-of-n,evosearch')
    .option('--budgets <list>', 'comma-separated NFE per sample', '50,100,200,400')
    .option('--n <samples>', 'samples per algorithm and budget', '4')
    .option('--seed <int>', 'seed shared by every run', '0')
    .option('--steps <n>', 'denoising steps of the schedule', String(DEFAULT_STEPS))
    .option('--verifier <name|path>', 'verifier (repeatable)', (v: string, p: string[] = []) => [...p, v])
    .option('--device <device>', 'cpu or cuda[:N]', 'cpu')
    .option('--guidance <w>', 'classifier-free guidance weight', '1')
    .option('--out <dir>', 'output directory', 'sweep')
    .option('--json', 'no progress bar; print the rows as JSON')
    .addHelpText(
      'after',
      '\nExamples:\n  $ diffusion-search sweep --class Shirt --algorithms best-of-n,evosearch --budgets ' +
        '50,100,200,400 --n 8\n  $ diffusion-search sweep --model gmm2d --algorithms best-of-n,beam,evosearch ' +
        '--budgets 100,1000,10000',
    )
    .action(async (o: SweepFlags) => {
      const algos = String(o.algorithms)
        .split(',')
        .map((a) => oneOf('algorithms', a.trim(), Object.keys(algorithms) as AlgorithmName[])!);
      const budgets = intList('budgets', o.budgets)!;
      if (budgets.some((b) => b < 1)) throw new DiffusionSearchError('--budgets must be positive', 'ARGUMENT');
      const out = String(o.out);
      prepareOut(out);
      const bar = ProgressBar.enabled(!!o.json) ? new ProgressBar() : null;
      const n = int('n', o.n, 1)!;
      const total = algos.length * budgets.reduce((a, b) => a + b, 0) * n;
      let done = 0;
      const rows: SweepRow[] = [];
      try {
        for (const algorithm of algos)
          for (const budget of budgets) {
            const progress = (nfe: number) => bar?.update(done + nfe, total, `${algorithm} @ ${budget}`);
            rows.push(await sweepCell(o, algorithm, budget, n, progress));
            done += budget * n;
          }
      } finally {
        bar?.done();
      }
      const config = {
        model: o.model,
        class: o.class,
        algorithms: algos,
        budgets,
        n,
        seed: o.seed,
        steps: o.steps,
        verifier: o.verifier ?? null,
        device: o.device,
      };
      writeFileAtomic(path.join(out, 'report.json'), JSON.stringify({ config, rows }, null, 2) + '\n');
      writeFileAtomic(path.join(out, 'table.md'), sweepTable(rows));
      writeFileAtomic(path.join(out, 'scaling.svg'), scalingSvg(rows));
      if (o.json) process.stdout.write(JSON.stringify({ config, rows }) + '\n');
      else console.log(sweepTable(rows) + `\nwrote ${path.join(out, 'report.json')}, table.md, scaling.svg`);
    });
}

type SweepFlags = Record<string, string | string[] | boolean | undefined>;

/** One cell of the sweep: `algorithm` at `budget`; a budget below the algorithm's minimum is a skipped row. */
async function sweepCell(
  o: SweepFlags,
  algorithm: AlgorithmName,
  budget: number,
  n: number,
  progress: (nfe: number) => void,
): Promise<SweepRow> {
  let r: GenerateResult;
  try {
    r = await generate(
      {
        model: String(o.model),
        class: String(o.class),
        algorithm,
        budget,
        n,
        seed: int('seed', o.seed, 0, Number.MAX_SAFE_INTEGER),
        steps: int('steps', o.steps, 1),
        verifier: o.verifier as string[] | undefined,
        device: String(o.device),
        guidance: num('guidance', o.guidance),
        algorithmOptions: algorithm === 'baseline' ? { scaleSteps: true } : {},
      },
      { onProgress: (p) => progress(p.totalNfe) },
    );
  } catch (e) {
    // A budget below an algorithm's minimum leaves a gap in the table, not a failed sweep.
    if (!(e instanceof DiffusionSearchError && e.code === 'BUDGET')) throw e;
    return {
      algorithm,
      budget,
      nfe_used: NaN,
      mean_reward: NaN,
      eval_accuracy: null,
      eval_log_prob: null,
      fid: null,
      wall_seconds: 0,
      skipped: e.message,
    };
  }
  const rep = r.report as {
    nfe_used: number;
    wall_seconds: number;
    eval: { accuracy: number; mean_log_prob: number; fid: number | null } | null;
  };
  return {
    algorithm,
    budget,
    nfe_used: rep.nfe_used / n,
    mean_reward: r.rewards.reduce((a, b) => a + b, 0) / r.rewards.length,
    eval_accuracy: rep.eval?.accuracy ?? null,
    eval_log_prob: rep.eval?.mean_log_prob ?? null,
    fid: rep.eval?.fid ?? null,
    wall_seconds: rep.wall_seconds,
  };
}

const f = (v: number | null, d: number) => (v === null || !Number.isFinite(v) ? 'n/a' : v.toFixed(d));

export function sweepTable(rows: SweepRow[]): string {
  const lines = [
    '| algorithm | budget (NFE/sample) | NFE used | mean verifier reward | eval accuracy | eval log-prob | Fréchet ' +
      'distance | wall s |',
    '|---|---:|---:|---:|---:|---:|---:|---:|',
  ];
  for (const r of rows)
    if (r.skipped) lines.push(`| ${r.algorithm} | ${r.budget} | budget too small | | | | | |`);
    else
      lines.push(
        `| ${r.algorithm} | ${r.budget} | ${f(r.nfe_used, 0)} | ${f(r.mean_reward, 4)} | ` +
          `${r.eval_accuracy === null ? 'n/a' : (100 * r.eval_accuracy).toFixed(1) + ' %'} | ` +
          `${f(r.eval_log_prob, 3)} | ${f(r.fid, 2)} | ${f(r.wall_seconds, 1)} |`,
      );
  return lines.join('\n') + '\n';
}

export function scalingSvg(rows: SweepRow[]): string {
  const algos = [...new Set(rows.map((r) => r.algorithm))];
  const series = (y: (r: SweepRow) => number | null) =>
    algos.map((a) => ({
      name: a,
      points: rows
        .filter((r) => r.algorithm === a && !r.skipped && y(r) !== null)
        .map((r) => [r.nfe_used, y(r)!] as [number, number]),
    }));
  const panels = [
    { title: 'Verifier reward vs NFE', ylabel: 'mean verifier reward', series: series((r) => r.mean_reward) },
  ];
  if (rows.some((r) => r.eval_accuracy !== null))
    panels.push(
      {
        title: 'Eval classifier accuracy vs NFE',
        ylabel: 'eval accuracy (%)',
        series: series((r) => (r.eval_accuracy === null ? null : 100 * r.eval_accuracy)),
      },
      {
        title: 'Eval log-probability of the class vs NFE',
        ylabel: 'eval mean log p(class | x)',
        series: series((r) => r.eval_log_prob),
      },
    );
  return lineChartSvg(panels, 'NFE per sample (log scale)');
}
