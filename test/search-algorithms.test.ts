/**
 * Zero-order search, search over paths, particle sampling (FK steering) and beam search (SVDD) on
 * the analytic 2-D mixture (models/gmm2d.pt) and its reward (models/gmm2d-reward.pt): exact NFE
 * against an independent count of the rows the denoiser's forward saw, the budget, reproducibility,
 * budget monotonicity, cancellation and option errors.
 */
import path from 'node:path';
import { beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { Denoiser } from '../src/models/denoiser';
import { native, type ModuleInput, type NativeTensor } from '../src/native';
import { uniform } from '../src/schedules';
import { beamSearch } from '../src/search/beam';
import { particleSampling } from '../src/search/particles';
import { searchOverPaths } from '../src/search/paths';
import type { SearchConfig, SearchResult } from '../src/search/types';
import { zeroOrder } from '../src/search/zero-order';
import { TorchScriptVerifier } from '../src/verifiers/torchscript';
import type { Verifier } from '../src/verifiers/verifier';
import { expectCode } from './helpers';

const models = path.join(__dirname, '..', 'models');
const STEPS = 8;
const sigmas = uniform(STEPS);

let denoiser: Denoiser;
let verifier: TorchScriptVerifier;
/** Rows passed to the denoiser module's forward: counted outside the library. */
let forwardRows = 0;
/** While set, every tensor the native side hands out (see trackTensors). */
let tracked: NativeTensor[] | null = null;
const track = <T>(v: T): T => {
  if (tracked && v && typeof v === 'object') {
    if ('dtype' in v && 'dispose' in v) tracked.push(v as unknown as NativeTensor);
    else for (const x of Object.values(v)) track(x);
  }
  return v;
};

beforeAll(async () => {
  denoiser = await Denoiser.load(path.join(models, 'gmm2d.pt'));
  verifier = await TorchScriptVerifier.load(path.join(models, 'gmm2d-reward.pt'));
  const module = denoiser.module;
  const call = module.call.bind(module);
  module.call = (method: string, inputs: ModuleInput[], stream) => {
    if (method === 'forward') forwardRows += (inputs[0] as NativeTensor).shape[0];
    return call(method, inputs, stream).then(track);
  };
  const vcall = verifier.module.call.bind(verifier.module);
  verifier.module.call = (method: string, inputs: ModuleInput[], stream) => vcall(method, inputs, stream).then(track);
});

/** Runs body with every native op, tensor op and fromArray wrapped to record the tensors they return. */
async function trackTensors(body: () => Promise<void>): Promise<NativeTensor[]> {
  const n = native() as unknown as Record<string, unknown> & {
    ops: Record<string, (...a: unknown[]) => unknown>;
    tensorOps: Record<string, (...a: unknown[]) => unknown>;
  };
  const saved: [Record<string, unknown>, string, unknown][] = [];
  const wrap = (obj: Record<string, unknown>, key: string) => {
    const f = obj[key] as (...a: unknown[]) => unknown;
    saved.push([obj, key, f]);
    obj[key] = (...a: unknown[]) => {
      const r = f.apply(obj, a);
      return r instanceof Promise ? r.then(track) : track(r);
    };
  };
  for (const k of Object.keys(n.ops)) wrap(n.ops, k);
  for (const k of Object.keys(n.tensorOps)) wrap(n.tensorOps, k);
  wrap(n, 'fromArray');
  tracked = [];
  try {
    await body();
    return tracked;
  } finally {
    tracked = null;
    for (const [obj, key, f] of saved) obj[key] = f;
  }
}
beforeEach(() => {
  forwardRows = 0;
});

const config = (budget: number, extra: Partial<SearchConfig> = {}): SearchConfig => ({
  denoiser,
  verifier,
  cls: 0,
  budget,
  sigmas,
  seed: 7,
  ...extra,
});

interface Case {
  name: string;
  run: (c: SearchConfig) => Promise<SearchResult>;
  /** The smallest budget it runs with (NFE used there), the most a larger one leaves unspent, and two budgets. */
  min: number;
  unit: number;
  small: number;
  large: number;
}

// The smallest budget: zero-order a pivot and one neighbour (2 trajectories of 8 steps; a larger
// budget leaves less than one trajectory); one whole search for the others:
// paths 2 starts to step 2 (4) + 6 rounds of 6 copies × 2 steps (72) + one x̂0 evaluation per copy
// in the 5 rounds above σ = 0 (30) = 106; with rollout scoring, rollouts 6·(5+4+3+2+1) (90) instead = 166;
// particles 4 × 8; beam 2 at σ = 1 + 7 levels × 2 beams × 3 children.
const cases: Case[] = [
  { name: 'zero-order', run: (c) => zeroOrder(c, { n: 4 }), min: 16, unit: 8, small: 60, large: 200 },
  { name: 'paths', run: (c) => searchOverPaths(c, { n: 2, m: 3 }), min: 106, unit: 106, small: 110, large: 330 },
  {
    name: 'paths (rollout scoring)',
    run: (c) => searchOverPaths(c, { n: 2, m: 3, score: 'rollout' }),
    min: 166,
    unit: 166,
    small: 170,
    large: 520,
  },
  {
    name: 'particles',
    run: (c) => particleSampling({ ...c, sampler: 'sde' }, { particles: 4 }),
    min: 32,
    unit: 32,
    small: 40,
    large: 200,
  },
  {
    name: 'beam',
    run: (c) => beamSearch({ ...c, sampler: 'sde' }, { beams: 2, children: 3 }),
    min: 44,
    unit: 44,
    small: 50,
    large: 200,
  },
];

async function data(r: SearchResult): Promise<number[]> {
  return Array.from((await r.sample.toArray()) as Float32Array);
}

describe.each(cases)('$name', (c) => {
  it('counts every forward row, stays within the budget and records a trace', async () => {
    for (const budget of [c.min, c.large]) {
      forwardRows = 0;
      const r = await c.run(config(budget));
      expect(r.nfe).toBe(forwardRows);
      expect(r.nfe).toBeLessThanOrEqual(budget);
      expect(r.budget).toBe(budget);
      expect(r.trace.length).toBeGreaterThan(0);
      expect(r.trace.every((t) => t.nfe <= r.nfe && Number.isFinite(t.mean))).toBe(true);
      expect(r.sample.shape).toEqual([1, 2]);
      expect(r.reward).toBe(Math.max(...r.rewards));
      if (budget === c.min) expect(r.nfe).toBe(c.min);
      else expect(c.large - r.nfe).toBeLessThan(c.unit); // leftovers are spent while a search fits
      r.sample.dispose();
    }
  });

  it('is reproducible bit for bit from its seed', async () => {
    const a = await c.run(config(c.small));
    const b = await c.run(config(c.small));
    const d = await c.run(config(c.small, { seed: 8 }));
    expect(await data(b)).toEqual(await data(a));
    expect(b.rewards).toEqual(a.rewards);
    expect(b.trace).toEqual(a.trace);
    expect(await data(d)).not.toEqual(await data(a));
    for (const r of [a, b, d]) r.sample.dispose();
  });

  it('never finds a worse best with a larger budget (same seed)', async () => {
    // By construction: a larger budget runs the same rounds first (same ids, same noise), then more.
    for (const seed of [1, 2, 3]) {
      const lo = await c.run(config(c.small, { seed }));
      const hi = await c.run(config(c.large, { seed }));
      expect(hi.reward).toBeGreaterThanOrEqual(lo.reward);
      expect(hi.rewards.slice(0, lo.rewards.length)).toEqual(lo.rewards.slice(0, hi.rewards.length));
      lo.sample.dispose();
      hi.sample.dispose();
    }
  });

  it('stops with ABORTED when its signal is aborted from onProgress', async () => {
    const controller = new AbortController();
    let events = 0;
    await expectCode(
      () => c.run(config(c.large, { signal: controller.signal, onProgress: () => (events++, controller.abort()) })),
      'ABORTED',
    );
    expect(events).toBe(1);
  });

  it('disposes every tensor it makes but the result, also when cancelled', async () => {
    let result: SearchResult | null = null;
    const made = await trackTensors(async () => {
      result = await c.run(config(c.large));
    });
    expect(made.length).toBeGreaterThan(10);
    expect(made.filter((t) => !t.disposed)).toEqual([result!.sample]);
    result!.sample.dispose();
    const controller = new AbortController();
    let events = 0;
    const cancelled = await trackTensors(async () => {
      await expectCode(
        () =>
          c.run(config(c.large, { signal: controller.signal, onProgress: () => ++events === 2 && controller.abort() })),
        'ABORTED',
      );
    });
    expect(cancelled.filter((t) => !t.disposed).length).toBe(0);
  });

  it('fails with BUDGET below its smallest budget', async () => {
    const e = await expectCode(() => c.run(config(c.min - 1)), 'BUDGET');
    expect(e.message).toContain(`needs ${c.min} NFE`);
  });
});

describe('zero-order search', () => {
  it('moves the pivot to a better neighbour or restarts from a fresh one', async () => {
    const r = await zeroOrder(config(400), { n: 3, tau: 0.9 });
    const t = r.trace;
    expect(t[0].population).toBe(4); // the first pivot is sampled with its neighbours
    for (let i = 0; i + 1 < t.length; i++) {
      expect(t[i].moved).toBe((t[i].roundBest as number) > (t[i].pivot as number));
      // A moved pivot is not sampled again; a fresh one is (the last round may be cut short).
      const full = t[i].moved ? 3 : 4;
      if (i + 2 < t.length) expect(t[i + 1].population).toBe(full);
      else expect(t[i + 1].population).toBeLessThanOrEqual(full);
      if (t[i].moved) expect(t[i + 1].pivot).toBe(t[i].roundBest);
    }
    expect(t.some((e) => e.moved) && t.some((e) => e.restarted)).toBe(true);
    r.sample.dispose();
  });

  it('rejects bad options', async () => {
    for (const tau of [1, -1, 1.5, NaN]) await expectCode(() => zeroOrder(config(100), { tau }), 'ARGUMENT');
    for (const n of [0, 2.5, -1]) await expectCode(() => zeroOrder(config(100), { n }), 'ARGUMENT');
    await expectCode(() => zeroOrder(config(100), { rounds: 0 }), 'ARGUMENT');
    await expectCode(() => zeroOrder(config(0)), 'BUDGET');
  });

  it('stops after `rounds` rounds', async () => {
    const r = await zeroOrder(config(1000), { n: 2, rounds: 3 });
    expect(r.trace.length).toBe(3);
    r.sample.dispose();
  });
});

describe('search over paths', () => {
  it('walks the schedule from the start level to σ = 0 in steps of Δb − Δf', async () => {
    const r = await searchOverPaths(config(1000), {
      n: 2,
      m: 2,
      start: 3,
      forward: 2,
      backward: 4,
      score: 'x0',
      runs: 1,
    });
    // From step 3: up to 1, down to 5; up to 3, down to 7; up to 5, down to 8 (clamped).
    expect(r.trace.map((t) => t.sigma)).toEqual([sigmas[5], sigmas[7], 0]);
    // 2 noises to step 3 (6), then 4 copies × (4 + 4 + 3 steps) (44), and one x̂0 evaluation of the
    // 4 candidates in each of the two rounds above σ = 0 (8).
    expect(r.nfe).toBe(6 + 44 + 8);
    expect(r.nfe).toBe(forwardRows);
    r.sample.dispose();
  });

  it('rejects Δb ≤ Δf and other bad options', async () => {
    await expectCode(() => searchOverPaths(config(1000), { forward: 2, backward: 2 }), 'ARGUMENT');
    const e = await expectCode(() => searchOverPaths(config(1000), { forward: 3, backward: 2 }), 'ARGUMENT');
    expect(e.message).toMatch(/backward.*greater than forward/);
    await expectCode(() => searchOverPaths(config(1000), { forward: 0 }), 'ARGUMENT');
    await expectCode(() => searchOverPaths(config(1000), { start: 0 }), 'ARGUMENT');
    await expectCode(() => searchOverPaths(config(1000), { start: STEPS }), 'ARGUMENT');
    await expectCode(() => searchOverPaths(config(1000), { n: 0 }), 'ARGUMENT');
    await expectCode(() => searchOverPaths(config(1000), { m: 0 }), 'ARGUMENT');
    await expectCode(() => searchOverPaths(config(1000), { score: 'final' as 'x0' }), 'ARGUMENT');
    await expectCode(() => searchOverPaths(config(1000, { sigmas: [1, 0] })), 'ARGUMENT'); // no room to search
  });
});

describe('particle sampling (FK steering)', () => {
  const sde = (budget: number, extra: Partial<SearchConfig> = {}) => config(budget, { sampler: 'sde', ...extra });

  it('resamples by the potentials, and never when λ = 0 or the threshold is 0', async () => {
    for (const potential of ['max', 'add', 'diff'] as const) {
      for (const resampling of ['systematic', 'multinomial'] as const) {
        const r = await particleSampling(sde(32), { particles: 4, potential, resampling, lambda: 10 });
        const steered = r.trace.slice(0, -1);
        expect(steered.length).toBe(STEPS - 2); // scored at steps 1..S−2, then the finals
        expect(steered.some((t) => t.resampled)).toBe(true);
        expect(steered.every((t) => (t.ess as number) >= 1 && (t.ess as number) <= 4 + 1e-9)).toBe(true);
        r.sample.dispose();
      }
    }
    for (const o of [{ lambda: 0 }, { threshold: 0 }]) {
      const r = await particleSampling(sde(32), { particles: 4, ...o });
      expect(r.trace.some((t) => t.resampled)).toBe(false);
      r.sample.dispose();
    }
  });

  it('scores every `interval` steps', async () => {
    const r = await particleSampling(sde(32), { particles: 4, interval: 3 });
    expect(r.trace.map((t) => t.sigma)).toEqual([sigmas[3], sigmas[6], 0]);
    r.sample.dispose();
  });

  it('rejects bad options', async () => {
    await expectCode(() => particleSampling(sde(100), { particles: 0 }), 'ARGUMENT');
    await expectCode(() => particleSampling(sde(100), { particles: 1.5 }), 'ARGUMENT');
    await expectCode(() => particleSampling(sde(100), { potential: 'mul' as 'max' }), 'ARGUMENT');
    await expectCode(() => particleSampling(sde(100), { lambda: -1 }), 'ARGUMENT');
    await expectCode(() => particleSampling(sde(100), { threshold: 1.5 }), 'ARGUMENT');
    await expectCode(() => particleSampling(sde(100), { interval: 0 }), 'ARGUMENT');
    await expectCode(() => particleSampling(sde(100), { resampling: 'residual' as 'systematic' }), 'ARGUMENT');
    await expectCode(() => particleSampling(config(100, { sampler: 'euler' })), 'ARGUMENT');
    await expectCode(() => particleSampling(sde(100, { eta: 0 })), 'ARGUMENT');
    await expectCode(() => particleSampling(sde(-5)), 'BUDGET');
  });
});

describe('beam search (SVDD)', () => {
  it('keeps B of B·M children per step and scores B finals', async () => {
    const r = await beamSearch(config(1000, { sampler: 'sde' }), { beams: 3, children: 2, runs: 1 });
    expect(r.nfe).toBe(3 + (STEPS - 1) * 6);
    expect(r.trace.length).toBe(STEPS);
    expect(r.trace.slice(0, -1).every((t) => t.population === 6)).toBe(true);
    expect(r.rewards.length).toBe(3);
    r.sample.dispose();
  });

  it('rejects bad options', async () => {
    await expectCode(() => beamSearch(config(100, { sampler: 'sde' }), { beams: 0 }), 'ARGUMENT');
    await expectCode(() => beamSearch(config(100, { sampler: 'sde' }), { children: 0 }), 'ARGUMENT');
    await expectCode(() => beamSearch(config(100, { sampler: 'heun' })), 'ARGUMENT');
  });
});

it('rejects verifiers that need the x̂0 at σ ≈ 0.4 where intermediate states are scored', async () => {
  const self: Verifier = { name: 'self', needsMidPrediction: true, score: async (x) => new Float32Array(x.shape[0]) };
  await expectCode(() => searchOverPaths(config(1000, { verifier: self })), 'ARGUMENT');
  await expectCode(() => particleSampling(config(1000, { verifier: self })), 'ARGUMENT');
  await expectCode(() => beamSearch(config(1000, { verifier: self })), 'ARGUMENT');
});
