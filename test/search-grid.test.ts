/**
 * The algorithm × option grid through the public generate(): every algorithm × fixed / adaptive
 * schedule × guidance 1 / 3 × euler / heun / sde, on gmm2d and fashion-flow, at small budgets. Each
 * cell either runs within its budget with the steps it reports matching what ran, or is refused
 * with ARGUMENT; none ends in another error.
 * The adaptive cells use test/fixtures/tpm-half.pt, a module that always predicts r = 1/2: every
 * sample from σ0 takes a known number of steps, so the steps and NFE reported can be checked exactly.
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { DiffusionSearchError } from '../src/errors';
import { generate, type GenerateOptions } from '../src/generate';
import { algorithms, type AlgorithmName } from '../src/search';
import { uniform } from '../src/schedules';
import { fixture } from './helpers';

process.env.OMP_WAIT_POLICY ??= 'PASSIVE';

const root = path.join(__dirname, '..');
const haveModels = ['gmm2d.pt', 'fashion-flow.pt'].every((f) => fs.existsSync(path.join(root, 'models', f)));

/** tpm-half.pt's card: σ_min 0.01, r = 1/2 (its card allows 12 steps; the cells pass maxSteps 8). */
const SIGMA_MIN = 0.01,
  MAX_STEPS = 8,
  R = 0.5;
/** Steps the adaptive sampler takes from σ0 with the fixture (its rule, in float64). */
function stepsFrom(sigma0: number): number {
  let k = 1;
  for (let s = sigma0; !(R * s < SIGMA_MIN) && k < MAX_STEPS; s *= R) k++;
  return k;
}

const models = { gmm2d: { budget: 80, steps: 5, cls: 0 }, 'fashion-flow': { budget: 100, steps: 5, cls: 3 } } as const;

/**
 * Steps a kept sample may report: the schedule's steps on a fixed schedule; with the adaptive one
 * the schedule steps before the module took over plus the module's (from σ = 1 for the searches
 * that roll out from noise; from the level where the last round or a candidate's rollout began for
 * paths and EvoSearch).
 */
function expectedSteps(algorithm: AlgorithmName, adaptive: boolean, S: number): number[] {
  if (!adaptive) return [S];
  if (algorithm === 'paths' || algorithm === 'evosearch')
    return uniform(S)
      .slice(0, S)
      .map((s, i) => i + stepsFrom(s));
  return [stepsFrom(1)];
}

describe.skipIf(!haveModels)('algorithm × schedule × guidance × sampler, through generate()', () => {
  const cells: string[] = [];
  for (const [model, m] of Object.entries(models))
    for (const algorithm of Object.keys(algorithms) as AlgorithmName[])
      it(`${model} × ${algorithm}`, async () => {
        for (const schedule of ['uniform', 'adaptive'] as const)
          for (const guidance of [1, 3])
            for (const sampler of ['euler', 'heun', 'sde'] as const) {
              const cell = `${model} ${algorithm} ${schedule} guidance ${guidance} ${sampler}`;
              const budget = guidance === 1 ? m.budget : 2 * m.budget; // guidance doubles the NFE of a row
              const o: GenerateOptions = {
                model,
                algorithm,
                schedule,
                guidance,
                sampler,
                budget,
                steps: m.steps,
                class: m.cls,
                n: 1,
                seed: (Math.random() * 1e6) | 0,
                eval: false,
                ...(schedule === 'adaptive' ? { tpm: fixture('tpm-half.pt'), maxSteps: MAX_STEPS } : {}),
              };
              let r: Awaited<ReturnType<typeof generate>>;
              try {
                r = await generate(o);
              } catch (e) {
                // A refusal names what does work; anything else (BUDGET, internal, SHAPE, a TypeError) fails the cell.
                expect(e instanceof DiffusionSearchError && e.code, `${cell}: ${String(e)}`).toBe('ARGUMENT');
                cells.push(`${cell}: ARGUMENT`);
                continue;
              }
              const rep = r.report as {
                nfe_used: number;
                budget: number;
                steps: number[];
                config: { schedule: string };
              };
              expect(rep.config.schedule, cell).toBe(schedule);
              expect(rep.budget, cell).toBe(budget);
              expect(rep.nfe_used, cell).toBeLessThanOrEqual(budget);
              expect(r.results).toHaveLength(1);
              const possible = expectedSteps(algorithm, schedule === 'adaptive', m.steps);
              for (const res of r.results) {
                expect(res.nfe, cell).toBeLessThanOrEqual(budget);
                expect(res.nfe, cell).toBeGreaterThan(0);
              }
              for (const s of rep.steps) expect(possible, `${cell}: reported ${s} steps`).toContain(s);
              // Where every trajectory starts at σ = 1, what ran is known exactly: each candidate took k steps.
              if (schedule === 'adaptive' && ['baseline', 'best-of-n', 'zero-order'].includes(algorithm))
                for (const res of r.results)
                  expect(res.nfe, cell).toBe(res.rewards.length * stepsFrom(1) * (guidance === 1 ? 1 : 2));
              cells.push(`${cell}: ${rep.nfe_used}/${budget} NFE, steps ${rep.steps.join(',')}`);
            }
      });

  it('prints the grid', () => {
    console.log(cells.join('\n'));
  });
});
