/**
 * EvoSearch details: the default evolution levels at very few steps, the x̂0 the
 * self-supervised verifier receives (σ ≈ 0.4 on each trajectory, also when the rollout runs in
 * segments to capture later levels), the without-replacement tournament, and the adaptive
 * schedule (planned and reported as what really runs: fixed steps to the last level, then the
 * Time Prediction Module's steps).
 */
import fs from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { Denoiser } from '../src/models/denoiser';
import type { ModuleInput, NativeTensor } from '../src/native';
import * as ops from '../src/ops';
import { uniform } from '../src/schedules';
import { Budget } from '../src/search/budget';
import { defaultLevels, evoSearch } from '../src/search/evosearch';
import { TorchScriptVerifier } from '../src/verifiers/torchscript';
import type { Verifier } from '../src/verifiers/verifier';
import { tensor } from '../src/tensor';
import { expectCode } from './helpers';

process.env.OMP_WAIT_POLICY ??= 'PASSIVE';

const root = path.join(__dirname, '..');
const models = path.join(root, 'models');
let gmm: Denoiser;
let reward: TorchScriptVerifier;

beforeAll(async () => {
  gmm = await Denoiser.load(path.join(models, 'gmm2d.pt'));
  reward = await TorchScriptVerifier.load(path.join(models, 'gmm2d-reward.pt'));
});

describe('EvoSearch default levels', () => {
  it('at 1, 2 and 3 steps: distinct levels below S starting at 0, and the search runs', async () => {
    // The reference's fractions 0, 0.4, 0.6, 0.8 of S, rounded; those that merge or reach S go.
    const expected: Record<number, number[]> = { 1: [0], 2: [0, 1], 3: [0, 1, 2] };
    for (const S of [1, 2, 3]) {
      expect(defaultLevels(S), `S = ${S}`).toEqual(expected[S]);
      const r = await evoSearch({
        denoiser: gmm,
        verifier: reward,
        cls: 0,
        budget: 60 * S,
        sigmas: uniform(S),
        seed: 7,
      });
      expect(r.nfe).toBeLessThanOrEqual(60 * S);
      const levels = r.trace.filter((t) => t.round > 0).map((t) => t.level as number);
      expect(levels).toEqual(expected[S]);
      r.sample.dispose();
    }
  });

  it('explicit levels are still checked', async () => {
    await expectCode(
      () =>
        evoSearch(
          { denoiser: gmm, verifier: reward, cls: 0, budget: 200, sigmas: uniform(2), seed: 1 },
          { levels: [0, 2] },
        ),
      'ARGUMENT',
    );
  });
});

describe('EvoSearch with a verifier that needs the x̂0 at σ ≈ 0.4', () => {
  it(
    'generation 0 is scored with the x̂0 predicted at the schedule σ closest to 0.4 (computed here step by ' + 'step)',
    async () => {
      const S = 10,
        seed = 11;
      const sigmas = uniform(S); // σ_i = 1 − i/10: levels 0, 4, 6, 8; σ_6 = 0.4 is a captured level
      const calls: { x0: Float32Array; mid: Float32Array }[] = [];
      const recorder: Verifier = {
        name: 'recorder',
        needsMidPrediction: true,
        async score(x0, _cond, extras) {
          if (!extras?.x0Mid) throw new Error('no x0Mid');
          expect(extras.x0Mid.shape).toEqual(x0.shape);
          const a = (await x0.toArray()) as Float32Array,
            m = (await extras.x0Mid.toArray()) as Float32Array;
          calls.push({ x0: a, mid: m });
          // A reward with a use for the mid prediction: stay near it, and reach upwards.
          return Float32Array.from(
            { length: x0.shape[0] },
            (_, i) => a[2 * i + 1] - Math.hypot(a[2 * i] - m[2 * i], a[2 * i + 1] - m[2 * i + 1]),
          );
        },
      };
      const r = await evoSearch({ denoiser: gmm, verifier: recorder, cls: 0, budget: 400, sigmas, seed });
      r.sample.dispose();
      const K0 = r.trace[0].population as number;
      expect(calls[0].x0.length).toBe(2 * K0);

      // Independent: the same initial noise (ids 0..K0−1, step 0), Euler along the flow by hand.
      let mid = 0;
      sigmas.forEach((s, i) => (Math.abs(s - 0.4) < Math.abs(sigmas[mid] - 0.4) ? (mid = i) : 0));
      const meter = new Budget(1e9);
      const ids = Array.from({ length: K0 }, (_, i) => i);
      let x = (await (await ops.randn([K0, 2], { seed, ids, step: 0 })).toArray()) as Float32Array;
      let x0Mid: Float32Array | null = null;
      for (let i = 0; i <= mid; i++) {
        const t = tensor(x, [K0, 2]);
        const p = await gmm.predict(t, new Array(K0).fill(sigmas[i]), new Array(K0).fill(0), 1, meter);
        t.dispose();
        const x0 = (await p.x0.toArray()) as Float32Array,
          eps = (await p.eps.toArray()) as Float32Array;
        p.x0.dispose();
        p.eps.dispose();
        if (i === mid) x0Mid = x0;
        else x = Float32Array.from(x0, (v, e) => (1 - sigmas[i + 1]) * v + sigmas[i + 1] * eps[e]);
      }
      expect(Math.abs(sigmas[mid] - 0.4)).toBeLessThan(1e-9);
      for (let e = 0; e < 2 * K0; e++) expect(calls[0].mid[e], `element ${e}`).toBeCloseTo(x0Mid![e], 4);
      // And it is not the final sample's own x̂0 (the check can fail).
      expect(calls[0].mid.some((v, e) => Math.abs(v - calls[0].x0[e]) > 1e-3)).toBe(true);
    },
  );
});

describe('EvoSearch tournament without replacement', () => {
  it('with all of the population entering (fraction 1) every parent is the best member', async () => {
    // Each generation's parents come from tournaments over the population before it. With every
    // member entering exactly once, the winner is that population's best: children of one parent.
    const r = await evoSearch(
      { denoiser: gmm, verifier: reward, cls: 0, budget: 2000, sigmas: uniform(10), seed: 5 },
      { tournament: 1, replacement: false, elites: 0, levels: [0], population: [20, 10], beta: 1e-3 },
    );
    // β tiny: the 10 children are near-copies of one parent, so their rewards nearly agree.
    const kids = r.rewards.slice(20);
    expect(kids).toHaveLength(10);
    const best0 = Math.max(...r.rewards.slice(0, 20));
    for (const k of kids) expect(Math.abs(k - best0)).toBeLessThan(0.05);
    r.sample.dispose();
  });
});

const flowFile = path.join(models, 'fashion-flow.pt');
const tpmFile = path.join(models, 'fashion-tpm.pt');
const haveTpm =
  fs.existsSync(flowFile) && fs.existsSync(tpmFile) && fs.existsSync(path.join(models, 'fashion-classifier.pt'));

describe.skipIf(!haveTpm)('EvoSearch with an adaptive schedule', () => {
  const S = 20,
    maxSteps = 5;
  let flow: Denoiser;
  let predictor: import('../src/samplers/adaptive').TimePredictionModule;
  let classifier: TorchScriptVerifier;
  let rows = 0;

  beforeAll(async () => {
    const { TimePredictionModule } = await import('../src/samplers/adaptive');
    predictor = await TimePredictionModule.load(tpmFile);
    flow = await Denoiser.load(flowFile, { maxBatch: 64 });
    classifier = await TorchScriptVerifier.load(path.join(models, 'fashion-classifier.pt'));
    const m = flow.module;
    const call = m.call.bind(m);
    m.call = (method: string, inputs: ModuleInput[], s) => {
      if (method === 'forward' || method === 'forward_features') rows += (inputs[0] as NativeTensor).shape[0];
      return call(method, inputs, s);
    };
  });

  const config = (budget: number) => ({
    denoiser: flow,
    verifier: classifier,
    cls: 6,
    budget,
    sigmas: uniform(S),
    seed: 4,
    adaptive: { predictor, maxSteps },
  });

  it(`steps ${S}, maxSteps ${maxSteps}, default plan: runs within budget and reports the fixed steps plus the ` +
    'adaptive ones', async () => {
    rows = 0;
    const r = await evoSearch(config(150));
    expect(r.nfe).toBe(rows);
    expect(r.nfe).toBeLessThanOrEqual(150);
    // Rollouts walk the schedule to the last level (0.8·S = 16), then adapt: 17..21 steps.
    const last = Math.max(...defaultLevels(S));
    expect(r.steps).toBeGreaterThan(last);
    expect(r.steps).toBeLessThanOrEqual(last + maxSteps);
    r.sample.dispose();
  }, 120_000);

  it('the plan is the worst case of what runs: an explicit plan needs exactly its fixed + maximal adaptive ' +
    'steps', async () => {
    // Sizes [2, 2, 2, 2, 2], one elite, levels 0, 8, 12, 16 (1 NFE per Euler step):
    //   generation 0: 2 × (16 fixed + 5 adaptive);
    //   one child per later generation: (16 − L) fixed + 5 adaptive at L = 0, 8, 12, 16;
    //   'sde' mutation: x̂0 of the one parent at 16, where the adaptive rollouts begin (at 8 and 12
    //   the trajectories predicted it on their way).
    const need = 2 * (16 + maxSteps) + [0, 8, 12, 16].reduce((s, L) => s + (16 - L) + maxSteps, 0) + 1;
    const o = { population: [2, 2, 2, 2, 2], elites: 1 };
    await expectCode(() => evoSearch(config(need - 1), o), 'BUDGET');
    rows = 0;
    const r = await evoSearch(config(need), o);
    expect(r.nfe).toBe(rows);
    expect(r.nfe).toBeLessThanOrEqual(need);
    r.sample.dispose();
  }, 120_000);
});
