/**
 * EvoSearch on the adaptive schedule plans its later generations by the steps the module took (as
 * best-of-N, zero-order and paths do): it spends nearly all of its budget, never more. The module
 * test/fixtures/tpm-half.pt always predicts r = 1/2, so every rollout's steps are known.
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { generate } from '../src/generate';
import { uniform } from '../src/schedules';
import { fixture } from './helpers';

process.env.OMP_WAIT_POLICY ??= 'PASSIVE';

const have = ['fashion-flow.pt', 'fashion-tpm.pt'].every((f) => fs.existsSync(path.join(__dirname, '..', 'models', f)));

/** Steps the fixture takes from σ0 (σ_min 0.01, r = 1/2), at most maxSteps. */
function stepsFrom(sigma0: number, maxSteps: number): number {
  let k = 1;
  for (let s = sigma0; !(0.5 * s < 0.01) && k < maxSteps; s *= 0.5) k++;
  return k;
}

type Report = { nfe_used: number; budget: number; steps: number[] };

describe.skipIf(!have)('adaptive EvoSearch spends ≥ 90 % of its budget, never more', () => {
  const S = 20,
    LAST = 16; // the default levels of 20 steps: 0, 8, 12, 16; rollouts go adaptive at 16
  for (const [budget, maxSteps] of [
    [200, 12],
    [500, 12],
    [300, 8],
  ])
    it(`fashion-flow, tpm-half, ${S} steps, budget ${budget}, maxSteps ${maxSteps}`, async () => {
      const r = await generate({
        model: 'fashion-flow',
        class: 3,
        algorithm: 'evosearch',
        schedule: 'adaptive',
        tpm: fixture('tpm-half.pt'),
        maxSteps,
        steps: S,
        budget,
        n: 1,
        eval: false,
      });
      const rep = r.report as unknown as Report;
      expect(rep.nfe_used).toBeLessThanOrEqual(budget);
      expect(rep.nfe_used).toBeGreaterThanOrEqual(0.9 * budget);
      // Reported: the schedule steps to the last level plus the module's from there.
      expect(rep.steps).toEqual([LAST + stepsFrom(uniform(S)[LAST], maxSteps)]);
      expect(r.results[0].nfe).toBe(rep.nfe_used);
    }, 120_000);

  it('the shipped module at 20 steps and 200 NFE: a smaller plan instead of BUDGET', async () => {
    const o = { model: 'fashion-flow', class: 3, algorithm: 'evosearch', schedule: 'adaptive', steps: 20 } as const;
    const r = await generate({ ...o, budget: 200, eval: false });
    const rep = r.report as unknown as Report;
    expect(rep.nfe_used).toBeLessThanOrEqual(200);
    expect(rep.nfe_used).toBeGreaterThanOrEqual(0.9 * 200);
  }, 120_000);
});
