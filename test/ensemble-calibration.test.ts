/**
 * Rank-ensemble calibration on first batches that give no scale: a first batch
 * of one sample, of ties, or of NaN read as −∞. A member calibrates once it has seen two distinct
 * finite scores, from every finite score it has seen; until then it ranks every finite score as a
 * tie. A rank ensemble is then invariant to an increasing affine change of any member (100·y + 7
 * counts as y), also in searches whose first batch is one sample (best-of-N batch 1, beam 1 × 1).
 */
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { Denoiser } from '../src/models/denoiser';
import type { NativeTensor } from '../src/native';
import { uniform } from '../src/schedules';
import { beamSearch } from '../src/search/beam';
import { bestOfN } from '../src/search/best-of-n';
import type { SearchResult } from '../src/search/types';
import { tensor } from '../src/tensor';
import { EnsembleVerifier } from '../src/verifiers/ensemble';
import { TorchScriptVerifier } from '../src/verifiers/torchscript';
import { FunctionVerifier, type Verifier } from '../src/verifiers/verifier';
import { randn } from './helpers';

process.env.OMP_WAIT_POLICY ??= 'PASSIVE';

const D = 2;
/** A row-wise verifier on [N, D] tensors; `nanCalls` first calls return NaN for every row. */
const rowVerifier = (name: string, f: (row: Float32Array) => number, nanCalls = 0) => {
  let calls = 0;
  return new FunctionVerifier(name, async (x0: NativeTensor) => {
    const a = (await x0.toArray()) as Float32Array;
    const nan = calls++ < nanCalls;
    return Array.from({ length: x0.shape[0] }, (_, i) => (nan ? NaN : f(a.subarray(i * D, (i + 1) * D))));
  });
};
const first = (r: Float32Array) => r[0];
const second = (r: Float32Array) => r[1];

async function scoreBatch(v: Verifier, rows: Float32Array): Promise<Float32Array> {
  const n = rows.length / D;
  const t = tensor(rows, [n, D]);
  try {
    return await v.score(t, new Array(n).fill(0));
  } finally {
    t.dispose();
  }
}

/** Independent reference: s's mid-rank among the reference, straight lines between, the end-to-end slope beyond. */
function referenceF(ref: number[], s: number): number {
  const F = (v: number) => ref.filter((r) => r < v).length + ref.filter((r) => r === v).length / 2 + 0.5;
  const lo = Math.min(...ref),
    hi = Math.max(...ref);
  const slope = (F(hi) - F(lo)) / (hi - lo);
  if (s <= lo) return F(lo) + (s - lo) * slope;
  if (s >= hi) return F(hi) + (s - hi) * slope;
  const below = Math.max(...ref.filter((r) => r <= s)),
    above = Math.min(...ref.filter((r) => r > s));
  return F(below) + ((s - below) / (above - below)) * (F(above) - F(below));
}

/** Float32 the way the verifier returns it. */
const f32 = (v: number) => Math.fround(v);

describe('EnsembleVerifier calibration on first batches without a scale', () => {
  it('one-sample first batch: ties until two distinct scores, then ranks against all seen; 100y + 7 is y', async () => {
    const seed = (Math.random() * 2 ** 31) | 0;
    const sizes = [1, 1, 3, 5, 4];
    const data = randn(sizes.reduce((a, b) => a + b) * D, seed);
    const plain = new EnsembleVerifier([rowVerifier('x', first), rowVerifier('y', second)]);
    const scaled = new EnsembleVerifier([rowVerifier('x', first), rowVerifier('100y+7', (r) => 100 * r[1] + 7)]);
    const seen: number[][] = [[], []];
    let at = 0;
    for (const n of sizes) {
      const rows = data.subarray(at * D, (at + n) * D);
      at += n;
      const a = await scoreBatch(plain, rows),
        b = await scoreBatch(scaled, rows);
      for (let i = 0; i < n; i++) expect(b[i], `seed ${seed}`).toBeCloseTo(a[i], 4);
      // Expected: per member, (count + 1)/2 while every score seen is one value, else the rank
      // map of all scores seen up to the batch that first held two distinct ones.
      const raw = [0, 1].map((m) => Array.from({ length: n }, (_, i) => f32(rows[i * D + m])));
      raw.forEach((r, m) => {
        if (new Set(seen[m]).size < 2) seen[m].push(...r);
      });
      const expected = Array.from({ length: n }, (_, i) =>
        [0, 1].reduce((acc, m) => {
          const tie = new Set(seen[m]).size < 2;
          return acc + (tie ? (seen[m].length + 1) / 2 : referenceF(seen[m], raw[m][i])) / 2;
        }, 0),
      );
      for (let i = 0; i < n; i++) expect(a[i], `seed ${seed} batch of ${n} row ${i}`).toBeCloseTo(expected[i], 4);
    }
    expect(plain.calibrated).toBe(true);
  });

  it('a first batch of ties stays uncalibrated and does not tell samples apart', async () => {
    const e = new EnsembleVerifier([rowVerifier('const', () => 3), rowVerifier('x', first)]);
    const s = await scoreBatch(e, randn(4 * D));
    expect(e.calibrated).toBe(false);
    // 'const': four ties, rank 2.5 each; 'x': four distinct scores, ranks 1..4.
    expect(Array.from(s).sort((a, b) => a - b)).toEqual([1.75, 2.25, 2.75, 3.25]);
  });

  it('all-NaN first batch (nanAsNegInf): the member calibrates on its first finite scores; 1000·y is y', async () => {
    const seed = (Math.random() * 2 ** 31) | 0;
    const data = randn(12 * D, seed);
    const make = (k: number) => {
      const members = [rowVerifier('x', first), rowVerifier(`${k}y`, (r) => k * r[1], 1)];
      return new EnsembleVerifier(members).forSearch({ nanAsNegInf: true });
    };
    const a = make(1),
      b = make(1000);
    const batches = [data.subarray(0, 4 * D), data.subarray(4 * D, 9 * D), data.subarray(9 * D)];
    const sa: Float32Array[] = [],
      sb: Float32Array[] = [];
    for (const rows of batches) {
      sa.push(await scoreBatch(a, rows));
      sb.push(await scoreBatch(b, rows));
    }
    // First batch: y is −∞ for every row, so is the ensemble score.
    expect(Array.from(sa[0])).toEqual([-Infinity, -Infinity, -Infinity, -Infinity]);
    // Later batches: y ranked against its first finite batch (rows 4..8), x against rows 0..3.
    const refX = Array.from({ length: 4 }, (_, i) => f32(data[i * D]));
    const refY = Array.from({ length: 5 }, (_, i) => f32(data[(4 + i) * D + 1]));
    [sa[1], sa[2]].forEach((s, k) => {
      const base = k === 0 ? 4 : 9;
      for (let i = 0; i < s.length; i++) {
        const r = base + i;
        const expected = (referenceF(refX, f32(data[r * D])) + referenceF(refY, f32(data[r * D + 1]))) / 2;
        expect(s[i], `seed ${seed} row ${r}`).toBeCloseTo(expected, 4);
        expect(sb[k + 1][i], `seed ${seed} row ${r}`).toBeCloseTo(s[i], 4);
      }
    });
  });
});

describe('searches whose first batch is one sample (gmm2d)', () => {
  let gmm: Denoiser;
  let reward: TorchScriptVerifier;
  beforeAll(async () => {
    gmm = await Denoiser.load(path.join(__dirname, '..', 'models', 'gmm2d.pt'));
    reward = await TorchScriptVerifier.load(path.join(__dirname, '..', 'models', 'gmm2d-reward.pt'));
  });

  // The shipped reward (peak at (0, 3)) and a second verifier on x: they disagree, so the scale
  // given to x would decide the searches if raw scores leaked in. The scale is a power of two so
  // that float32 scores keep every order and tie of x (an offset or 100·x may round two close
  // scores together, a real change of ranks, not a leak of scale).
  const ensembles = (k: number) => new EnsembleVerifier([reward, rowVerifier(`${k}x`, (r) => k * r[0])]);
  const same = async (a: SearchResult, b: SearchResult, what: string) => {
    const values = async (r: SearchResult) => Array.from((await r.sample.toArray()) as Float32Array);
    expect(await values(b), what).toEqual(await values(a));
    expect(b.rewards).toHaveLength(a.rewards.length);
    b.rewards.forEach((r, i) => expect(r, `${what} reward ${i}`).toBeCloseTo(a.rewards[i], 3));
    a.sample.dispose();
    b.sample.dispose();
  };

  it('best-of-N with batch 1 and beam 1 × 1 search alike with x and with 128·x', async () => {
    const seeds = Array.from({ length: 3 }, () => (Math.random() * 1e6) | 0);
    for (const seed of seeds) {
      const cfg = (verifier: Verifier) => ({ denoiser: gmm, verifier, cls: 0, budget: 60, sigmas: uniform(6), seed });
      const one = { batch: 1 },
        beam = { beams: 1, children: 1 };
      const [a, b] = [cfg(ensembles(1)), cfg(ensembles(128))];
      await same(await bestOfN(a, one), await bestOfN(b, one), `best-of-n seed ${seed}`);
      await same(await beamSearch(a, beam), await beamSearch(b, beam), `beam seed ${seed}`);
    }
  });
});
