/**
 * `diffusion-search sweep`: every algorithm at every budget on the same seeds; table and scaling plot.
 * With --seeds S each cell runs S times (seeds seed … seed+S−1) and reports means with 95 % t-intervals.
 */
import path from 'node:path';
import { writeFileAtomic } from '../io/atomic';
import type { Command } from 'commander';
import { DiffusionSearchError } from '../errors';
import { DEFAULT_STEPS, generate, type GenerateResult } from '../generate';
import { algorithms, type AlgorithmName } from '../search';
import { int, intList, num, oneOf } from './options';
import { prepareOut, readPrompts } from './generate-command';
import { ProgressBar } from './progress';
import {
  aggregate,
  type CellMeasures,
  INTERVAL_NOTE,
  measuresOf,
  type SweepRow,
  scalingSvg,
  skippedRow,
  sweepTable,
} from './sweep-stats';

export { type SweepRow, scalingSvg, sweepTable } from './sweep-stats';

export function addSweep(program: Command): void {
  program
    .command('sweep')
    .description('every algorithm at every budget on the same seeds: report.json, table.md and scaling.svg')
    .option('--model <name|path>', 'shipped model name or TorchScript file', 'fashion-flow')
    .option('--class <name|index>', 'class to condition on', '0')
    .option('--prompt <text>', 'prompt of a text-conditioned model (repeatable)', (v: string, p: string[] = []) => [
      ...p,
      v,
    ])
    .option('--prompts <file>', 'prompts of a text-conditioned model, one per line')
    .option('--algorithms <list>', 'comma-separated algorithms', 'baseline,best-of-n,evosearch')
    .option('--budgets <list>', 'comma-separated NFE per sample', '50,100,200,400')
    .option('--n <samples>', 'samples per algorithm and budget', '4')
    .option('--seed <int>', 'seed shared by every run (the first of --seeds)', '0')
    .option('--seeds <S>', 'repeat each cell over S seeds: means and 95 % t-intervals', '1')
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
        '--budgets 100,1000,10000 --seeds 5',
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
      const seeds = int('seeds', o.seeds, 1, 10000)!;
      const prompts = readPrompts(o.prompt, o.prompts);
      const runs = n * seeds * (prompts?.length ?? 1);
      const total = algos.length * budgets.reduce((a, b) => a + b, 0) * runs;
      let done = 0;
      const rows: SweepRow[] = [];
      try {
        for (const algorithm of algos)
          for (const budget of budgets) {
            const progress = (nfe: number) => bar?.update(done + nfe, total, `${algorithm} @ ${budget}`);
            rows.push(await sweepSeeds(o, { algorithm, budget, n, seeds, prompts }, progress));
            done += budget * runs;
          }
      } finally {
        bar?.done();
      }
      const config = {
        model: o.model,
        class: prompts ? null : o.class,
        prompts: prompts ?? null,
        algorithms: algos,
        budgets,
        n,
        seed: o.seed,
        seeds,
        interval: seeds > 1 ? INTERVAL_NOTE : null,
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

interface Cell {
  algorithm: AlgorithmName;
  budget: number;
  n: number;
  seeds: number;
  prompts: string[] | undefined;
}

/** A cell over its seeds; a budget below the algorithm's minimum is a skipped row. */
async function sweepSeeds(o: SweepFlags, c: Cell, progress: (nfe: number) => void): Promise<SweepRow> {
  const seed0 = int('seed', o.seed, 0, Number.MAX_SAFE_INTEGER)!;
  const perRun = c.budget * c.n * (c.prompts?.length ?? 1);
  const runs: CellMeasures[] = [];
  for (let s = 0; s < c.seeds; s++) {
    const r = await sweepCell(o, c, seed0 + s, (nfe) => progress(s * perRun + nfe));
    if (typeof r === 'string') return skippedRow(c.algorithm, c.budget, c.seeds, r);
    runs.push(measuresOf(r.report, r.rewards, r.report.n));
  }
  return aggregate(c.algorithm, c.budget, runs);
}

/** One run of a cell at one seed; the error message when the budget is below the algorithm's minimum. */
async function sweepCell(
  o: SweepFlags,
  c: Cell,
  seed: number,
  progress: (nfe: number) => void,
): Promise<GenerateResult | string> {
  try {
    return await generate(
      {
        model: String(o.model),
        ...(c.prompts ? { prompt: c.prompts } : { class: String(o.class) }),
        algorithm: c.algorithm,
        budget: c.budget,
        n: c.n,
        seed,
        steps: int('steps', o.steps, 1),
        verifier: o.verifier as string[] | undefined,
        device: String(o.device),
        guidance: num('guidance', o.guidance),
        algorithmOptions: c.algorithm === 'baseline' ? { scaleSteps: true } : {},
      },
      { onProgress: (p) => progress(p.totalNfe) },
    );
  } catch (e) {
    // A budget below an algorithm's minimum leaves a gap in the table, not a failed sweep.
    if (!(e instanceof DiffusionSearchError && e.code === 'BUDGET')) throw e;
    return e.message;
  }
}
