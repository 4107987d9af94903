/**
 * The rank ensemble: scores comparable across every call of one search (a fixed rank
 * map per verifier, set by the first batch), NaN/∞ checked per member before ranking, a fresh
 * state per search, and EvoSearch with an ensemble improving on its generation 0.
 */
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { Denoiser } from '../src/models/denoiser';
import type { NativeTensor } from '../src/native';
import { uniform } from '../src/schedules';
import { evoSearch } from '../src/search/evosearch';
import { zeroOrder } from '../src/search/zero-order';
import { tensor } from '../src/tensor';
import { EnsembleVerifier, ranks } from '../src/verifiers/ensemble';
import { TorchScriptVerifier } from '../src/verifiers/torchscript';
import { FunctionVerifier, type Verifier } from '../src/verifiers/verifier';
import { expectCode, randn } from './helpers';

process.env.OMP_WAIT_POLICY ??= 'PASSIVE';

const D = 3;
/** Row-wise verifiers on [N, D] tensors: a sample's score depends on its own row only. */
const rowVerifier = (name: string, f: (row: Float32Array) => number) =>
  new FunctionVerifier(name, async (x0: NativeTensor) => {
    const a = (await x0.toArray()) as Float32Array;
    return Array.from({ length: x0.shape[0] }, (_, i) => f(a.subarray(i * D, (i + 1) * D)));
  });
// Coarse rounding makes ties, on both sides of the reference.
const sumV = rowVerifier('sum', (r) => Math.round(4 * (r[0] + r[1] + r[2])) / 4);
const firstV = rowVerifier('first', (r) => -r[0] * r[0] * 1000);

const rows = (data: Float32Array, idx: number[]) => {
  const out = new Float32Array(idx.length * D);
  idx.forEach((r, k) => out.set(data.subarray(r * D, (r + 1) * D), k * D));
  return tensor(out, [idx.length, D]);
};
const scoreRows = async (v: Verifier, data: Float32Array, idx: number[]) => {
  const t = rows(data, idx);
  try {
    return await v.score(t, new Array(idx.length).fill(0));
  } finally {
    t.dispose();
  }
};

/**
 * Independent reference: the rank of s among the reference scores r, by counting — #{r < s} +
 * ½·#{r = s} + ½ at a reference value, straight lines between neighbouring reference values, and beyond the
 * ends the line through the lowest and highest (value, F) points.
 */
function referenceF(ref: number[], s: number): number {
  const F = (v: number) => ref.filter((r) => r < v).length + ref.filter((r) => r === v).length / 2 + 0.5;
  const lo = Math.min(...ref),
    hi = Math.max(...ref);
  const slope = (F(hi) - F(lo)) / (hi - lo);
  if (s < lo) return F(lo) + (s - lo) * slope;
  if (s > hi) return F(hi) + (s - hi) * slope;
  if (ref.includes(s)) return F(s);
  const below = Math.max(...ref.filter((r) => r < s)),
    above = Math.min(...ref.filter((r) => r > s));
  return F(below) + ((s - below) / (above - below)) * (F(above) - F(below));
}

describe('EnsembleVerifier', () => {
  it(
    'a sample gets the same score in batches of any size and order, equal to the calibrated map computed ' +
      'independently',
    async () => {
      const n = 42,
        extra = 30,
        seed = (Math.random() * 2 ** 31) | 0;
      const data = randn((n + extra) * D, seed); // rows 0..41 calibrate; rows 42..71 come later
      const weights = [2, 1];
      const e = new EnsembleVerifier([sumV, firstV], weights);
      const first = await scoreRows(
        e,
        data,
        Array.from({ length: n }, (_, i) => i),
      );
      expect(e.calibrated).toBe(true);

      // Expected from raw member scores and the counting reference.
      const raw = [
        await scoreRows(sumV, data, [...Array(n + extra).keys()]),
        await scoreRows(firstV, data, [...Array(n + extra).keys()]),
      ];
      const refs = raw.map((r) => Array.from(r.subarray(0, n)));
      const expected = Array.from(
        { length: n + extra },
        (_, i) => (weights[0] * referenceF(refs[0], raw[0][i]) + weights[1] * referenceF(refs[1], raw[1][i])) / 3,
      );
      for (let i = 0; i < n; i++) expect(first[i], `seed ${seed} row ${i}`).toBeCloseTo(expected[i], 4);

      // Within the calibration batch: the paper's weighted mean rank.
      const rk = raw.map((r) => ranks(r.subarray(0, n)));
      for (let i = 0; i < n; i++) expect(first[i]).toBeCloseTo((weights[0] * rk[0][i] + weights[1] * rk[1][i]) / 3, 4);

      // Later batches of sizes 1, 5, 21 and 72, shuffled, old and new rows mixed.
      const all = [...Array(n + extra).keys()];
      for (const size of [1, 5, 21, n + extra]) {
        const order = [...all].sort(() => Math.random() - 0.5).slice(0, size);
        const s = await scoreRows(e, data, order);
        order.forEach((row, k) => expect(s[k], `seed ${seed} size ${size} row ${row}`).toBeCloseTo(expected[row], 4));
      }
    },
  );

  it(
    'a better score on one verifier and an equal one on the other always scores higher, also beyond the ' +
      'calibration batch',
    async () => {
      const e = new EnsembleVerifier([sumV, firstV]);
      const data = randn(10 * D);
      await scoreRows(e, data, [...Array(10).keys()]);
      // Rows far above and far below the calibration range on `sum`, equal on `first` (r[0] = 0).
      const probe = Float32Array.from([0, 100, 0, 0, 50, 0, 0, -50, 0, 0, -100, 0]);
      // Each in its own call: batch ranks would give every one the same score.
      const s: number[] = [];
      for (const i of [0, 1, 2, 3]) s.push((await scoreRows(e, probe, [i]))[0]);
      expect(s[0]).toBeGreaterThan(s[1]);
      expect(s[1]).toBeGreaterThan(s[2]);
      expect(s[2]).toBeGreaterThan(s[3]);
    },
  );

  it('NaN or ∞ from a member fails naming that member; with nanAsNegInf that sample ranks last', async () => {
    for (const bad of [NaN, Infinity, -Infinity]) {
      const broken = new FunctionVerifier('broken', async (x0) =>
        Array.from({ length: x0.shape[0] }, (_, i) => (i === 1 ? bad : i)),
      );
      const data = randn(4 * D);
      const err = await expectCode(
        () => scoreRows(new EnsembleVerifier([sumV, broken]), data, [0, 1, 2, 3]),
        'VERIFIER',
      );
      expect(err.message).toContain("'broken'");
      const lenient = new EnsembleVerifier([sumV, broken]).forSearch({ nanAsNegInf: true });
      const s = await scoreRows(lenient, data, [0, 1, 2, 3]);
      expect(s[1]).toBe(-Infinity);
      for (const i of [0, 2, 3]) expect(Number.isFinite(s[i])).toBe(true);
    }
  });

  it('forSearch gives a fresh, uncalibrated copy; a search leaves the ensemble it was given untouched', async () => {
    const e = new EnsembleVerifier([sumV, firstV]);
    await scoreRows(e, randn(5 * D), [0, 1, 2, 3, 4]);
    const f = e.forSearch();
    expect(e.calibrated).toBe(true);
    expect(f.calibrated).toBe(false);
    expect(f.name).toBe(e.name);
  });
});

describe('searches with an ensemble (gmm2d)', () => {
  let gmm: Denoiser;
  let ensemble: EnsembleVerifier;
  let reward: TorchScriptVerifier;
  beforeAll(async () => {
    gmm = await Denoiser.load(path.join(__dirname, '..', 'models', 'gmm2d.pt'));
    reward = await TorchScriptVerifier.load(path.join(__dirname, '..', 'models', 'gmm2d-reward.pt'));
    // The shipped reward (peak at (0, 3)) and "higher is better" on y: they agree on the way up.
    const height = new FunctionVerifier('height', async (x0) => {
      const a = (await x0.toArray()) as Float32Array;
      return Array.from({ length: x0.shape[0] }, (_, i) => a[2 * i + 1]);
    });
    ensemble = new EnsembleVerifier([reward, height]);
  });

  it('EvoSearch improves on its generation 0, and reports the best ensemble score it gave', async () => {
    for (const seed of [1, 2, 3]) {
      const r = await evoSearch({ denoiser: gmm, verifier: ensemble, cls: 0, budget: 1500, sigmas: uniform(10), seed });
      const K0 = r.trace[0].population as number;
      const gen0 = Math.max(...r.rewards.slice(0, K0));
      expect(r.reward, `seed ${seed}`).toBeGreaterThan(gen0);
      expect(r.reward).toBe(Math.max(...r.rewards));
      r.sample.dispose();
    }
    expect(ensemble.calibrated).toBe(false);
  });

  it(
    'an ensemble of verifiers that agree on the order searches exactly as one of them (zero-order, ' + 'EvoSearch)',
    async () => {
      // reward and 2·reward + 1 rank every set of samples alike: with comparable scores the ensemble
      // makes every decision (pivot moves, elites, tournaments, best-so-far) as the reward alone.
      const scaled = new FunctionVerifier('scaled', async (x0, c) =>
        Array.from(await reward.score(x0, c), (r) => 2 * r + 1),
      );
      const pair = new EnsembleVerifier([reward, scaled]);
      const runs = {
        'zero-order': (v: Verifier, seed: number) =>
          zeroOrder({ denoiser: gmm, verifier: v, cls: 0, budget: 400, sigmas: uniform(10), seed }, { n: 4, tau: 0.9 }),
        evosearch: (v: Verifier, seed: number) =>
          evoSearch({ denoiser: gmm, verifier: v, cls: 0, budget: 800, sigmas: uniform(10), seed }),
      };
      for (const [name, run] of Object.entries(runs))
        for (const seed of [1, 2]) {
          const a = await run(reward, seed),
            b = await run(pair, seed);
          expect(Array.from((await b.sample.toArray()) as Float32Array), `${name} seed ${seed}`).toEqual(
            Array.from((await a.sample.toArray()) as Float32Array),
          );
          expect(
            b.trace.map((t) => t.moved),
            name,
          ).toEqual(a.trace.map((t) => t.moved));
          // The same samples scored, and the ensemble's scores in the reward's order (float32 may
          // merge two nearly equal rewards into one score, hence ≤).
          expect(b.rewards).toHaveLength(a.rewards.length);
          for (let i = 0; i < a.rewards.length; i++)
            for (let j = 0; j < a.rewards.length; j++)
              if (a.rewards[i] < a.rewards[j])
                expect(b.rewards[i], `${name} ${i} ${j}`).toBeLessThanOrEqual(b.rewards[j]);
          a.sample.dispose();
          b.sample.dispose();
        }
    },
  );
});
