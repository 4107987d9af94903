import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { Denoiser } from '../src/models/denoiser';
import { TorchScriptVerifier } from '../src/verifiers/torchscript';
import { FunctionVerifier } from '../src/verifiers/verifier';
import { EnsembleVerifier, ranks } from '../src/verifiers/ensemble';
import { baseline } from '../src/search/baseline';
import { bestOfN } from '../src/search/best-of-n';
import { evoSearch } from '../src/search/evosearch';
import type { SearchConfig, SearchResult } from '../src/search/types';
import { uniform, shifted, karras, validateSchedule } from '../src/schedules';
import type { NativeTensor } from '../src/native';
import { expectCode, fixture } from './helpers';

const models = path.join(__dirname, '..', 'models');
let gmm: Denoiser;
let reward: TorchScriptVerifier;

/** Counts samples through forward, independently of the search's own budget. */
function countForward(d: Denoiser): { rows: number } {
  const counter = { rows: 0 };
  const m = d.module as unknown as { call: (method: string, inputs: unknown[], s?: unknown) => Promise<unknown> };
  const call = m.call.bind(m);
  m.call = (method, inputs, s) => {
    if (method === 'forward') counter.rows += (inputs[0] as NativeTensor).shape[0];
    return call(method, inputs, s);
  };
  return counter;
}

beforeAll(async () => {
  gmm = await Denoiser.load(path.join(models, 'gmm2d.pt'), { maxBatch: 64 });
  reward = await TorchScriptVerifier.load(path.join(models, 'gmm2d-reward.pt'));
});

const cfg = (budget: number, extra: Partial<SearchConfig> = {}): SearchConfig => ({
  denoiser: gmm,
  verifier: reward,
  cls: 0,
  budget,
  sigmas: uniform(10),
  seed: 11,
  ...extra,
});

type Algo = (c: SearchConfig) => Promise<SearchResult>;
const algorithms: Record<string, Algo> = {
  baseline: (c) => baseline(c),
  'best-of-n': (c) => bestOfN(c),
  evosearch: (c) => evoSearch(c),
  'evosearch-sde': (c) => evoSearch({ ...c, sampler: 'sde' }),
  'evosearch-x0': (c) => evoSearch(c, { scoreBy: 'x0' }),
  'evosearch-heun': (c) => evoSearch({ ...c, sampler: 'heun' }),
  'evosearch-additive': (c) => evoSearch(c, { mutation: 'additive' }),
};

describe('NFE accounting', () => {
  for (const [name, run] of Object.entries(algorithms)) {
    it(`${name}: NFE used equals the forward rows counted independently, within budget`, async () => {
      const d = await Denoiser.load(path.join(models, 'gmm2d.pt'), { maxBatch: 7 }); // odd chunks
      const counter = countForward(d);
      for (const budget of [100, 333]) {
        counter.rows = 0;
        const r = await run(cfg(budget, { denoiser: d }));
        expect(r.nfe).toBe(counter.rows);
        expect(r.nfe).toBeLessThanOrEqual(budget);
        expect(r.nfe).toBeGreaterThan(0);
        expect(r.trace.length).toBeGreaterThan(0);
        expect(r.rewards.length).toBeGreaterThan(0);
        expect(r.sample.shape).toEqual([1, 2]);
        expect(r.reward).toBe(Math.max(...r.rewards));
        r.sample.dispose();
      }
    });
  }

  it('guidance doubles the cost: one conditional and one null-class row per sample', async () => {
    const d = await Denoiser.load(fixture('tiny.pt'));
    const counter = countForward(d);
    const v = new FunctionVerifier('mean', async (x0) => {
      const a = (await x0.toArray()) as Float32Array;
      const n = x0.shape[0],
        D = a.length / n;
      return Array.from({ length: n }, (_, i) => a.subarray(i * D, (i + 1) * D).reduce((s, x) => s + x, 0));
    });
    const r = await bestOfN({
      denoiser: d,
      verifier: v,
      cls: 3,
      budget: 100,
      sigmas: uniform(5),
      guidance: 2.5,
      seed: 1,
    });
    expect(r.nfe).toBe(counter.rows);
    expect(r.nfe).toBe(100); // 10 trajectories × 5 steps × 2
    const plain = await bestOfN({
      denoiser: d,
      verifier: v,
      cls: 3,
      budget: 100,
      sigmas: uniform(5),
      guidance: 1,
      seed: 1,
    });
    expect(plain.rewards.length).toBe(20);
  });
});

describe('budget scaling on gmm2d', () => {
  it('best-of-N and EvoSearch: the best reward does not decrease as the budget grows', async () => {
    for (const run of [algorithms['best-of-n'], algorithms.evosearch, algorithms['evosearch-sde']]) {
      let prev = -Infinity;
      for (const budget of [100, 400, 1600, 6400]) {
        const r = await run(cfg(budget));
        expect(r.reward).toBeGreaterThanOrEqual(prev);
        prev = r.reward;
        r.sample.dispose();
      }
    }
  });
});

describe('reproducibility and control', () => {
  it('the same seed gives bit-identical results; another seed differs', async () => {
    for (const run of [algorithms['best-of-n'], algorithms['evosearch-sde']]) {
      const a = await run(cfg(500)),
        b = await run(cfg(500)),
        c = await run(cfg(500, { seed: 12 }));
      expect(Array.from((await a.sample.toArray()) as Float32Array)).toEqual(
        Array.from((await b.sample.toArray()) as Float32Array),
      );
      expect(a.rewards).toEqual(b.rewards);
      expect(a.trace.map((t) => t.best)).toEqual(b.trace.map((t) => t.best));
      expect(c.rewards).not.toEqual(a.rewards);
    }
  });

  it('an AbortSignal stops the search within a step with ABORTED', async () => {
    const ctl = new AbortController();
    let events = 0;
    await expectCode(
      () =>
        evoSearch(
          cfg(5000, {
            signal: ctl.signal,
            onProgress: (p) => {
              events++;
              expect(p.nfe).toBeLessThanOrEqual(p.budget);
              if (events === 2) ctl.abort();
            },
          }),
        ),
      'ABORTED',
    );
    expect(events).toBe(2);
  });

  it('NaN scores are a VERIFIER error naming the verifier, or −∞ on request', async () => {
    const nan = new FunctionVerifier('sometimes-nan', async (x0) =>
      Array.from({ length: x0.shape[0] }, (_, i) => (i % 3 === 1 ? NaN : i)),
    );
    const e = await expectCode(() => bestOfN(cfg(100, { verifier: nan })), 'VERIFIER');
    expect(e.message).toMatch(/sometimes-nan/);
    const r = await bestOfN(cfg(100, { verifier: nan, nanAsNegInf: true }));
    expect(Number.isFinite(r.reward)).toBe(true);
  });

  it('bad options are clear errors', async () => {
    await expectCode(() => bestOfN(cfg(-5)), 'BUDGET');
    await expectCode(() => bestOfN(cfg(0)), 'BUDGET');
    await expectCode(() => bestOfN(cfg(5)), 'BUDGET'); // one trajectory needs 10
    await expectCode(() => bestOfN(cfg(100, { sigmas: [] })), 'ARGUMENT');
    await expectCode(() => bestOfN(cfg(100, { sigmas: [1, 0.5] })), 'ARGUMENT'); // does not end at 0
    await expectCode(() => bestOfN(cfg(100, { sigmas: [0.5, 1, 0] })), 'ARGUMENT');
    await expectCode(() => bestOfN(cfg(100, { cls: 3 })), 'ARGUMENT');
    await expectCode(() => evoSearch(cfg(1000), { population: [10, 4, 4, 4, 4], elites: 5 }), 'ARGUMENT');
    await expectCode(() => evoSearch(cfg(1000), { levels: [2, 5] }), 'ARGUMENT');
    await expectCode(() => evoSearch(cfg(1000), { beta: 0 }), 'ARGUMENT');
    await expectCode(() => evoSearch(cfg(100), { population: [50, 30, 30, 30, 30] }), 'BUDGET');
    await expectCode(() => evoSearch(cfg(100, { sampler: 'rk4' as never })), 'ARGUMENT');
  });
});

describe('schedules and verifiers', () => {
  it('schedules run from 1 to 0 without increasing', () => {
    for (const s of [uniform(7), shifted(7, 3), karras(7)]) {
      validateSchedule(s);
      expect(s.length).toBe(8);
      expect(s[s.length - 1]).toBe(0);
    }
    const sh = shifted(4, 3);
    for (let i = 0; i < 5; i++) {
      const t = 1 - i / 4;
      expect(sh[i]).toBeCloseTo((3 * t) / (1 + 2 * t), 12);
    }
  });

  it('the ensemble averages ranks (ties share the mean rank)', async () => {
    expect(Array.from(ranks([3, 1, 3, 2]))).toEqual([3.5, 1, 3.5, 2]);
    const a = new FunctionVerifier('a', async () => [10, 20, 30]);
    const b = new FunctionVerifier('b', async () => [0.3, 0.1, 0.2]);
    const e = new EnsembleVerifier([a, b], [1, 3]);
    const x = (await import('../src/tensor')).tensor(new Float32Array(3), [3, 1]);
    const s = await e.score(x, [0, 0, 0]);
    expect(Array.from(s)).toEqual([(1 * 1 + 3 * 3) / 4, (2 + 3 * 1) / 4, (3 + 3 * 2) / 4].map(Math.fround));
  });
});
