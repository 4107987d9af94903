/**
 * The Time Prediction Module inside the searches: the adaptive sampler's σ_max clamp
 * for ε-prediction models, schedules that do not start at pure noise, and every search with an
 * adaptive schedule: it uses the module, plans what runs, reports the steps that ran, or refuses.
 */
import fs from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { Denoiser, type NfeMeter } from '../src/models/denoiser';
import { tensor } from '../src/tensor';
import type { NativeTensor } from '../src/native';
import { sampleAdaptive, type TimePredictor } from '../src/samplers/adaptive';
import { karras, uniform, shifted } from '../src/schedules';
import { algorithms } from '../src/search';
import { FunctionVerifier } from '../src/verifiers/verifier';
import type { SearchConfig } from '../src/search/types';
import { expectCode, fixture, randn } from './helpers';

process.env.OMP_WAIT_POLICY ??= 'PASSIVE';

const meter = (): NfeMeter & { used: number } => ({
  used: 0,
  charge(n: number) {
    this.used += n;
  },
  addModelTime() {},
});

/** A predictor that always proposes σ_next = r·σ. */
const constantRatio = (r: number, maxSteps?: number): TimePredictor => ({
  name: `r=${r}`,
  defaults: { maxSteps, sigmaMin: 1e-3 },
  // mode (α−1)/(α+β−2) = r with α + β − 2 = 1
  predict: async (f) => ({
    alpha: new Float32Array(f.shape[0]).fill(1 + r),
    beta: new Float32Array(f.shape[0]).fill(2 - r),
  }),
});

describe('the adaptive sampler on an ε-prediction rectified flow (test/fixtures/eps-flow.pt)', () => {
  const D = 4,
    MU = 0.5,
    S = 0.8,
    ERR = 0.05;
  let eps: Denoiser;
  beforeAll(async () => {
    eps = await Denoiser.load(fixture('eps-flow.pt'));
  });

  /** The fixture's output in float64 (its closed form). */
  const epsOf = (x: number, s: number) => {
    const a = 1 - s;
    return (s * (x - a * MU)) / (a * a * S * S + s * s) + ERR * s * Math.tanh(x);
  };
  /** One Euler step in float64 with the model evaluated at min(σ, σ_max), as Denoiser.predict does. */
  const eulerRef = (x: number, s: number, next: number, top: number) => {
    const at = Math.min(s, top);
    const x0 = (x - at * epsOf(x, at)) / (1 - at);
    const e = (x - (1 - s) * x0) / s;
    return x + (next - s) * (e - x0);
  };

  it('evaluates at min(σ, σ_max) and converts there: it follows the float64 Euler reference on its own σ', async () => {
    const top = eps.sigmaMax;
    expect(top).toBeLessThan(1);
    for (const [r, maxSteps] of [
      [0.5, 1],
      [0.5, 4],
      [0.9, 6],
    ] as const) {
      const n = 5;
      const data = randn(n * D);
      const m = meter();
      const out = await sampleAdaptive(tensor(data, [n, D]), {
        denoiser: eps,
        predictor: constantRatio(r, maxSteps),
        cond: new Array(n).fill(0),
        meter: m,
      });
      const got = (await out.x.toArray()) as Float32Array;
      for (let row = 0; row < n; row++) {
        const sig = out.sigmas[row];
        expect(sig.length - 1).toBe(maxSteps);
        for (let k = 0; k < D; k++) {
          let x = data[row * D + k];
          for (let i = 0; i + 1 < sig.length; i++) x = eulerRef(x, sig[i], sig[i + 1], top);
          expect(Math.abs(got[row * D + k] - x), `r ${r}, ${maxSteps} steps`).toBeLessThan(1e-4 * (1 + Math.abs(x)));
        }
      }
      expect(m.used).toBe(n * maxSteps);
      out.x.dispose();
    }
  });

  it('one step from pure noise lands on the x̂0 that Denoiser.predict gives at σ = 1', async () => {
    const n = 6;
    const x = tensor(randn(n * D), [n, D]);
    const out = await sampleAdaptive(x, {
      denoiser: eps,
      predictor: constantRatio(0.5, 1),
      cond: new Array(n).fill(0),
      meter: meter(),
    });
    const p = await eps.predict(x, new Array(n).fill(1), new Array(n).fill(0), 1, meter());
    const a = (await out.x.toArray()) as Float32Array,
      b = (await p.x0.toArray()) as Float32Array;
    for (let i = 0; i < a.length; i++) expect(Math.abs(a[i] - b[i])).toBeLessThan(1e-5);
    for (const v of a) expect(Math.abs(v)).toBeLessThan(10);
    for (const t of [x, out.x, p.x0, p.eps]) t.dispose();
  });
});

describe('schedules that do not start at σ = 1', () => {
  it('are refused by every search with ARGUMENT (searches start from pure noise)', async () => {
    const gmm = await Denoiser.load(path.join(__dirname, '..', 'models', 'gmm2d.pt'));
    const verifier = new FunctionVerifier('sum', async (x) => {
      const v = (await x.toArray()) as Float32Array;
      return Float32Array.from({ length: x.shape[0] }, (_, i) => v[2 * i] + v[2 * i + 1]);
    });
    const config = (sigmas: number[]): SearchConfig => ({
      denoiser: gmm,
      verifier,
      cls: 0,
      budget: 200,
      sigmas,
      seed: 1,
    });
    for (const sigmas of [karras(5, 0.002, 0.3), [0.9, 0.5, 0], uniform(5).slice(1)])
      for (const [name, a] of Object.entries(algorithms)) {
        const e = await expectCode(
          () => a.run({ ...config(sigmas), sampler: name === 'particles' || name === 'beam' ? 'sde' : undefined }),
          'ARGUMENT',
        );
        expect(e.message, name).toMatch(/σ = 1|start/);
      }
    // Schedules from 1 still run (a small shift too: its map gives 1 + 1e-15 at σ = 1).
    for (const sigmas of [karras(5), shifted(5, 3), shifted(5, 1 / 137), uniform(5)]) {
      expect(sigmas[0]).toBe(1);
      const r = await algorithms['best-of-n'].run(config(sigmas));
      expect(r.nfe).toBeLessThanOrEqual(200);
      r.sample.dispose();
    }
    // karras itself names the fix when asked for a range that cannot start a search.
    expect(karras(3, 0.002, 1)[0]).toBe(1);
    gmm.dispose();
  });
});

const root = path.join(__dirname, '..');
const flowFile = path.join(root, 'models/fashion-flow.pt');
const tpmFile = path.join(root, 'models/fashion-tpm.pt');
const haveTpm = fs.existsSync(flowFile) && fs.existsSync(tpmFile);
if (!haveTpm)
  console.warn('adaptive-search.test: searches skipped — models/fashion-flow.pt or models/fashion-tpm.pt is missing');

/** Steps the sampler takes from σ0 with a constant ratio r (its rule, in float64): the reference for reported steps. */
function stepsFrom(sigma0: number, r: number, sigmaMin: number, maxSteps: number): number {
  let k = 1;
  for (let s = sigma0; !(r * s < sigmaMin) && k < maxSteps; s *= r) k++;
  return k;
}

describe.skipIf(!haveTpm)('searches with an adaptive schedule (fashion-flow and its Time Prediction Module)', () => {
  let flow: Denoiser;
  let tpm: TimePredictor;
  /** Rows through the denoiser, counted outside the library; σ each predictor call saw. */
  let rows = 0;
  const calls: number[][] = [];
  const verifier = new FunctionVerifier('mean', async (x) => {
    const v = (await x.toArray()) as Float32Array;
    const per = v.length / x.shape[0];
    return Float32Array.from(
      { length: x.shape[0] },
      (_, i) => v.subarray(i * per, (i + 1) * per).reduce((a, b) => a + b, 0) / per,
    );
  });
  /** The predictor p, recording the σ of every call. */
  const recorded = (p: TimePredictor): TimePredictor => ({
    name: p.name,
    defaults: p.defaults,
    predict: (f, sigma, s) => (calls.push(Array.from(sigma)), p.predict(f, sigma, s)),
  });

  beforeAll(async () => {
    const { TimePredictionModule } = await import('../src/samplers/adaptive');
    flow = await Denoiser.load(flowFile, { maxBatch: 64 });
    tpm = await TimePredictionModule.load(tpmFile);
    const m = flow.module as unknown as {
      call: (method: string, inputs: NativeTensor[], s?: unknown) => Promise<unknown>;
    };
    const call = m.call.bind(m);
    m.call = (method, inputs, s) => {
      if (method === 'forward' || method === 'forward_features') rows += inputs[0].shape[0];
      return call(method, inputs, s);
    };
  });

  const S = 10,
    R = 0.5,
    SIGMA_MIN = 1e-3; // constantRatio's σ_min
  const config = (budget: number, predictor: TimePredictor, extra: Partial<SearchConfig> = {}): SearchConfig => {
    rows = 0;
    calls.length = 0;
    return {
      denoiser: flow,
      verifier,
      cls: 3,
      budget,
      sigmas: uniform(S),
      seed: (Math.random() * 1e6) | 0,
      adaptive: { predictor: recorded(predictor) },
      ...extra,
    };
  };
  /** Runs a search; checks the NFE against the rows counted and the budget; returns the result. */
  const checked = async (name: keyof typeof algorithms, c: SearchConfig, options: Record<string, unknown> = {}) => {
    const r = await algorithms[name].run(c, options as never);
    expect(r.nfe, name).toBe(rows);
    expect(r.nfe, name).toBeLessThanOrEqual(c.budget);
    for (const t of r.top) t.sample.dispose();
    return r;
  };

  it(
    'paths (x̂0 scoring, the default): the last round rolls out with the module from its level; steps = fixed + ' +
      'adaptive',
    async () => {
      const r = await checked('paths', config(200, constantRatio(R, 8)));
      // Δf = 1, Δb = 2 on 10 steps: the last round noises to index 8 (σ = 0.2) and rolls out from there.
      const up = S - 2;
      expect(
        calls.some((s) => s.every((v) => v === uniform(S)[up])),
        'the module drives the last round',
      ).toBe(true);
      expect(r.steps).toBe(up + stepsFrom(uniform(S)[up], R, SIGMA_MIN, 8));
    },
  );

  it(
    'paths with maxSteps 1 and a budget of 31 (60 with rollout scoring): planned as it runs (no internal ' + 'BUDGET)',
    async () => {
      for (const predictor of [constantRatio(R, 1), tpm]) {
        const c = config(31, predictor);
        c.adaptive!.maxSteps = 1;
        const r = await checked('paths', c);
        expect(r.steps).toBe(S - 2 + 1);
        // With 'rollout' scoring the candidates' rollouts take one step too; the best is one of them or a final.
        const c2 = config(60, predictor);
        c2.adaptive!.maxSteps = 1;
        const r2 = await checked('paths', c2, { score: 'rollout' });
        expect(r2.steps! - 1).toBeGreaterThanOrEqual(1);
        expect(r2.steps! - 1).toBeLessThanOrEqual(S - 1);
      }
    },
  );

  it(
    "paths with 'rollout' scoring: every candidate's rollout is adaptive; the steps reported are the best " +
      "sample's",
    async () => {
      const r = await checked('paths', config(400, constantRatio(R, 8)), { score: 'rollout' });
      const possible = uniform(S)
        .slice(0, S)
        .map((s, i) => i + stepsFrom(s, R, SIGMA_MIN, 8));
      expect(possible).toContain(r.steps);
      // Every rollout's first call is at a schedule level; the fixed walk below it never calls the module.
      for (const s of calls) for (const v of s) expect(v).toBeGreaterThanOrEqual(SIGMA_MIN);
      expect(calls.length).toBeGreaterThan(0);
    },
  );

  it(
    'particles and beam refuse the adaptive schedule with ARGUMENT (a small budget too, not an internal ' + 'BUDGET)',
    async () => {
      for (const name of ['particles', 'beam'] as const)
        for (const budget of [8, 500]) {
          const e = await expectCode(
            () => algorithms[name].run({ ...config(budget, tpm), sampler: 'sde' }),
            'ARGUMENT',
          );
          expect(e.message).toMatch(/adaptive/);
          expect(rows).toBe(0);
        }
    },
  );

  it(
    'best-of-n keeps drawing while a trajectory fits: ≥ 90 % of the budget, NFE = rows, each candidate the ' +
      'module’s',
    async () => {
      // Fixed seeds: what is left over is under the fewest steps a candidate took (the module's, seen
      // from 8 to 22 on this class), so a draw whose candidates all took ≥ 16 steps could stop at 89 %.
      for (const [budget, guidance, seed] of [
        [150, 1, 1],
        [150, 1, 2],
        [300, 3, 1],
      ]) {
        const r = await checked('best-of-n', config(budget, tpm, { guidance, seed }));
        console.log(
          `best-of-n adaptive, guidance ${guidance}: ${r.nfe}/${budget} NFE, ${r.rewards.length} candidates, best ` +
            `took ${r.steps} steps`,
        );
        expect(r.nfe).toBeGreaterThanOrEqual(0.9 * budget);
        expect(r.rewards.length).toBeGreaterThan(budget / guidance / 60);
      }
      // With the constant ratio every candidate takes the same steps: the report says so.
      const r = await checked('best-of-n', config(100, constantRatio(R, 20)));
      const k = stepsFrom(1, R, SIGMA_MIN, 20);
      expect(r.steps).toBe(k);
      expect(r.nfe).toBe(k * r.rewards.length);
      expect(r.rewards.length).toBe(Math.floor(100 / k));
    },
  );

  it('zero-order and baseline: the module drives every trajectory, planned within budget, steps as taken', async () => {
    const k = stepsFrom(1, R, SIGMA_MIN, 20);
    for (const name of ['zero-order', 'baseline'] as const) {
      const r = await checked(name, config(100, constantRatio(R, 20)));
      expect(r.steps, name).toBe(k);
      expect(r.nfe, name).toBe(k * r.rewards.length);
      expect(calls.every((s) => s.every((v) => v <= 1)) && calls.length >= k, name).toBe(true);
    }
    // Rounds after the first are planned at the steps the module took. A fresh pivot needs a neighbour
    // beside it, so up to two trajectories' worth (of the fewest steps seen) may be left over.
    const z = await checked('zero-order', config(300, tpm, { seed: 1 }));
    console.log(`zero-order adaptive: ${z.nfe}/300 NFE, ${z.rewards.length} candidates`);
    expect(z.nfe).toBeGreaterThanOrEqual(0.85 * 300);
    // baseline: its one trajectory must fit at the module's maximum; scaleSteps does not combine with it.
    await expectCode(() => algorithms.baseline.run(config(100, tpm, { budget: 59 })), 'BUDGET');
    await expectCode(() => algorithms.baseline.run(config(100, tpm), { scaleSteps: true }), 'ARGUMENT');
  });

  it('a sampler other than euler, or a denoiser the module cannot read, is ARGUMENT before any NFE', async () => {
    for (const sampler of ['heun', 'sde'] as const)
      for (const name of ['best-of-n', 'zero-order', 'paths', 'baseline', 'evosearch'] as const) {
        await expectCode(() => algorithms[name].run(config(200, tpm, { sampler })), 'ARGUMENT');
        expect(rows).toBe(0);
      }
    for (const file of ['gmm2d.pt', 'vp2d.pt']) {
      const d = await Denoiser.load(path.join(root, 'models', file));
      for (const name of ['best-of-n', 'paths', 'evosearch'] as const)
        await expectCode(() => algorithms[name].run({ ...config(200, tpm), denoiser: d, cls: 0 }), 'ARGUMENT');
      d.dispose();
    }
  });
});
