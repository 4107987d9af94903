/**
 * The shipped fashion-flow model, judged by the separately trained eval/ classifier. These are
 * small, seeded versions of the measurements in bench/RESULTS.md, sized for CI on two cores.
 */
import fs from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { Denoiser } from '../src/models/denoiser';
import { loadVerifier } from '../src/models/registry';
import { Evaluator } from '../src/eval/metrics';
import { algorithms, type AlgorithmName } from '../src/search';
import { uniform } from '../src/schedules';
import { Budget } from '../src/search/budget';
import { eulerStep } from '../src/samplers';
import * as ops from '../src/ops';
import type { NativeTensor } from '../src/native';
import type { Verifier } from '../src/verifiers/verifier';
import { tensor } from '../src/tensor';
import { loadTestSplit } from './fmnist';

const root = path.join(__dirname, '..');
const have = ['models/fashion-flow.pt', 'models/fashion-classifier.pt', 'eval/fashion-eval.pt'].every((f) =>
  fs.existsSync(path.join(root, f)),
);
const SHIRT = 6;

let flow: Denoiser, verifier: Verifier, judge: Evaluator;

beforeAll(async () => {
  if (!have) return;
  flow = await Denoiser.load(path.join(root, 'models/fashion-flow.pt'), { maxBatch: 64 });
  verifier = await loadVerifier(['classifier']);
  judge = await Evaluator.load();
});

describe.skipIf(!have)('fashion-flow', () => {
  it('50 Euler steps at guidance 1: the eval classifier recognises most samples as their class', async () => {
    // 3 samples per class; the card reports the full measurement (≥ 80 %). P(< 50 % | p = 0.8, n = 30) ≈ 1e-5.
    const cls = Array.from({ length: 30 }, (_, i) => i % 10);
    const budget = new Budget(30 * 50);
    let x: NativeTensor = await ops.randn([30, 1, 28, 28], { seed: 2024 });
    const sigmas = uniform(50);
    for (let i = 0; i < 50; i++) {
      const r = await eulerStep(
        { denoiser: flow, cond: cls, guidance: 1, meter: budget },
        x,
        new Array(30).fill(sigmas[i]),
        new Array(30).fill(sigmas[i + 1]),
      );
      x.dispose();
      r.x0.dispose();
      x = r.x;
    }
    expect(budget.used).toBe(1500);
    const data = (await x.toArray()) as Float32Array;
    const rep = await judge.evaluate(data, [30, 1, 28, 28], cls, flow.classes);
    expect(rep.accuracy).toBeGreaterThanOrEqual(0.5);
    expect(data.every((v) => v >= -1.5 && v <= 1.5)).toBe(true);
  });

  it(
    "the discriminators: realism and detail score real test images above the flow's few-step samples; detail " +
      'rises with the steps',
    async () => {
      const n = 40;
      const cls = Array.from({ length: n }, (_, i) => i % 10);
      const euler = async (steps: number) => {
        const budget = new Budget(n * steps);
        let x: NativeTensor = await ops.randn([n, 1, 28, 28], { seed: 77 });
        const sig = uniform(steps);
        for (let i = 0; i < steps; i++) {
          const r = await eulerStep(
            { denoiser: flow, cond: cls, guidance: 1, meter: budget },
            x,
            new Array(n).fill(sig[i]),
            new Array(n).fill(sig[i + 1]),
          );
          x.dispose();
          r.x0.dispose();
          x = r.x;
        }
        return x;
      };
      const { images } = loadTestSplit(n);
      const real = tensor(images, [n, 1, 28, 28]);
      const samples = { 2: await euler(2), 5: await euler(5), 20: await euler(20) };
      const mean = async (name: string, x: NativeTensor) => {
        const v = await loadVerifier([name]);
        const s = await v.score(x, cls);
        return Array.from(s).reduce((a, b) => a + b, 0) / n;
      };
      const realism = { real: await mean('realism', real), e2: await mean('realism', samples[2]) };
      const detail = {
        real: await mean('detail', real),
        e5: await mean('detail', samples[5]),
        e20: await mean('detail', samples[20]),
      };
      console.log(
        `realism: real ${realism.real.toFixed(2)}, Euler-2 ${realism.e2.toFixed(2)}; detail: real ` +
          `${detail.real.toFixed(2)}, ` +
          `Euler-20 ${detail.e20.toFixed(2)}, Euler-5 ${detail.e5.toFixed(2)}`,
      );
      expect(realism.real).toBeGreaterThan(realism.e2 + 2);
      expect(detail.real).toBeGreaterThan(detail.e20);
      expect(detail.e20).toBeGreaterThan(detail.e5 + 0.5);
      for (const t of [real, ...Object.values(samples)]) t.dispose();
    },
  );

  it(
    'searching with the classifier verifier raises the eval log-probability of "Shirt" over plain ' + 'sampling',
    async () => {
      const judgeOf = async (name: AlgorithmName, budget: number) => {
        const samples: Float32Array[] = [];
        for (let s = 0; s < 3; s++) {
          const stochastic = name === 'particles' || name === 'beam';
          const r = await algorithms[name].run({
            denoiser: flow,
            verifier,
            cls: SHIRT,
            budget,
            sigmas: uniform(8),
            seed: 50 + s,
            sampler: stochastic ? 'sde' : 'euler',
          });
          samples.push((await r.sample.toArray()) as Float32Array);
          r.sample.dispose();
        }
        const all = new Float32Array(3 * 784);
        samples.forEach((x, i) => all.set(x, i * 784));
        return (await judge.evaluate(all, [3, 1, 28, 28], [SHIRT, SHIRT, SHIRT])).mean_log_prob;
      };
      const base = await judgeOf('baseline', 8);
      for (const name of ['best-of-n', 'evosearch'] as AlgorithmName[])
        expect(await judgeOf(name, 160), name).toBeGreaterThan(base);
    },
  );
});

describe.skipIf(!have || !fs.existsSync(path.join(root, 'models/fashion-tpm.pt')))(
  'adaptive schedule inside a search',
  () => {
    it('best-of-N with the Time Prediction Module: NFE equals the rows through the model, within budget', async () => {
      const { TimePredictionModule } = await import('../src/samplers/adaptive');
      const predictor = await TimePredictionModule.load(path.join(root, 'models/fashion-tpm.pt'));
      const d = await Denoiser.load(path.join(root, 'models/fashion-flow.pt'), { maxBatch: 64 });
      let rows = 0;
      const m = d.module as unknown as {
        call: (method: string, inputs: NativeTensor[], s?: unknown) => Promise<unknown>;
      };
      const call = m.call.bind(m);
      m.call = (method, inputs, s) => {
        if (method === 'forward' || method === 'forward_features') rows += inputs[0].shape[0];
        return call(method, inputs, s);
      };
      const maxSteps = 30;
      const r = await algorithms['best-of-n'].run({
        denoiser: d,
        verifier,
        cls: SHIRT,
        budget: 2 * maxSteps,
        sigmas: uniform(10),
        seed: 3,
        adaptive: { predictor, maxSteps },
      });
      expect(r.nfe).toBe(rows);
      expect(r.nfe).toBeLessThanOrEqual(2 * maxSteps);
      // Two trajectories fit at maxSteps; more are drawn while the steps the module took leave room.
      expect(r.rewards.length).toBeGreaterThanOrEqual(2);
      expect(r.steps).toBeGreaterThanOrEqual(1);
      expect(r.steps).toBeLessThanOrEqual(maxSteps);
      r.sample.dispose();
    });
  },
);
