/**
 * EvoSearch's selection: the tournament pool at a level holds every
 * trajectory scored through it (earlier generations too, as in the paper's reference code), the
 * entrant count is ⌊0.9·P⌋, and scored by x̂0 the elites are compared with the children at the
 * same level. Parents are identified by their final samples: with a tiny mutation a child's
 * deterministic rollout ends next to its parent's.
 */
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { Denoiser } from '../src/models/denoiser';
import type { ModuleInput, NativeTensor } from '../src/native';
import * as ops from '../src/ops';
import { uniform } from '../src/schedules';
import { Budget } from '../src/search/budget';
import { evoSearch } from '../src/search/evosearch';
import { FunctionVerifier } from '../src/verifiers/verifier';

process.env.OMP_WAIT_POLICY ??= 'PASSIVE';

let gmm: Denoiser;
/** σ and rows of every forward call, in order. */
let forwards: { sigma: number; rows: number }[] = [];

beforeAll(async () => {
  gmm = await Denoiser.load(path.join(__dirname, '..', 'models', 'gmm2d.pt'));
  const m = gmm.module;
  const call = m.call.bind(m);
  m.call = async (method: string, inputs: ModuleInput[], s) => {
    const sigma = inputs[1] as NativeTensor;
    if (method === 'forward')
      forwards.push({ sigma: ((await sigma.toArray()) as Float32Array)[0], rows: sigma.shape[0] });
    return call(method, inputs, s);
  };
});

/** A verifier recording each call's samples and rewards; `reward(call, row)` scores them. */
function recorder(reward: (call: number, x: number, y: number) => number) {
  const calls: { x: Float32Array; rewards: number[]; sigma: number }[] = [];
  const verifier = new FunctionVerifier('recorder', async (x0) => {
    const a = (await x0.toArray()) as Float32Array;
    const rewards = Array.from({ length: x0.shape[0] }, (_, i) => reward(calls.length, a[2 * i], a[2 * i + 1]));
    calls.push({ x: a, rewards, sigma: forwards[forwards.length - 1].sigma });
    return rewards;
  });
  return { calls, verifier };
}

const row = (a: Float32Array, i: number) => [a[2 * i], a[2 * i + 1]];
const argmax = (xs: number[]) => xs.reduce((b, v, i) => (v > xs[b] ? i : b), 0);
/** Index of the row of `a` nearest to p. */
const nearest = (a: Float32Array, p: number[]) => {
  let best = 0,
    d = Infinity;
  for (let i = 0; i < a.length / 2; i++) {
    const e = Math.hypot(a[2 * i] - p[0], a[2 * i + 1] - p[1]);
    if (e < d) [best, d] = [i, e];
  }
  return { index: best, distance: d };
};

describe('EvoSearch tournament pool', () => {
  it("'all' (default): a later level's pool holds generation 0 too; 'latest': elites and latest children", async () => {
    // Generation 0 scores high (100 + y), generation 1's children low (y): with every member in each
    // tournament (fraction 1) and no elites, generation 2's parent is the pool's best — generation 0's
    // best with the reference's pool, generation 1's best child with the latest one.
    for (const seed of [3, 8]) {
      for (const pool of ['all', 'latest'] as const) {
        const { calls, verifier } = recorder((call, _x, y) => (call === 0 ? 100 + y : y));
        const o = { levels: [0, 4], population: [6, 6, 8], elites: 0, tournament: 1, beta: 1, mutationScale: 1e-4 };
        const cfg = { denoiser: gmm, verifier, cls: 0, budget: 400, sigmas: uniform(10), seed };
        const r = await evoSearch(cfg, pool === 'all' ? o : { ...o, pool });
        r.sample.dispose();
        expect(calls.map((c) => c.rewards.length)).toEqual([6, 6, 8]);
        const source = pool === 'all' ? calls[0] : calls[1];
        const parent = row(source.x, argmax(source.rewards));
        for (let c = 0; c < 8; c++) {
          const d = Math.hypot(calls[2].x[2 * c] - parent[0], calls[2].x[2 * c + 1] - parent[1]);
          expect(d, `${pool} seed ${seed} child ${c}`).toBeLessThan(1e-2);
        }
        expect(r.trace[2].pool, pool).toBe(pool === 'all' ? 12 : 6);
      }
    }
  });

  it('each tournament has ⌊0.9·P⌋ entrants (P = 5: 4), drawn without replacement; its best wins', async () => {
    // Independent: each child's entrants are the pool members with its 4 smallest uniform keys (seed,
    // child id, step 200 + g); the winner is the entrant with the highest reward.
    let notBest = 0;
    for (const seed of [1, 2]) {
      const { calls, verifier } = recorder((_call, x, y) => y - 0.1 * x);
      const r = await evoSearch(
        { denoiser: gmm, verifier, cls: 0, budget: 1000, sigmas: uniform(10), seed },
        { levels: [0], population: [5, 40], elites: 0, beta: 1e-3 },
      );
      r.sample.dispose();
      const ids = Array.from({ length: 40 }, (_, i) => 5 + i);
      const u = await ops.uniform([40, 5], { seed, ids, step: 201 });
      const keys = (await u.toArray()) as Float32Array;
      u.dispose();
      const rewards = calls[0].rewards;
      for (let c = 0; c < 40; c++) {
        const entrants = [0, 1, 2, 3, 4].sort((a, b) => keys[c * 5 + a] - keys[c * 5 + b]).slice(0, 4);
        const expected = entrants.reduce((b, i) => (rewards[i] > rewards[b] ? i : b));
        const observed = nearest(calls[0].x, row(calls[1].x, c));
        expect(observed.distance).toBeLessThan(1e-2);
        expect(observed.index, `seed ${seed} child ${c}`).toBe(expected);
        if (expected !== argmax(rewards)) notBest++;
      }
    }
    // With every member entering (round(4.5) = 5) the best would win every tournament.
    expect(notBest).toBeGreaterThan(0);
  });

  it("scoreBy 'x0' with pool 'all' is refused (no trajectories to pool)", async () => {
    const { verifier } = recorder(() => 0);
    const cfg = { denoiser: gmm, verifier, cls: 0, budget: 400, sigmas: uniform(10), seed: 1 };
    await expect(evoSearch(cfg, { scoreBy: 'x0', pool: 'all' })).rejects.toMatchObject({ code: 'ARGUMENT' });
  });
});

describe('EvoSearch scored by x̂0: elites and children compared at the same level', () => {
  it('every generation compares only rewards scored at its own level', async () => {
    // The reward −|x̂0 − c| with c the x̂0 at σ = 1 (where every noise predicts about the same x̂0):
    // rewards from σ = 1 are near their maximum 0, later levels' clearly below. An elite carrying its
    // σ = 1 reward into a later generation would beat every child there.
    const noise = await ops.randn([1, 2], { seed: 99, ids: [0], step: 0 });
    const p = await gmm.predict(noise, [1], [0], 1, new Budget(1e9));
    const c = Array.from((await p.x0.toArray()) as Float32Array);
    [noise, p.x0, p.eps].forEach((t) => t.dispose());
    for (const seed of [1, 2, 3]) {
      const { calls, verifier } = recorder((_call, x, y) => -Math.hypot(x - c[0], y - c[1]));
      forwards = [];
      const levels = [0, 4, 7];
      const sigmas = uniform(10);
      const o = { scoreBy: 'x0' as const, levels, population: [8, 8, 8, 8], elites: 2 };
      const r = await evoSearch({ denoiser: gmm, verifier, cls: 0, budget: 1000, sigmas, seed }, o);
      r.sample.dispose();
      for (const t of r.trace.slice(1)) {
        // Every reward scored at this generation's level (the verifier call right after a forward at σ_L).
        const sigma = sigmas[t.level as number];
        const atLevel = calls
          .slice(0, -1)
          .filter((k) => Math.abs(k.sigma - sigma) < 1e-6)
          .flatMap((k) => k.rewards);
        expect(t.generationBest, `seed ${seed} level ${t.level}`).toBeCloseTo(Math.max(...atLevel), 6);
      }
    }
  });
});

describe('EvoSearch scored by x̂0 keeps its NFE plan', () => {
  it('NFE used equals the forward rows and stays within the budget', async () => {
    const { verifier } = recorder((_call, _x, y) => y);
    const cfg = { denoiser: gmm, verifier, cls: 0, budget: 300, sigmas: uniform(10), seed: 4 };
    for (const o of [{}, { elites: 0 }]) {
      forwards = [];
      const r = await evoSearch(cfg, { scoreBy: 'x0', ...o });
      expect(r.nfe).toBe(forwards.reduce((n, f) => n + f.rows, 0));
      expect(r.nfe).toBeLessThanOrEqual(300);
      r.sample.dispose();
    }
  });
});
