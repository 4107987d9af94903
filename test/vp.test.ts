/**
 * The variance-preserving path with ε-prediction, from σ = 1, on the analytic mixture
 * models/vp2d.pt: predictions and single steps against a float64 closed form written here from the
 * card's prior, sampling recovers the prior's mode weights and means, the native path ops at σ = 1,
 * and every search runs on it.
 */
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { validateCard } from '../src/models/card';
import { Denoiser, EPSILON_ALPHA_MIN, type NfeMeter } from '../src/models/denoiser';
import type { ModuleInput, NativeTensor } from '../src/native';
import * as ops from '../src/ops';
import { steppers, type SamplerName, type StepContext } from '../src/samplers';
import { uniform } from '../src/schedules';
import { algorithms, type AlgorithmName } from '../src/search';
import { tensor } from '../src/tensor';
import type { Verifier } from '../src/verifiers/verifier';
import { expectCode, randn } from './helpers';

const file = path.join(__dirname, '..', 'models', 'vp2d.pt');
interface Prior {
  weights: number[];
  means: number[][];
  stds: number[];
}
let d: Denoiser;
let prior: Prior;
/** σ values the module's forward was called with, while recording. */
let seen: number[] | null = null;
const meter: NfeMeter = { charge: () => {}, addModelTime: () => {} };

beforeAll(async () => {
  d = await Denoiser.load(file);
  prior = d.card.prior as Prior;
  const call = d.module.call.bind(d.module);
  d.module.call = async (method: string, inputs: ModuleInput[], stream) => {
    if (seen && method === 'forward') seen.push(...((await (inputs[1] as NativeTensor).toArray()) as Float32Array));
    return call(method, inputs, stream);
  };
});

/** The exact posterior of the mixture on x = a·x0 + σ·ε, float64: E[x0 | x], E[ε | x], responsibilities. */
function exact(x: number[], sigma: number): { x0: number[]; eps: number[]; g: number[] } {
  const a = Math.sqrt(Math.max(0, 1 - sigma * sigma));
  const logp = prior.weights.map((w, k) => {
    const t2 = a * a * prior.stds[k] ** 2 + sigma * sigma;
    const d2 = (x[0] - a * prior.means[k][0]) ** 2 + (x[1] - a * prior.means[k][1]) ** 2;
    return Math.log(w) - d2 / (2 * t2) - Math.log(2 * Math.PI * t2);
  });
  const top = Math.max(...logp);
  const e = logp.map((l) => Math.exp(l - top));
  const z = e.reduce((s, v) => s + v, 0);
  const g = e.map((v) => v / z);
  const x0 = [0, 0],
    eps = [0, 0];
  prior.weights.forEach((_, k) => {
    const t2 = a * a * prior.stds[k] ** 2 + sigma * sigma;
    for (let j = 0; j < 2; j++) {
      const dj = x[j] - a * prior.means[k][j];
      x0[j] += g[k] * (prior.means[k][j] + ((a * prior.stds[k] ** 2) / t2) * dj);
      eps[j] += g[k] * ((sigma / t2) * dj);
    }
  });
  return { x0, eps, g };
}

const rowsOf = (v: Float32Array | number[], n: number) => Array.from({ length: n }, (_, i) => [v[2 * i], v[2 * i + 1]]);
const SIGMA_MAX = Math.sqrt(1 - EPSILON_ALPHA_MIN ** 2);

function ctx(n: number, eta = 0): StepContext {
  return {
    denoiser: d,
    cond: new Array(n).fill(0),
    guidance: 1,
    meter,
    eta,
    seed: 5,
    ids: Array.from({ length: n }, (_, i) => i),
    step: 0,
  };
}

async function run<T>(body: () => Promise<T>): Promise<{ r: T; sigmas: number[] }> {
  seen = [];
  try {
    const r = await body();
    return { r, sigmas: seen };
  } finally {
    seen = null;
  }
}

describe('vp2d: the card and the predictions', () => {
  it('is an ε-prediction model on the vp path, evaluated at most at σ where a = 0.05', () => {
    expect(d.prediction).toBe('epsilon');
    expect(d.path).toBe('vp');
    expect(d.sigmaMax).toBeCloseTo(SIGMA_MAX, 12);
  });

  it('a card may set sigma_max: in (0, 1], and below 1 for ε-prediction', async () => {
    const card = (prediction: string, sigma_max: unknown) => ({
      name: 'c',
      prediction,
      path: 'vp',
      sample_shape: [2],
      sigma_max,
    });
    expect(validateCard(card('epsilon', 0.99), 'f', 'denoiser').sigma_max).toBe(0.99);
    expect(validateCard(card('velocity', 1), 'f', 'denoiser').sigma_max).toBe(1);
    expect(validateCard(card('epsilon', null), 'f', 'denoiser').sigma_max).toBeUndefined();
    for (const [p, v] of [
      ['epsilon', 1],
      ['x0', 0],
      ['velocity', 1.5],
      ['epsilon', '0.9'],
    ] as const)
      await expectCode(() => validateCard(card(p, v), 'f', 'denoiser'), 'MODEL_CARD');
  });

  it('x̂0 and ε̂ match the closed form at random σ < 1, element by element', async () => {
    const n = 256;
    const xs = randn(2 * n).map((v) => 2 * v);
    const sig = Array.from(randn(n), (v) => 0.02 + 0.96 * (0.5 + 0.5 * Math.tanh(v)));
    const x = tensor(xs, [n, 2]);
    const { x0, eps } = await d.predict(x, sig, new Array(n).fill(0), 1, meter);
    const [gx0, geps] = [(await x0.toArray()) as Float32Array, (await eps.toArray()) as Float32Array];
    for (let i = 0; i < n; i++) {
      const ref = exact([xs[2 * i], xs[2 * i + 1]], sig[i]);
      const a = Math.sqrt(1 - sig[i] ** 2);
      for (let j = 0; j < 2; j++) {
        expect(Math.abs(geps[2 * i + j] - ref.eps[j])).toBeLessThan(1e-5);
        // x̂0 = (x − σ·ε̂)/a amplifies ε̂'s float32 rounding by σ/a
        expect(Math.abs(gx0[2 * i + j] - ref.x0[j])).toBeLessThan(1e-5 * (1 + sig[i] / a));
      }
    }
    for (const t of [x, x0, eps]) t.dispose();
  });

  it('at σ = 1: ε̂ = x exactly, x̂0 = E[x0 | x] from the model at sigmaMax (finite, near the prior mean)', async () => {
    const n = 200;
    const xs = randn(2 * n);
    const x = tensor(xs, [n, 2]);
    const { r, sigmas } = await run(() => d.predict(x, new Array(n).fill(1), new Array(n).fill(0), 1, meter));
    expect(sigmas.every((s) => Math.abs(s - SIGMA_MAX) < 1e-6)).toBe(true);
    const [gx0, geps] = [(await r.x0.toArray()) as Float32Array, (await r.eps.toArray()) as Float32Array];
    const mean = [0, 1].map((j) => prior.weights.reduce((s, w, k) => s + w * prior.means[k][j], 0));
    for (let i = 0; i < n; i++) {
      const ref = exact([xs[2 * i], xs[2 * i + 1]], Math.fround(SIGMA_MAX));
      for (let j = 0; j < 2; j++) {
        expect(geps[2 * i + j]).toBeCloseTo(xs[2 * i + j], 5);
        expect(Math.abs(gx0[2 * i + j] - ref.x0[j])).toBeLessThan(2e-3); // ε̂'s rounding × σ/a ≈ 20
        expect(Math.abs(gx0[2 * i + j] - mean[j])).toBeLessThan(1.5);
      }
    }
    for (const t of [x, r.x0, r.eps]) t.dispose();
  });
});

describe('vp2d: one step from σ = 1 against a float64 reference', () => {
  const n = 300;
  const to = 0.9;
  const [tFrom, tTo] = [Math.PI / 2, Math.asin(to)];
  const aTo = Math.sqrt(1 - to * to);
  // At σ = 1 (θ = π/2) dx/dθ = −σ·x̂0 + a·ε̂ = −x̂0, with x̂0 from the model at sigmaMax.
  const x0At1 = (x: number[]) => exact(x, Math.fround(SIGMA_MAX)).x0;
  const cases: { name: SamplerName; eta?: number; ref: (x: number[]) => number[] }[] = [
    { name: 'euler', ref: (x) => x.map((v, j) => v - (tTo - tFrom) * x0At1(x)[j]) },
    {
      name: 'heun',
      ref: (x) => {
        const v1 = x0At1(x).map((v) => -v);
        const x1 = x.map((v, j) => v + (tTo - tFrom) * v1[j]);
        const p = exact(x1, to);
        const v2 = [0, 1].map((j) => -to * p.x0[j] + aTo * p.eps[j]);
        return x.map((v, j) => v + 0.5 * (tTo - tFrom) * (v1[j] + v2[j]));
      },
    },
    // DDIM (η = 0): a_to·x̂0 + σ_to·ε̂ with ε̂ = x at σ = 1.
    { name: 'sde', eta: 0, ref: (x) => x.map((v, j) => aTo * x0At1(x)[j] + to * v) },
  ];

  it.each(cases)('$name', async (c) => {
    const xs = randn(2 * n);
    const x = tensor(xs, [n, 2]);
    const r = await steppers[c.name](ctx(n, c.eta), x, new Array(n).fill(1), new Array(n).fill(to));
    const got = (await r.x.toArray()) as Float32Array;
    rowsOf(xs, n).forEach((row, i) => {
      const ref = c.ref(row);
      for (let j = 0; j < 2; j++) {
        expect(Number.isFinite(got[2 * i + j])).toBe(true);
        expect(Math.abs(got[2 * i + j] - ref[j])).toBeLessThan(2e-3 * (1 + Math.abs(ref[j])));
      }
    });
    for (const t of [x, r.x, r.x0]) t.dispose();
  });

  it('sde with η = 1 from σ = 1 is the posterior a_to·x̂0 + σ_to·z: z ~ N(0, 1), independent of ε̂', async () => {
    const m = 4000;
    const xs = randn(2 * m);
    const x = tensor(xs, [m, 2]);
    const r = await steppers.sde(ctx(m, 1), x, new Array(m).fill(1), new Array(m).fill(to));
    const got = (await r.x.toArray()) as Float32Array;
    const z = rowsOf(xs, m).flatMap((row, i) => x0At1(row).map((v, j) => (got[2 * i + j] - aTo * v) / to));
    const mean = z.reduce((s, v) => s + v, 0) / z.length;
    const variance = z.reduce((s, v) => s + (v - mean) ** 2, 0) / z.length;
    const corr = z.reduce((s, v, k) => s + v * xs[k], 0) / z.length; // with ε̂ = x: none left
    expect(Math.abs(mean)).toBeLessThan(0.05);
    expect(Math.abs(variance - 1)).toBeLessThan(0.06);
    expect(Math.abs(corr)).toBeLessThan(0.05);
    expect(r.std!.every((s) => Math.abs(s - to) < 1e-6)).toBe(true);
    for (const t of [x, r.x, r.x0]) t.dispose();
  });
});

describe('vp2d: sampling from σ = 1 recovers the prior', () => {
  const n = 4000;
  const cases: { name: SamplerName; steps: number; eta?: number }[] = [
    { name: 'euler', steps: 100 },
    { name: 'heun', steps: 30 },
    { name: 'sde', steps: 100, eta: 0 },
    { name: 'sde', steps: 100, eta: 1 },
  ];
  it.each(cases)(
    '$name ($steps steps, η = $eta): mode weights within 3 pp, mode means within 0.06',
    async (c) => {
      const sig = uniform(c.steps);
      let x = await ops.randn([n, 2], { seed: 11, ids: Array.from({ length: n }, (_, i) => i) });
      for (let i = 0; i < c.steps; i++) {
        const r = await steppers[c.name](
          { ...ctx(n, c.eta ?? 0), step: i },
          x,
          new Array(n).fill(sig[i]),
          new Array(n).fill(sig[i + 1]),
        );
        x.dispose();
        r.x0.dispose();
        x = r.x;
      }
      const xs = (await x.toArray()) as Float32Array;
      x.dispose();
      const K = prior.weights.length;
      const count = new Array(K).fill(0),
        sum = Array.from({ length: K }, () => [0, 0]);
      for (const row of rowsOf(xs, n)) {
        const g = exact(row, 0).g;
        const k = g.indexOf(Math.max(...g));
        count[k]++;
        sum[k][0] += row[0];
        sum[k][1] += row[1];
      }
      for (let k = 0; k < K; k++) {
        expect(Math.abs(count[k] / n - prior.weights[k]), `weight of mode ${k}`).toBeLessThan(0.03);
        for (let j = 0; j < 2; j++)
          expect(Math.abs(sum[k][j] / count[k] - prior.means[k][j]), `mean of mode ${k}`).toBeLessThan(0.06);
      }
    },
    60_000,
  );
});

describe('native path ops at σ = 1 on vp', () => {
  const n = 64;
  it('renoise to σ = 1 forgets the state (pure noise); from 1 to 1 is the identity', async () => {
    const [a, b] = [tensor(randn(2 * n), [n, 2]), tensor(randn(2 * n), [n, 2])];
    const o = { seed: 3, ids: Array.from({ length: n }, (_, i) => i), step: 2 };
    const ra = await ops.renoise(a, 'vp', 0.4, 1, o);
    const rb = await ops.renoise(b, 'vp', 0.4, 1, o);
    expect(await ra.toArray()).toEqual(await rb.toArray());
    const same = await ops.renoise(a, 'vp', 1, 1, o);
    expect(await same.toArray()).toEqual(await a.toArray());
    for (const t of [a, b, ra, rb, same]) t.dispose();
  });

  it('ddimStep from σ = 1 (η = 0) is a_to·x̂0 + σ_to·ε̂ for any inputs', async () => {
    const [x0, eps] = [randn(2 * n), randn(2 * n)];
    const to = Array.from(randn(n), (v) => 0.5 + 0.45 * Math.tanh(v));
    const [tx0, teps] = [tensor(x0, [n, 2]), tensor(eps, [n, 2])];
    const r = await ops.ddimStep(tx0, teps, 'vp', 1, to, 0, { seed: 1 });
    const got = (await r.x.toArray()) as Float32Array;
    for (let i = 0; i < 2 * n; i++) {
      const s = to[i >> 1];
      expect(got[i]).toBeCloseTo(Math.sqrt(1 - s * s) * x0[i] + s * eps[i], 5);
    }
    for (const t of [tx0, teps, r.x, r.std]) t.dispose();
  });
});

describe('vp2d: every search runs on the vp path', () => {
  // A reward that prefers the rarest mode: finite everywhere.
  const verifier: Verifier = {
    name: 'near-mode-2',
    score: async (x) => {
      const v = (await x.toArray()) as Float32Array;
      return Float32Array.from({ length: x.shape[0] }, (_, i) => -((v[2 * i] - 0) ** 2 + (v[2 * i + 1] - 1.8) ** 2));
    },
  };
  it.each(Object.keys(algorithms) as AlgorithmName[])('%s', async (name) => {
    const stochastic = name === 'particles' || name === 'beam';
    const r = await algorithms[name].run({
      denoiser: d,
      verifier,
      cls: 0,
      budget: 400,
      sigmas: uniform(10),
      seed: 2,
      sampler: stochastic ? 'sde' : 'euler',
    });
    const s = (await r.sample.toArray()) as Float32Array;
    r.sample.dispose();
    expect(Array.from(s).every(Number.isFinite)).toBe(true);
    expect(r.nfe).toBeLessThanOrEqual(400);
    expect(r.rewards.every(Number.isFinite)).toBe(true);
  });
});

describe('adaptive schedules on a vp model', () => {
  it('are an ARGUMENT error naming the path, not a step with an infinite slope', async () => {
    const { sampleAdaptive, TimePredictionModule } = await import('../src/samplers/adaptive');
    const d = await Denoiser.load(file);
    const tpm = await TimePredictionModule.load('tpm');
    const meter: NfeMeter = { charge() {}, addModelTime() {} };
    const e = await expectCode(
      () => sampleAdaptive(tensor(randn(4), [2, 2]), { denoiser: d, predictor: tpm, cond: [0, 0], meter }),
      'ARGUMENT',
    );
    expect(e.message).toMatch(/'vp' path/);
  });
});
