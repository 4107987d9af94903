/**
 * Ensemble verifier (Ma et al.): each sample's score is the (weighted) mean over the verifiers of
 * its rank, so verifiers on different scales count alike.
 *
 * The paper ranks one batch of candidates. A search scores many batches and compares their
 * scores (the best-so-far, EvoSearch's elites, the zero-order pivot), and ranks within a batch
 * are not comparable across batches: a rank among 42 beats any rank among 21. So ranks are taken
 * against a fixed reference per verifier: its calibration set fixes the rank a score would have
 * among those scores r — the mid-rank #{r < s} + ½·#{r = s} + ½ — interpolated linearly between
 * them and extended linearly beyond them (with the mean slope over the reference), so that a
 * better score always maps higher, even past the best of the calibration set. After that a
 * sample's score is a function of its own verifier scores only: the same whatever batch, batch
 * size or order it comes in. When the first batch calibrates, in it the score is exactly the
 * paper's mean rank.
 *
 * A verifier calibrates once it has seen two distinct finite scores, from every finite score it
 * has seen so far: fewer give no scale (a first batch of one sample, of ties, or of NaN read as
 * −∞), and any slope chosen then would let the raw scale decide. Until then it ranks each score
 * among those it has seen — all ties, (n + 1)/2 — so it tells no samples apart and no raw scale
 * leaks in.
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
 * the slope used beyond the ends. Only finite scores calibrate (at least two distinct ones);
 * −∞ (nanAsNegInf) maps to −∞.
 */
export class RankMap {
  private readonly values: Float64Array;
  /** The mid-rank of each value in the reference. */
  private readonly levels: Float64Array;
  private readonly slope: number;

  constructor(reference: ArrayLike<number>) {
    const finite = Array.from(reference)
      .filter(Number.isFinite)
      .sort((a, b) => a - b);
    const n = finite.length;
    const values: number[] = [],
      levels: number[] = [];
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
    if (m < 2) throw new DiffusionSearchError('a rank map needs two distinct finite reference scores', 'ARGUMENT');
    this.slope = (levels[m - 1] - levels[0]) / (values[m - 1] - values[0]);
  }

  map(s: number): number {
    if (!Number.isFinite(s)) return s;
    const v = this.values,
      q = this.levels,
      m = v.length;
    if (s <= v[0]) return q[0] + (s - v[0]) * this.slope;
    if (s >= v[m - 1]) return q[m - 1] + (s - v[m - 1]) * this.slope;
    let lo = 0,
      hi = m - 1; // v[lo] < s < v[hi]
    while (hi - lo > 1) {
      const mid = (lo + hi) >> 1;
      if (v[mid] <= s) lo = mid;
      else hi = mid;
    }
    if (v[lo] === s) return q[lo];
    return q[lo] + ((s - v[lo]) / (v[hi] - v[lo])) * (q[hi] - q[lo]);
  }
}

/**
 * One verifier's calibration: until it has seen two distinct finite scores it keeps their one
 * value and count, and ranks a score among them; then its rank map, fixed from all of them.
 */
class Calibration {
  private map: RankMap | null = null;
  private value = NaN;
  private count = 0;

  get done(): boolean {
    return this.map !== null;
  }

  rank(scores: Float32Array): Float64Array {
    if (!this.map) {
      const finite = Array.from(scores).filter(Number.isFinite);
      const v = this.count ? this.value : finite[0];
      if (finite.some((s) => s !== v)) this.map = new RankMap(new Array<number>(this.count).fill(v).concat(finite));
      else [this.value, this.count] = [v, this.count + finite.length];
    }
    const map = this.map,
      tie = (this.count + 1) / 2;
    return Float64Array.from(scores, (s) => (!Number.isFinite(s) ? s : map ? map.map(s) : tie));
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
  /** One calibration per verifier. */
  private readonly calibrations: Calibration[];

  constructor(
    readonly verifiers: Verifier[],
    weights?: number[],
    private readonly options: EnsembleOptions = {},
  ) {
    if (verifiers.length === 0) throw new DiffusionSearchError('an ensemble needs at least one verifier', 'ARGUMENT');
    this.weights = weights ?? verifiers.map(() => 1);
    if (
      this.weights.length !== verifiers.length ||
      this.weights.some((w) => !(w >= 0)) ||
      this.weights.every((w) => w === 0)
    )
      throw new DiffusionSearchError(
        'ensemble weights: one non-negative weight per verifier, not all zero',
        'ARGUMENT',
      );
    this.name = `ensemble(${verifiers.map((v) => v.name).join(',')})`;
    this.needsMidPrediction = verifiers.some((v) => v.needsMidPrediction);
    this.needsCondition = verifiers.some((v) => v.needsCondition);
    this.calibrations = verifiers.map(() => new Calibration());
  }

  /** A fresh copy for one search: same verifiers (fresh too) and weights, not yet calibrated. */
  forSearch(options: EnsembleOptions = this.options): EnsembleVerifier {
    return new EnsembleVerifier(
      this.verifiers.map((v) => verifierForSearch(v, options)),
      this.weights,
      options,
    );
  }

  /** True once every verifier has fixed its rank map. */
  get calibrated(): boolean {
    return this.calibrations.every((c) => c.done);
  }

  async score(x0: NativeTensor, cond: ArrayLike<number>, extras?: ScoreExtras): Promise<Float32Array> {
    const n = x0.shape[0];
    const raw: Float32Array[] = [];
    for (const v of this.verifiers) {
      const s = Float32Array.from(await v.score(x0, cond, extras));
      if (s.length !== n)
        throw new DiffusionSearchError(`verifier '${v.name}' returned ${s.length} scores for ${n} samples`, 'SHAPE');
      // Before ranking: NaN would poison the sort and vanish into a rank.
      raw.push(checkScores(v.name, s, this.options.nanAsNegInf));
    }
    const rk = raw.map((s, v) => this.calibrations[v].rank(s));
    const total = this.weights.reduce((a, b) => a + b, 0);
    const out = new Float32Array(n);
    for (let i = 0; i < n; i++) {
      let acc = 0;
      for (let v = 0; v < raw.length; v++) if (this.weights[v] > 0) acc += (this.weights[v] * rk[v][i]) / total;
      out[i] = acc;
    }
    return out;
  }
}
