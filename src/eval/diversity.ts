/**
 * Diversity of a set of samples from their features (rows of a [K, D] matrix), in float64:
 * the mean pairwise cosine distance and the Vendi score (Friedman & Dieng) with the cosine kernel.
 */
import { DiffusionSearchError } from '../errors';
import { symmetricEigen } from './linalg';

/** Unit rows (float64). A zero row stays zero: it is alike to nothing, itself included. */
export function unitRows(features: ArrayLike<number>, K: number, D: number): Float64Array {
  if (K < 0 || D < 1 || features.length !== K * D)
    throw new DiffusionSearchError(`diversity: ${features.length} values are not ${K} rows of ${D}`, 'SHAPE');
  const u = new Float64Array(K * D);
  for (let i = 0; i < K; i++) {
    let s = 0;
    for (let d = 0; d < D; d++) s += Number(features[i * D + d]) ** 2;
    if (!Number.isFinite(s))
      throw new DiffusionSearchError(`diversity: row ${i} of the features is not finite`, 'ARGUMENT');
    const inv = s > 0 ? 1 / Math.sqrt(s) : 0;
    for (let d = 0; d < D; d++) u[i * D + d] = Number(features[i * D + d]) * inv;
  }
  return u;
}

/** The K×K cosine-similarity matrix of the rows (diagonal 1). */
export function cosineSimilarity(features: ArrayLike<number>, K: number, D: number): Float64Array {
  const u = unitRows(features, K, D);
  const S = new Float64Array(K * K);
  for (let i = 0; i < K; i++) {
    S[i * K + i] = 1;
    for (let j = i + 1; j < K; j++) {
      let dot = 0;
      for (let d = 0; d < D; d++) dot += u[i * D + d] * u[j * D + d];
      S[i * K + j] = S[j * K + i] = dot;
    }
  }
  return S;
}

/** Mean over pairs i < j of 1 − cos(x_i, x_j); NaN for fewer than two rows. */
export function meanPairwiseCosineDistance(features: ArrayLike<number>, K: number, D: number): number {
  if (K < 2) return Number.NaN;
  const S = cosineSimilarity(features, K, D);
  let sum = 0;
  for (let i = 0; i < K; i++) for (let j = i + 1; j < K; j++) sum += 1 - S[i * K + j];
  return sum / ((K * (K - 1)) / 2);
}

/**
 * Vendi score: exp(−Σ λ log λ) over the eigenvalues λ of S/K, S the cosine-similarity matrix.
 * 1 for K identical rows, K for K orthogonal ones; NaN for no rows. The eigenvalues come from the
 * smaller of the K×K similarity and the D×D Gram matrix of the unit rows (same non-zero spectrum);
 * a zero row counts as alike only to itself (S_ii = 1), so it takes the K×K route.
 */
export function vendiScore(features: ArrayLike<number>, K: number, D: number): number {
  if (K < 1) return Number.NaN;
  const u = unitRows(features, K, D);
  const zeroRow = Array.from({ length: K }, (_, i) => rowNorm2(u, i, D) === 0);
  const small = K <= D || zeroRow.some(Boolean);
  const n = small ? K : D;
  const G = small ? gramOfRows(u, K, D) : gramOfColumns(u, K, D);
  if (small) for (let i = 0; i < K; i++) G[i * n + i] = 1;
  const { values } = symmetricEigen(G, n);
  let h = 0;
  for (const v of values) {
    const l = v / K;
    if (l > 1e-15) h -= l * Math.log(l);
  }
  return Math.exp(h);
}

function rowNorm2(u: Float64Array, i: number, D: number): number {
  let s = 0;
  for (let d = 0; d < D; d++) s += u[i * D + d] ** 2;
  return s;
}

function gramOfRows(u: Float64Array, K: number, D: number): Float64Array {
  const G = new Float64Array(K * K);
  for (let i = 0; i < K; i++)
    for (let j = i; j < K; j++) {
      let dot = 0;
      for (let d = 0; d < D; d++) dot += u[i * D + d] * u[j * D + d];
      G[i * K + j] = G[j * K + i] = dot;
    }
  return G;
}

function gramOfColumns(u: Float64Array, K: number, D: number): Float64Array {
  const G = new Float64Array(D * D);
  for (let i = 0; i < K; i++)
    for (let a = 0; a < D; a++) {
      const ua = u[i * D + a];
      if (ua === 0) continue;
      for (let b = a; b < D; b++) G[a * D + b] += ua * u[i * D + b];
    }
  for (let a = 0; a < D; a++) for (let b = 0; b < a; b++) G[a * D + b] = G[b * D + a];
  return G;
}

/** Both measures of one set, as reports carry them (null where undefined). */
export interface Diversity {
  /** Mean pairwise cosine distance, null for fewer than two samples. */
  mean_cosine_distance: number | null;
  /** Vendi score with the cosine kernel (1 … number of samples). */
  vendi: number | null;
  /** Where the features came from: the eval model's name, or 'samples' for the raw coordinates. */
  space: string;
}

export function diversityOf(features: ArrayLike<number>, K: number, D: number, space: string): Diversity {
  const finite = (x: number) => (Number.isFinite(x) ? x : null);
  return {
    mean_cosine_distance: finite(meanPairwiseCosineDistance(features, K, D)),
    vendi: finite(vendiScore(features, K, D)),
    space,
  };
}
