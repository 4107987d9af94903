/**
 * Diverse top-k by greedy maximal marginal relevance (MMR): the first pick is the best reward; each
 * next one maximises z_i − λ · max_{j kept} cos(f_i, f_j), where z is the reward standardised over
 * the candidates (so λ is in standard deviations of reward per unit of cosine similarity, the same
 * for any verifier's scale). Greedy MMR rather than a DPP: it is deterministic, O(N·K·D), keeps
 * the best sample first, and λ reads as a price of similarity in reward; a DPP's MAP is NP-hard
 * (its greedy version needs a PSD quality-weighted kernel and has no such trade-off knob).
 */
import { DiffusionSearchError } from '../errors';
import { unitRows } from '../eval/diversity';

/** Rewards standardised over the finite ones (−∞ stays −∞; all equal: 0). */
export function standardise(rewards: ArrayLike<number>): Float64Array {
  const finite = Array.from(rewards).filter(Number.isFinite);
  const m = finite.reduce((s, r) => s + r, 0) / Math.max(1, finite.length);
  const sd = Math.sqrt(finite.reduce((s, r) => s + (r - m) ** 2, 0) / Math.max(1, finite.length));
  return Float64Array.from(rewards, (r) => (!Number.isFinite(r) ? -Infinity : sd > 0 ? (r - m) / sd : 0));
}

/**
 * Indices of k candidates (rows of `features`, [N, D]) in the order greedy MMR picks them; ties go
 * to the lower index. λ = 0 gives the top-k by reward.
 */
export function mmrSelect(
  rewards: ArrayLike<number>,
  features: ArrayLike<number>,
  D: number,
  k: number,
  lambda: number,
): number[] {
  const N = rewards.length;
  if (!(lambda >= 0 && Number.isFinite(lambda)))
    throw new DiffusionSearchError(`diversity must be a finite number ≥ 0, got ${lambda}`, 'ARGUMENT');
  const u = unitRows(features, N, D);
  const z = standardise(rewards);
  const maxSim = new Float64Array(N).fill(-Infinity); // none kept yet: no penalty on the first pick
  const taken = new Uint8Array(N);
  const out: number[] = [];
  while (out.length < Math.min(k, N)) {
    let best = -1,
      bestScore = -Infinity;
    for (let i = 0; i < N; i++) {
      if (taken[i]) continue;
      const score = out.length === 0 ? z[i] : z[i] - lambda * maxSim[i];
      if (best < 0 || score > bestScore) (best = i), (bestScore = score);
    }
    out.push(best);
    taken[best] = 1;
    for (let i = 0; i < N; i++) {
      if (taken[i]) continue;
      let dot = 0;
      for (let d = 0; d < D; d++) dot += u[i * D + d] * u[best * D + d];
      if (dot > maxSim[i]) maxSim[i] = dot;
    }
  }
  return out;
}
