/**
 * EvoSearch's default ('sde') mutation of intermediate states: the parent's ε̂
 * at the level comes from its own trajectory, which already evaluated the model there, so the
 * children are the same numbers as with a model call per member, with none of those NFE; the plan
 * spends them on the population.
 */
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { Denoiser } from '../src/models/denoiser';
import type { ModuleInput, NativeTensor } from '../src/native';
import * as ops from '../src/ops';
import type { SamplerName } from '../src/samplers';
import { uniform } from '../src/schedules';
import { Budget } from '../src/search/budget';
import { evoSearch } from '../src/search/evosearch';
import { tensor } from '../src/tensor';
import { TorchScriptVerifier } from '../src/verifiers/torchscript';
import { sdeMutation } from './helpers';

process.env.OMP_WAIT_POLICY ??= 'PASSIVE';

let gmm: Denoiser;
let reward: TorchScriptVerifier;
/** Inputs of every forward call: states and their σ. */
let forwards: { x: Float32Array; sigma: number }[] = [];

beforeAll(async () => {
  gmm = await Denoiser.load(path.join(__dirname, '..', 'models', 'gmm2d.pt'));
  reward = await TorchScriptVerifier.load(path.join(__dirname, '..', 'models', 'gmm2d-reward.pt'));
  const m = gmm.module;
  const call = m.call.bind(m);
  m.call = async (method: string, inputs: ModuleInput[], s) => {
    if (method === 'forward') {
      const [x, sigma] = inputs as NativeTensor[];
      forwards.push({ x: (await x.toArray()) as Float32Array, sigma: ((await sigma.toArray()) as Float32Array)[0] });
    }
    return call(method, inputs, s);
  };
});

const rows = () => forwards.reduce((n, f) => n + f.x.length / 2, 0);

describe("EvoSearch 'sde' mutation reuses the trajectory's prediction", () => {
  const S = 10,
    L = 4;
  const [K0, K1, K2] = [6, 6, 8];
  const o = { levels: [0, L], population: [K0, K1, K2], elites: 0 };

  for (const sampler of ['euler', 'heun'] as SamplerName[])
    it(`${sampler}: each child is x − (σ − √(σ² − s²))·ε̂(x) + s·ε of a state x at the level`, async () => {
      const sigmas = uniform(S),
        sigma = sigmas[L];
      for (const seed of [(Math.random() * 1e6) | 0, (Math.random() * 1e6) | 0]) {
        forwards = [];
        const r = await evoSearch({ denoiser: gmm, verifier: reward, cls: 0, budget: 1000, sigmas, seed, sampler }, o);
        r.sample.dispose();
        expect(r.nfe).toBe(rows());
        const atL = forwards.filter((f) => Math.abs(f.sigma - sigma) < 1e-6);
        // The last forward at σ_L is the children's first step; before it, the states the
        // trajectories passed at L (the parents are among them).
        const kids = atL[atL.length - 1].x;
        expect(kids.length).toBe(2 * K2);
        const cand = Float32Array.from(atL.slice(0, -1).flatMap((f) => Array.from(f.x)));
        const n = cand.length / 2;
        const t = tensor(cand, [n, 2]);
        const p = await gmm.predict(t, new Array(n).fill(sigma), new Array(n).fill(0), 1, new Budget(1e9));
        const eps = (await p.eps.toArray()) as Float32Array;
        [t, p.x0, p.eps].forEach((x) => x.dispose());
        const { s, shift } = sdeMutation(sigmas, L, sigma);
        const e = await ops.randn([K2, 2], { seed, ids: Array.from({ length: K2 }, (_, i) => K0 + K1 + i), step: 102 });
        const noise = (await e.toArray()) as Float32Array;
        e.dispose();
        for (let c = 0; c < K2; c++) {
          let best = Infinity;
          for (let j = 0; j < n; j++) {
            const child = (k: number) => cand[2 * j + k] + shift * eps[2 * j + k] + s * noise[2 * c + k];
            const d = [0, 1].map((k) => Math.abs(child(k) - kids[2 * c + k]));
            best = Math.min(best, Math.max(...d));
          }
          expect(best, `${sampler} seed ${seed} child ${c}`).toBeLessThan(1e-5);
        }
      }
    });

  it('euler: NFE are the rollouts only — no model call for the mutation', async () => {
    forwards = [];
    const cfg = { denoiser: gmm, verifier: reward, cls: 0, budget: 1000, sigmas: uniform(S), seed: 5 };
    const r = await evoSearch(cfg, o);
    r.sample.dispose();
    expect(r.nfe).toBe(rows());
    expect(r.nfe).toBe(K0 * S + K1 * S + K2 * (S - L));
  });

  it("the saved NFE go to the population: the default plan is as large as with 'additive' mutation", async () => {
    for (const budget of [300, 800]) {
      const cfg = { denoiser: gmm, verifier: reward, cls: 0, budget, sigmas: uniform(20), seed: 2 };
      const sde = await evoSearch(cfg),
        additive = await evoSearch(cfg, { mutation: 'additive' });
      expect(
        sde.trace.map((t) => t.population),
        `budget ${budget}`,
      ).toEqual(additive.trace.map((t) => t.population));
      expect(sde.nfe).toBe(additive.nfe);
      expect(sde.nfe).toBeLessThanOrEqual(budget);
      sde.sample.dispose();
      additive.sample.dispose();
    }
  });
});
