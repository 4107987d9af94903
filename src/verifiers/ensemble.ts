/**
 * Ensemble verifier (Ma et al.): each sample's score is the (weighted) mean of its rank across
 * the verifiers, so verifiers on different scales count alike. Rank 1 = worst of the batch;
 * ties share their mean rank.
 */
import { DiffusionSearchError } from '../errors';
import type { NativeTensor } from '../native';
import type { ScoreExtras, Verifier } from './verifier';

export function ranks(scores: ArrayLike<number>): Float64Array {
  const n = scores.length;
  const order = Array.from({ length: n }, (_, i) => i).sort((a, b) => scores[a] - scores[b]);
  const r = new Float64Array(n);
  for (let i = 0; i < n; ) {
    let j = i;
    while (j + 1 < n && scores[order[j + 1]] === scores[order[i]]) j++;
    const mean = (i + j) / 2 + 1;
    for (let k = i; k <= j; k++) r[order[k]] = mean;
    i = j + 1;
  }
  return r;
}

export class EnsembleVerifier implements Verifier {
  readonly name: string;
  readonly needsMidPrediction: boolean;
  private readonly weights: number[];

  constructor(
    readonly verifiers: Verifier[],
    weights?: number[],
  ) {
    if (verifiers.length === 0) throw new DiffusionSearchError('an ensemble needs at least one verifier', 'ARGUMENT');
    this.weights = weights ?? verifiers.map(() => 1);
    if (this.weights.length !== verifiers.length || this.weights.some((w) => !(w >= 0)) || this.weights.every((w) => w === 0))
      throw new DiffusionSearchError('ensemble weights: one non-negative weight per verifier, not all zero', 'ARGUMENT');
    this.name = `ensemble(${verifiers.map((v) => v.name).join(',')})`;
    this.needsMidPrediction = verifiers.some((v) => v.needsMidPrediction);
  }

  async score(x0: NativeTensor, cond: ArrayLike<number>, extras?: ScoreExtras): Promise<Float32Array> {
    const n = x0.shape[0];
    const total = this.weights.reduce((a, b) => a + b, 0);
    const out = new Float32Array(n);
    for (let v = 0; v < this.verifiers.length; v++) {
      const r = ranks(await this.verifiers[v].score(x0, cond, extras));
      for (let i = 0; i < n; i++) out[i] += (this.weights[v] * r[i]) / total;
    }
    return out;
  }
}
