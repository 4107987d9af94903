/**
 * Every algorithm fits the sizes the caller did not set to its budget: it runs at any budget from
 * its smallest plan up, uses a good share of the budget and never more; below the smallest plan
 * it fails with BUDGET naming that minimum (checked here by running at exactly that minimum, and
 * against minimums computed independently). Sizes the caller set are kept. On gmm2d over many
 * budgets, and as `generate` runs it with fashion-flow at its default 20 steps.
 */
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { generate } from '../src/generate';
import { Denoiser } from '../src/models/denoiser';
import type { ModuleInput, NativeTensor } from '../src/native';
import { uniform } from '../src/schedules';
import { algorithms, type AlgorithmName } from '../src/search';
import { beamSearch } from '../src/search/beam';
import { particleSampling } from '../src/search/particles';
import { searchOverPaths } from '../src/search/paths';
import type { SearchConfig, SearchResult } from '../src/search/types';
import { TorchScriptVerifier } from '../src/verifiers/torchscript';
import { expectCode } from './helpers';

const models = path.join(__dirname, '..', 'models');
const STEPS = 20;
const names = Object.keys(algorithms) as AlgorithmName[];
const stochastic = (name: string) => name === 'particles' || name === 'beam';

let gmm: Denoiser;
let reward: TorchScriptVerifier;
/** Rows and σ of every forward call, counted outside the library. */
let calls: { rows: number; sigma: number[] }[] = [];

beforeAll(async () => {
  gmm = await Denoiser.load(path.join(models, 'gmm2d.pt'));
  reward = await TorchScriptVerifier.load(path.join(models, 'gmm2d-reward.pt'));
  const call = gmm.module.call.bind(gmm.module);
  gmm.module.call = async (method: string, inputs: ModuleInput[], stream) => {
    if (method === 'forward')
      calls.push({
        rows: (inputs[0] as NativeTensor).shape[0],
        sigma: Array.from((await (inputs[1] as NativeTensor).toArray()) as Float32Array),
      });
    return call(method, inputs, stream);
  };
});

const config = (name: string, budget: number, extra: Partial<SearchConfig> = {}): SearchConfig => ({
  denoiser: gmm,
  verifier: reward,
  cls: 0,
  budget,
  sigmas: uniform(STEPS),
  seed: 3,
  sampler: stochastic(name) ? 'sde' : 'euler',
  ...extra,
});

async function runOn(name: AlgorithmName, budget: number, options: object = {}): Promise<SearchResult> {
  calls = [];
  const r = await algorithms[name].run(config(name, budget), options as never);
  r.sample.dispose();
  expect(r.nfe, `${name} at ${budget}: NFE counted outside`).toBe(calls.reduce((s, c) => s + c.rows, 0));
  return r;
}

/** The minimum a BUDGET error names ("… needs N NFE"). */
async function namedMinimum(name: AlgorithmName, budget: number): Promise<number> {
  const e = await expectCode(() => runOn(name, budget), 'BUDGET');
  const m = /needs (\d+) NFE/.exec(e.message);
  expect(m, e.message).not.toBeNull();
  return Number(m![1]);
}

// Smallest plans at 20 Euler steps (1 NFE per sample and step), worked out by hand:
//   baseline, best-of-n: one trajectory (20); zero-order: a pivot and one neighbour (40);
//   particles: 2 particles (40); beam: B = 1, M = 2: 1 at σ = 1 + 19 levels × 2 (39);
//   paths: N = 1, M = 2 from step 19: 19 steps + 2 copies × 2 steps (23).
const independent: Partial<Record<AlgorithmName, number>> = {
  baseline: 20,
  'best-of-n': 20,
  'zero-order': 40,
  particles: 40,
  beam: 39,
  paths: 23,
};

describe('gmm2d, 20 steps: the smallest plan', () => {
  it.each(names)('%s: below it BUDGET names the minimum; at the minimum it runs', async (name) => {
    const min = await namedMinimum(name, 1);
    if (independent[name] !== undefined) expect(min).toBe(independent[name]);
    expect(await namedMinimum(name, min - 1)).toBe(min);
    const r = await runOn(name, min);
    expect(r.nfe).toBeLessThanOrEqual(min);
    expect(r.nfe).toBeGreaterThanOrEqual(min / 2);
  });
});

describe('gmm2d, 20 steps: unset sizes fit any budget', () => {
  const budgets = [45, 77, 100, 150, 260, 500, 999, 2500];
  it.each(names.filter((n) => n !== 'baseline'))(
    '%s uses at least half of every budget from its minimum up, and never more',
    async (name) => {
      const min = await namedMinimum(name, 1);
      for (const budget of [min, ...budgets.filter((b) => b > min)]) {
        const r = await runOn(name, budget);
        expect(r.nfe, `${name} at ${budget}`).toBeLessThanOrEqual(budget);
        expect(r.nfe, `${name} at ${budget}`).toBeGreaterThanOrEqual(budget / 2);
      }
    },
    120_000,
  );

  it('baseline spends one trajectory, or with scaleSteps the whole budget on steps', async () => {
    for (const budget of budgets) {
      expect((await runOn('baseline', budget)).nfe).toBe(STEPS);
      if (budget <= 500) expect((await runOn('baseline', budget, { scaleSteps: true })).nfe).toBe(budget);
    }
  });

  it('larger budgets buy larger searches (population per round grows)', async () => {
    for (const name of ['paths', 'particles', 'beam'] as const) {
      const pop = async (budget: number) =>
        Math.max(...(await runOn(name, budget)).trace.map((t) => t.population ?? 0));
      expect(await pop(2500), name).toBeGreaterThan(await pop(150));
    }
  });
});

describe('sizes the caller sets are kept', () => {
  it('beam: set B, the budget fits M; set M, it fits B; both set and too large: BUDGET naming their cost', async () => {
    const b = await beamSearch(config('beam', 500), { beams: 3 });
    const popB = b.trace[0].population!;
    expect(popB % 3).toBe(0);
    expect(1 * 3 + 19 * popB).toBeLessThanOrEqual(500); // B at σ = 1, B·M at every later level
    expect(3 + 19 * (popB + 3)).toBeGreaterThan(500); // one more child each would not fit
    const m = await beamSearch(config('beam', 500), { children: 2 });
    expect(m.trace[0].population! % 2).toBe(0);
    const e = await expectCode(() => beamSearch(config('beam', 100), { beams: 4, children: 4 }), 'BUDGET');
    expect(e.message).toContain(`needs ${4 + 19 * 16} NFE`);
    for (const r of [b, m]) r.sample.dispose();
  });

  it('particles: K set is kept (leftover budget runs more of them); too many: BUDGET naming K·steps', async () => {
    const r = await particleSampling(config('particles', 130), { particles: 3 });
    expect(r.trace.every((t) => t.population === 3)).toBe(true);
    expect(r.nfe).toBe(2 * 3 * STEPS); // two runs of 60
    const e = await expectCode(() => particleSampling(config('particles', 100), { particles: 10 }), 'BUDGET');
    expect(e.message).toContain(`needs ${10 * STEPS} NFE`);
    r.sample.dispose();
  });

  it('paths: N set, the budget fits M; N and M set and too large at the default start: BUDGET', async () => {
    const r = await searchOverPaths(config('paths', 500), { n: 2 });
    expect(r.trace[0].population! % 2).toBe(0);
    expect(r.trace[0].population!).toBeGreaterThanOrEqual(4);
    // N = M = 4 from step 5 (the default): 4·5 + 15 rounds × 16 copies × 2 steps + 14 × 16 x̂0 evaluations
    const e = await expectCode(() => searchOverPaths(config('paths', 500), { n: 4, m: 4 }), 'BUDGET');
    expect(e.message).toContain(`needs ${4 * 5 + 15 * 16 * 2 + 14 * 16} NFE`);
    r.sample.dispose();
  });
});

describe('paths scores candidates as the paper: one more evaluation at their own level, its x̂0', () => {
  it('x0 (default): each non-final round evaluates its N·M candidates at σ of the level they reached', async () => {
    calls = [];
    const r = await searchOverPaths(config('paths', 1000), { n: 2, m: 3, start: 5, forward: 1, backward: 3, runs: 1 });
    r.sample.dispose();
    // Rounds from 5: up 4 → 7, up 6 → 9, …, up 18 → 20 (σ = 0). After the denoising steps of each
    // round but the last comes one batch of 6 at σ_to, then the next round's re-noised copies.
    const levels = [7, 9, 11, 13, 15, 17, 19];
    const sig = uniform(STEPS);
    for (const to of levels)
      expect(
        calls.some((c) => c.rows === 6 && c.sigma.every((s) => Math.abs(s - sig[to]) < 1e-6)),
        `σ_${to}`,
      ).toBe(true);
    // NFE: 2 noises × 5 steps + 8 rounds × 6 copies × 3 steps (the last: 2 steps) + 7 × 6 x̂0 evaluations.
    expect(r.nfe).toBe(10 + 6 * (7 * 3 + 2) + 7 * 6);
  });
});

describe('fashion-flow at the default 20 steps, as `generate` runs it (class Shirt, n = 1)', () => {
  const cases = names.flatMap((algorithm) => [100, 500].map((budget) => ({ algorithm, budget })));
  it.each(cases)(
    '$algorithm at $budget NFE',
    async ({ algorithm, budget }) => {
      const r = await generate({
        model: 'fashion-flow',
        class: 'Shirt',
        algorithm,
        budget,
        n: 1,
        seed: 0,
        eval: false,
      });
      const nfe = r.results[0].nfe;
      expect(r.report.nfe_used).toBe(nfe);
      expect(nfe).toBeLessThanOrEqual(budget);
      if (algorithm === 'baseline') expect(nfe).toBe(20);
      else expect(nfe).toBeGreaterThanOrEqual(budget / 2);
      expect(Array.from(r.samples).every(Number.isFinite)).toBe(true);
    },
    120_000,
  );

  it('a budget below the smallest plan: BUDGET naming it (beam: 1 + 19 × 2 = 39)', async () => {
    const e = await expectCode(
      () => generate({ model: 'fashion-flow', class: 'Shirt', algorithm: 'beam', budget: 38, n: 1, eval: false }),
      'BUDGET',
    );
    expect(e.message).toContain('needs 39 NFE');
  });
});
