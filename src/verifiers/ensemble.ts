/**
 * Ensemble verifier (Ma et al.): each sample's score is the (weighted) mean over the verifiers of
 * its rank, so verifiers on different scales count alike.
 *
 * The paper ranks one batch of candidates. A search scores many batches and compares their
 * scores (the best-so-far, EvoSearch's elites, the zero-order pivot), and ranks within a batch
 * are not comparable across batches: a rank among 42 beats any rank among 21. So ranks are taken
 * against a fixed reference: the first batch an ensemble scores (its calibration batch) fixes,
 * per verifier, the rank a score would have among that batch's scores r — the mid-rank
 * #{r < s} + ½·#{r = s} + ½ — interpolated linearly between them and extended linearly beyond
 * them (with the mean slope over the reference), so that a better score always maps higher, even
 * past the best of the calibration batch. After that a sample's score is a function of its own
 * verifier scores only: the same whatever batch, batch size or order it comes in. In the
 * calibration batch itself it is exactly the paper's mean rank.
 *
 * Each search gets a fresh, uncalibrated copy (`forSearch`, called by SearchRun). Why not
 * re-rank against everything scored so far: earlier scores would change as later ones arrive,
 * and the archive, elites and pivots would hold stale values.
 */
import { DiffusionSearchError } from '../errors';
import type { NativeTensor } from '../native';
import { checkScores, type ScoreExtras, type Verifier } from './verifier';

/** Mid-ranks (1 = lowest; ties share their mean rank). */
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

/**
 * The calibrated rank map of one verifier: knots (distinct reference scores, their F values) and
 * the slope used beyond the ends. Only finite scores calibrate; −∞ (nanAsNegInf) maps to −∞.
 */
export class RankMap {
  private readonly values: Float64Array;
  /** The mid-rank of each value in the reference. */
  private readonly levels: Float64Array;
  private readonly slope: number;

  constructor(reference: ArrayLike<number>) {
    const finite = Array.from(reference).filter(Number.isFinite).sort((a, b) => a - b);
    const n = finite.length;
    const values: number[] = [], levels: number[] = [];
    for (let i = 0; i < n; ) {
      let j = i;
      while (j + 1 < n && finite[j + 1] === finite[i]) j++;
      values.push(finite[i]);
      levels.push(i + (j - i + 1) / 2 + 0.5); // mid-rank: #below + ½·#equal + ½
      i = j + 1;
    }
    this.values = Float64Array.from(values);
    this.levels = Float64Array.from(levels);
    const m = values.length;
    // A reference without spread gives no scale: one rank per raw unit beyond it.
    this.slope = m >= 2 ? (levels[m - 1] - levels[0]) / (values[m - 1] - values[0]) : 1;
  }

  map(s: number): number {
    if (!Number.isFinite(s)) return s;
    const v = this.values, q = this.levels, m = v.length;
    if (m === 0) return s;
    if (s <= v[0]) return q[0] + (s - v[0]) * this.slope;
    if (s >= v[m - 1]) return q[m - 1] + (s - v[m - 1]) * this.slope;
    let lo = 0, hi = m - 1; // v[lo] < s < v[hi]
    while (hi - lo > 1) {
      const mid = (lo + hi) >> 1;
      if (v[mid] <= s) lo = mid;
      else hi = mid;
    }
    if (v[lo] === s) return q[lo];
    return q[lo] + ((s - v[lo]) / (v[hi] - v[lo])) * (q[hi] - q[lo]);
  }
}

export interface EnsembleOptions {
  /** Treat a member's NaN/∞ scores as −∞ instead of failing (SearchConfig.nanAsNegInf). */
  nanAsNegInf?: boolean;
}

/** A verifier with per-search state hands each search a fresh copy of itself. */
export function verifierForSearch(v: Verifier, options: EnsembleOptions = {}): Verifier {
  const f = (v as Verifier & { forSearch?: (o: EnsembleOptions) => Verifier }).forSearch;
  return typeof f === 'function' ? f.call(v, options) : v;
}

export class EnsembleVerifier implements Verifier {
  readonly name: string;
  readonly needsMidPrediction: boolean;
  readonly needsCondition: boolean;
  private readonly weights: number[];
  /** One map per verifier, fixed by the first batch scored. */
  private maps: RankMap[] | null = null;

  constructor(
    readonly verifiers: Verifier[],
    weights?: number[],
    private readonly options: EnsembleOptions = {},
  ) {
    if (verifiers.length === 0) throw new DiffusionSearchError('an ensemble needs at least one verifier', 'ARGUMENT');
    this.weights = weights ?? verifiers.map(() => 1);
    if (this.weights.length !== verifiers.length || this.weights.some((w) => !(w >= 0)) || this.weights.every((w) => w === 0))
      throw new DiffusionSearchError('ensemble weights: one non-negative weight per verifier, not all zero', 'ARGUMENT');
    this.name = `ensemble(${verifiers.map((v) => v.name).join(',')})`;
    this.needsMidPrediction = verifiers.some((v) => v.needsMidPrediction);
    this.needsCondition = verifiers.some((v) => v.needsCondition);
  }

  /** A fresh copy for one search: same verifiers (fresh too) and weights, not yet calibrated. */
  forSearch(options: EnsembleOptions = this.options): EnsembleVerifier {
    return new EnsembleVerifier(this.verifiers.map((v) => verifierForSearch(v, options)), this.weights, options);
  }

  /** True once the first batch has fixed the rank maps. */
  get calibrated(): boolean {
    return this.maps !== null;
  }

  async score(x0: NativeTensor, cond: ArrayLike<number>, extras?: ScoreExtras): Promise<Float32Array> {
    const n = x0.shape[0];
    const raw: Float32Array[] = [];
    for (const v of this.verifiers) {
      const s = Float32Array.from(await v.score(x0, cond, extras));
      if (s.length !== n) throw new DiffusionSearchError(`verifier '${v.name}' returned ${s.length} scores for ${n} samples`, 'SHAPE');
      // Before ranking: NaN would poison the sort and vanish into a rank.
      raw.push(checkScores(v.name, s, this.options.nanAsNegInf));
    }
    this.maps ??= raw.map((s) => new RankMap(s));
    const total = this.weights.reduce((a, b) => a + b, 0);
    const out = new Float32Array(n);
    for (let i = 0; i < n; i++) {
      let acc = 0;
      for (let v = 0; v < raw.length; v++) if (this.weights[v] > 0) acc += (this.weights[v] * this.maps[v].map(raw[v][i])) / total;
      out[i] = acc;
    }
    return out;
  }
}
