/**
 * The Time Prediction Module inside the searches (issue 21): the adaptive sampler's σ_max clamp
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
  predict: async (f) => ({ alpha: new Float32Array(f.shape[0]).fill(1 + r), beta: new Float32Array(f.shape[0]).fill(2 - r) }),
});

describe('the adaptive sampler on an ε-prediction rectified flow (test/fixtures/eps-flow.pt)', () => {
  const D = 4, MU = 0.5, S = 0.8, ERR = 0.05;
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
    for (const [r, maxSteps] of [[0.5, 1], [0.5, 4], [0.9, 6]] as const) {
      const n = 5;
      const data = randn(n * D);
      const m = meter();
      const out = await sampleAdaptive(tensor(data, [n, D]), { denoiser: eps, predictor: constantRatio(r, maxSteps), cond: new Array(n).fill(0), meter: m });
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
    const out = await sampleAdaptive(x, { denoiser: eps, predictor: constantRatio(0.5, 1), cond: new Array(n).fill(0), meter: meter() });
    const p = await eps.predict(x, new Array(n).fill(1), new Array(n).fill(0), 1, meter());
    const a = (await out.x.toArray()) as Float32Array, b = (await p.x0.toArray()) as Float32Array;
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
    const config = (sigmas: number[]): SearchConfig => ({ denoiser: gmm, verifier, cls: 0, budget: 200, sigmas, seed: 1 });
    for (const sigmas of [karras(5, 0.002, 0.3), [0.9, 0.5, 0], uniform(5).slice(1)])
      for (const [name, a] of Object.entries(algorithms)) {
        const e = await expectCode(() => a.run({ ...config(sigmas), sampler: name === 'particles' || name === 'beam' ? 'sde' : undefined }), 'ARGUMENT');
        expect(e.message, name).toMatch(/σ = 1|start/);
      }
    // Schedules from 1 still run.
    for (const sigmas of [karras(5), shifted(5, 3), uniform(5)]) {
      const r = await algorithms['best-of-n'].run(config(sigmas));
      expect(r.nfe).toBeLessThanOrEqual(200);
      r.sample.dispose();
    }
    // karras itself names the fix when asked for a range that cannot start a search.
    expect(karras(3, 0.002, 1)[0]).toBe(1);
    gmm.dispose();
  });
});
