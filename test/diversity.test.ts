import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { meanPairwiseCosineDistance, vendiScore } from '../src/eval/diversity';
import { mulberry32, randn } from './helpers';

const python = '/usr/bin/python3';

/** numpy's symmetric eigen-solver (LAPACK syevd) on the same float32 features, in float64. */
function numpyReference(X: Float32Array, K: number, D: number): { vendi: number; mcd: number } {
  const script = [
    'import sys, json, numpy as np',
    'a = json.load(sys.stdin)',
    'X = np.array(a["x"], dtype=np.float32).astype(np.float64).reshape(a["k"], a["d"])',
    'U = X / np.linalg.norm(X, axis=1, keepdims=True)',
    'S = U @ U.T',
    'w = np.linalg.eigvalsh(S / a["k"])',
    'w = w[w > 1e-15]',
    'iu = np.triu_indices(a["k"], 1)',
    'print(json.dumps({"vendi": float(np.exp(-(w * np.log(w)).sum())), "mcd": float((1 - S[iu]).mean())}))',
  ].join('\n');
  const input = JSON.stringify({ x: Array.from(X), k: K, d: D });
  return JSON.parse(execFileSync(python, ['-c', script], { input, encoding: 'utf8' }));
}

describe('diversity measures', () => {
  it('Vendi of n identical rows is 1 and their mean cosine distance 0 (any positive scale)', () => {
    const seed = (Math.random() * 2 ** 31) | 0;
    const row = randn(12, seed);
    const scales = Array.from({ length: 7 }, (_, i) => 0.5 + i);
    const X = new Float32Array(scales.flatMap((s) => Array.from(row, (v) => v * s)));
    expect(vendiScore(X, 7, 12), `seed ${seed}`).toBeCloseTo(1, 9);
    expect(meanPairwiseCosineDistance(X, 7, 12)).toBeCloseTo(0, 6);
  });

  it('Vendi of n orthogonal rows is n and their mean cosine distance 1 (K ≤ D and K > D routes)', () => {
    const m = mulberry32((Math.random() * 2 ** 31) | 0);
    for (const [K, D] of [
      [5, 5],
      [4, 9],
    ]) {
      const X = new Float64Array(K * D);
      for (let i = 0; i < K; i++) X[i * D + i] = 0.1 + 3 * m(); // scaled axes: orthogonal, not unit
      expect(vendiScore(X, K, D)).toBeCloseTo(K, 9);
      expect(meanPairwiseCosineDistance(X, K, D)).toBeCloseTo(1, 12);
    }
    // Two equal groups of identical rows on two orthogonal axes: Vendi 2.
    const X = new Float64Array([1, 0, 2, 0, 0, 3, 0, 1]);
    expect(vendiScore(X, 4, 2)).toBeCloseTo(2, 9);
  });

  it('matches numpy eigvalsh on fresh random features, rows fewer and more than dims', () => {
    for (const [K, D] of [
      [8, 32],
      [40, 6],
      [16, 16],
    ]) {
      const seed = (Math.random() * 2 ** 31) | 0;
      const X = randn(K * D, seed);
      // Correlated rows (a shared direction) so the spectrum is uneven, not near-flat.
      for (let i = 0; i < K; i++) for (let d = 0; d < D; d++) X[i * D + d] += d % 3 === 0 ? 1.5 : 0;
      const ref = numpyReference(X, K, D);
      const v = vendiScore(X, K, D);
      expect(Math.abs(v - ref.vendi) / ref.vendi, `K ${K} D ${D} seed ${seed}`).toBeLessThan(1e-9);
      expect(Math.abs(meanPairwiseCosineDistance(X, K, D) - ref.mcd)).toBeLessThan(1e-12);
      expect(v).toBeGreaterThanOrEqual(1);
      expect(v).toBeLessThanOrEqual(Math.min(K, D) + 1e-9);
    }
  });

  it('refuses a shape that does not fit and non-finite features; single rows are defined', () => {
    expect(() => vendiScore(new Float32Array(10), 3, 4)).toThrow(/10 values are not 3 rows of 4/);
    expect(() => vendiScore(new Float32Array([1, Number.NaN]), 1, 2)).toThrow(/not finite/);
    expect(vendiScore(new Float32Array([1, 2]), 1, 2)).toBeCloseTo(1, 12);
    expect(meanPairwiseCosineDistance(new Float32Array([1, 2]), 1, 2)).toBeNaN();
  });
});
