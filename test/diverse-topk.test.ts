/**
 * The diverse top-k (diversity λ): greedy MMR against an independent float64 re-implementation on
 * fresh random candidates, a constructed case where MMR's answer is not the top-K by reward, and a
 * real search (best-of-n on gmm2d) whose kept samples must be MMR's pick over every distinct
 * sample its verifier saw.
 */
import { describe, expect, it } from 'vitest';
import path from 'node:path';
import { generate } from '../src/generate';
import { loadModule } from '../src/module';
import type { NativeTensor } from '../src/native';
import { tensor } from '../src/tensor';
import { EnsembleVerifier } from '../src/verifiers/ensemble';
import { featuresOf } from '../src/verifiers/features';
import { ClassLogitVerifier, TorchScriptVerifier } from '../src/verifiers/torchscript';
import { mmrSelect } from '../src/search/mmr';
import { FunctionVerifier } from '../src/verifiers/verifier';
import { mulberry32, randn } from './helpers';

const models = path.join(__dirname, '..', 'models');

/** Greedy MMR from its definition, written apart from src/search/mmr.ts: full similarity matrix, float64. */
function referenceMmr(r: number[], X: number[][], k: number, lambda: number): number[] {
  const fin = r.filter(Number.isFinite);
  const mean = fin.reduce((a, b) => a + b, 0) / fin.length;
  const sd = Math.sqrt(fin.reduce((a, b) => a + (b - mean) ** 2, 0) / fin.length);
  const z = r.map((v) => (sd > 0 ? (v - mean) / sd : 0));
  const norm = X.map((x) => Math.hypot(...x));
  const sim = X.map((a, i) => X.map((b, j) => a.reduce((s, v, d) => s + v * b[d], 0) / (norm[i] * norm[j])));
  const picked: number[] = [];
  while (picked.length < Math.min(k, r.length)) {
    const scores = r.map((_, i) =>
      picked.includes(i)
        ? -Infinity
        : picked.length === 0
          ? z[i]
          : z[i] - lambda * Math.max(...picked.map((j) => sim[i][j])),
    );
    let best = scores.findIndex((s) => s !== -Infinity || picked.length === 0);
    scores.forEach((s, i) => {
      if (!picked.includes(i) && s > scores[best]) best = i;
    });
    picked.push(best);
  }
  return picked;
}

const topByReward = (r: number[], k: number) =>
  r
    .map((v, i) => [v, i])
    .sort((a, b) => b[0] - a[0] || a[1] - b[1])
    .slice(0, k)
    .map((p) => p[1]);

describe('greedy MMR', () => {
  it('picks an orthogonal runner-up over near-copies of the best, where the top-K by reward would not', () => {
    const r = [1.0, 0.99, 0.98, 0.9];
    const X = [
      [1, 0, 0],
      [0.999, 0.04, 0],
      [0.998, 0, 0.06],
      [0, 1, 0],
    ];
    const got = mmrSelect(r, X.flat(), 3, 2, 3);
    expect(got).toEqual(referenceMmr(r, X, 2, 3));
    expect(got).toEqual([0, 3]);
    expect(got).not.toEqual(topByReward(r, 2)); // [0, 1]: MMR must not be the top-K by reward
    expect(mmrSelect(r, X.flat(), 3, 2, 0)).toEqual(topByReward(r, 2)); // λ = 0: it is
  });

  it('equals the reference on fresh random candidates for several λ and k', () => {
    const seed = (Math.random() * 2 ** 31) | 0;
    const u = mulberry32(seed);
    for (let trial = 0; trial < 20; trial++) {
      const N = 5 + Math.floor(u() * 40),
        D = 2 + Math.floor(u() * 10);
      const f = randn(N * D, seed + trial);
      const r = Array.from({ length: N }, () => u() * 4 - 2);
      const X = Array.from({ length: N }, (_, i) => Array.from(f.subarray(i * D, (i + 1) * D)));
      for (const lambda of [0, 0.3, 1, 5])
        for (const k of [1, 3, N])
          expect(mmrSelect(r, f, D, k, lambda), `seed ${seed} trial ${trial} λ ${lambda} k ${k}`).toEqual(
            referenceMmr(r, X, k, lambda),
          );
    }
  });
});

describe('diverse top-k in a real search (gmm2d, best-of-n)', () => {
  it("keeps MMR's pick over every distinct sample the verifier scored, not the top-K by reward", async () => {
    const seen: Array<{ x: number[]; r: number }> = [];
    // The gmm2d reward r(x) = −‖x − (0, 3)‖²/2, as a JS verifier that records what it scores (no features
    // method: the diverse top-k works on the samples' coordinates).
    const verifier = new FunctionVerifier('recording', async (x0) => {
      const v = (await x0.toArray()) as Float32Array;
      const out = Array.from({ length: x0.shape[0] }, (_, i) => {
        const r = Math.fround(-((v[2 * i] - 0) ** 2 + (v[2 * i + 1] - 3) ** 2) / 2);
        seen.push({ x: [v[2 * i], v[2 * i + 1]], r });
        return r;
      });
      return out;
    });
    const lambda = 1,
      K = 4;
    const res = await generate({
      model: 'gmm2d',
      algorithm: 'best-of-n',
      budget: 2000,
      keep: K,
      diversity: lambda,
      verifier: [verifier],
      seed: 11,
    });
    const distinct = seen.filter(
      (s, i) => seen.findIndex((t) => t.r === s.r && t.x.every((v, d) => v === s.x[d])) === i,
    );
    expect(distinct.length).toBeGreaterThan(20);
    const rs = distinct.map((s) => s.r);
    const want = referenceMmr(
      rs,
      distinct.map((s) => s.x),
      K,
      lambda,
    ).sort((a, b) => rs[b] - rs[a] || a - b);
    const got = Array.from({ length: res.shape[0] }, (_, i) => [res.samples[2 * i], res.samples[2 * i + 1]]);
    expect(got).toEqual(want.map((i) => distinct[i].x));
    expect(res.rewards).toEqual(want.map((i) => rs[i]));
    expect(want).not.toEqual(topByReward(rs, K)); // the search kept something other than the K best
    expect(res.report.diversity?.space).toBe('samples');
  });
});

describe('the feature space of the diverse top-k', () => {
  it("is a verifier module's features method, an ensemble's first member with one, or none", async () => {
    const cls = await loadModule(path.join(models, 'fashion-classifier.pt'));
    const reward = await loadModule(path.join(models, 'gmm2d-reward.pt'));
    const x = tensor(randn(3 * 784), [3, 1, 28, 28]);
    try {
      const f = featuresOf(new ClassLogitVerifier(cls, 'classifier', 2)); // maxBatch 2: two chunks, joined
      const got = await f!.run(x);
      const t = (await cls.call('features', [x])) as NativeTensor;
      const want = (await t.toArray()) as Float32Array;
      t.dispose();
      expect(got.length).toBe(want.length);
      got.forEach((v, i) => expect(Math.abs(v - want[i])).toBeLessThanOrEqual(1e-5 * (1 + Math.abs(want[i]))));
      const ens = new EnsembleVerifier([
        new TorchScriptVerifier(reward, 'gmm2d-reward'),
        new ClassLogitVerifier(cls, 'c'),
      ]);
      expect(featuresOf(ens)?.name).toBe('c');
      expect(featuresOf(new TorchScriptVerifier(reward, 'gmm2d-reward'))).toBeNull();
      expect(featuresOf(new FunctionVerifier('plain', async (x0) => new Array(x0.shape[0]).fill(0)))).toBeNull();
    } finally {
      x.dispose();
    }
  });
});
