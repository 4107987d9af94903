/**
 * Particle sampling / Feynman–Kac steering (Singhal et al., "A general framework for inference-time
 * scaling and steering of diffusion models", arXiv 2501.06848):
 *   K particles follow the stochastic (DDIM-η) sampler. Every `interval` steps the verifier scores
 *   each particle's x̂0 prediction r_t and multiplies its weight by the potential
 *     max:  G_t = exp(λ·max_{s ≥ t} r_s)   (the best reward on the particle's path so far)
 *     add:  G_t = exp(λ·Σ_{s ≥ t} r_s)
 *     diff: G_t = exp(λ·(r_t − r_prev))   (r_prev = 0 before the first scoring step)
 *   and, when the effective sample size of the weights falls below threshold·K, resamples the
 *   particles (systematic or multinomial), after which the weights are uniform again. With the
 *   default threshold 1 this is "resample at every scoring step" (FK steering's default).
 *   The final particles are scored; the best is the result.
 * With a target temperature α (config.alpha) the search samples p·exp(r/α) instead: λ = 1/α, the
 * potential defaults to 'diff', and the final scoring multiplies each weight by
 * exp(λ·r_final − Σ log G_t along the particle's ancestral path), so that whatever the potential
 * the product of all potentials of a path is exp(r/α) (for 'diff' the correction is its own next
 * term, λ·(r_final − r_prev)). The result is K draws from the final weighted particles of all runs,
 * each run's weights scaled by its estimate of the normalising constant, Π_t Σ_p W̄_p·G_t,p.
 * A particle's x̂0 is the denoiser's prediction that its next step uses anyway, so steering costs
 * verifier calls, not NFE: one run costs K NFE per step. Unset, K is as many particles (≥ 2) as
 * the budget pays for, as FK steering scales. The budget left after one run pays for further
 * independent runs while a whole one fits (more budget never loses). Every particle steps at the
 * same σ, so an adaptive schedule does not apply (ARGUMENT, see stochasticConfig).
 */
import { DiffusionSearchError } from '../errors';
import * as ops from '../ops';
import { floatTensor, gather } from '../tensor-ops';
import { TensorScope } from '../tensor-scope';
import { intOption, largestFitting, numOption, rejectMidVerifier, sdeFromPrediction, stochasticConfig } from './shared';
import { max, mean, type SearchRun, withRun } from './run';
import type { SearchConfig, SearchResult } from './types';

export type Potential = 'max' | 'add' | 'diff';

export interface ParticleOptions {
  /** K, the number of particles (default: as many as the budget pays for, at least 2). */
  particles?: number;
  /** The potential (default 'max'). */
  potential?: Potential;
  /** λ, the inverse temperature of the potential (default 10, ≥ 0; 0 = no steering). */
  lambda?: number;
  /** Steps between reward evaluations (default 1: at every step after the first). */
  interval?: number;
  /** Resample when ESS < threshold·K (default 1: whenever the weights differ; 0 = never), in [0, 1]. */
  threshold?: number;
  /** Resampling scheme (default 'systematic'). */
  resampling?: 'systematic' | 'multinomial';
  /** Independent runs at most (default: as many as the budget pays for, at least one). */
  runs?: number;
}

export async function particleSampling(config: SearchConfig, options: ParticleOptions = {}): Promise<SearchResult> {
  const alg = 'particles';
  return withRun(alg, stochasticConfig(config, alg), async (run) => {
    const o = particleSettings(alg, options, config.alpha);
    rejectMidVerifier(run, alg);
    const K = o.fixedK ?? largestFitting((k) => run.rolloutCost(k, 0), run.budget.total, 2) ?? 2;
    const cost = run.rolloutCost(K, 0);
    run.require(cost, `${K} particles over ${run.steps} steps`);
    const rounds = { next: 0 };
    for (let index = 0; index < o.maxRuns && run.budget.canAfford(cost); index++) {
      run.checkAbort();
      await particleRun(run, o, K, index, rounds);
    }
    return run.finish({ steps: run.steps });
  });
}

type ParticleSettings = ReturnType<typeof particleSettings>;

/** The options checked, defaults filled (ARGUMENT naming the option otherwise). */
function particleSettings(alg: string, options: ParticleOptions, alpha?: number) {
  const fixedK = options.particles === undefined ? undefined : intOption(alg, 'particles (K)', options.particles, 1, 1);
  if (alpha !== undefined && options.lambda !== undefined)
    throw new DiffusionSearchError(`${alg}: give alpha or lambda, not both: with α, λ = 1/α`, 'ARGUMENT');
  const potential = options.potential ?? (alpha === undefined ? 'max' : 'diff');
  if (!['max', 'add', 'diff'].includes(potential))
    throw new DiffusionSearchError(
      `${alg}: potential must be 'max', 'add' or 'diff', got '${String(potential)}'`,
      'ARGUMENT',
    );
  const lambda = alpha === undefined ? numOption(alg, 'lambda', options.lambda, 10, 0) : 1 / alpha;
  const interval = intOption(alg, 'interval (steps)', options.interval, 1, 1);
  const threshold = numOption(alg, 'threshold (ESS fraction)', options.threshold, 1, 0, 1);
  const method = options.resampling ?? 'systematic';
  if (method !== 'systematic' && method !== 'multinomial')
    throw new DiffusionSearchError(
      `${alg}: resampling must be 'systematic' or 'multinomial', got '${String(method)}'`,
      'ARGUMENT',
    );
  const maxRuns = intOption(alg, 'runs', options.runs, Infinity, 1);
  return { fixedK, potential, lambda, interval, threshold, method, maxRuns, tilted: alpha !== undefined };
}

/**
 * Per particle: last reward, best and sum of its path's rewards, log-weight since the last
 * resampling, and Σ log G along its ancestral path (cum). logZ: the run's log normalising constant.
 */
export interface Weights {
  prev: Float64Array;
  best: Float64Array;
  sum: Float64Array;
  cum: Float64Array;
  logW: Float64Array;
  logZ: number;
}

export function newWeights(K: number): Weights {
  const z = () => new Float64Array(K);
  return { prev: z(), best: z().fill(-Infinity), sum: z(), cum: z(), logW: z(), logZ: 0 };
}

/**
 * One run of K particles over every step: a DDIM-η step from each particle's x̂0, and at every
 * scoring step (each `interval`, not the first or the last) the steering: score x̂0, reweight,
 * resample when the ESS is low. The final particles are scored.
 */
async function particleRun(run: SearchRun, o: ParticleSettings, K: number, index: number, rounds: { next: number }) {
  const S = run.steps;
  using s = new TensorScope(); // this run's particles
  let { x, ids } = s.track(await run.noise(K));
  const w = newWeights(K);
  for (let i = 0; i < S; i++) {
    run.checkAbort();
    using t = new TensorScope(); // this step's predictions
    let { x0, eps } = t.track(await run.predict(x, run.sigmas[i]));
    if (i > 0 && i < S - 1 && i % o.interval === 0) {
      // (The last step lands on σ = 0 deterministically: its x̂0 is the final sample, scored below.)
      const r = await run.scorePredictions(x0);
      reweight(w, r, o.potential, o.lambda);
      const { ess, idx } = await resampleIndices(run, w.logW, o, index * S + i, t);
      if (idx) {
        x0 = t.replace(x0, await gather(x0, idx, run.stream));
        eps = t.replace(eps, await gather(eps, idx, run.stream));
        [w.prev, w.best, w.sum, w.cum] = [w.prev, w.best, w.sum, w.cum].map((a) => Float64Array.from(idx, (j) => a[j]));
        w.logW = new Float64Array(K);
        ids = run.ids(K); // copies of a particle must draw different noise from here on
      }
      const record = { round: rounds.next++, run: index, sigma: run.sigmas[i], population: K };
      run.record({ ...record, mean: mean(r), roundBest: max(r), ess, resampled: idx !== null });
    }
    x = s.replace(x, await sdeFromPrediction(run, x0, eps, run.sigmas[i], run.sigmas[i + 1], ids, 1000 + i));
  }
  const weigh = o.tilted ? (r: Float32Array) => finalLogWeights(w, r, o.lambda) : undefined;
  const rewards = await run.score(x, undefined, undefined, weigh);
  run.record({
    round: rounds.next++,
    run: index,
    sigma: 0,
    population: K,
    mean: mean(rewards),
    roundBest: max(rewards),
  });
}

/** Multiplies each weight by the potential G of its rewards r (in log space, shifted so the top is 0). */
export function reweight(w: Weights, r: ArrayLike<number>, potential: Potential, lambda: number): void {
  const inc = new Float64Array(w.logW.length);
  for (let p = 0; p < w.logW.length; p++) {
    w.best[p] = Math.max(w.best[p], r[p]);
    w.sum[p] += r[p];
    const g = potential === 'max' ? w.best[p] : potential === 'add' ? w.sum[p] : r[p] - w.prev[p];
    inc[p] = lambda * g;
    w.prev[p] = r[p];
  }
  multiply(w, inc);
}

/** Multiplies the weights by exp(inc): the path sums, the normalising constant, then a shift so the top is 0. */
function multiply(w: Weights, inc: Float64Array): void {
  const before = logSumExp(w.logW);
  for (let p = 0; p < w.logW.length; p++) {
    w.cum[p] += inc[p];
    w.logW[p] += inc[p];
  }
  w.logZ += logSumExp(w.logW) - before;
  const top = max(w.logW); // weights are relative: keep the log-weights near 0
  if (Number.isFinite(top)) for (let p = 0; p < w.logW.length; p++) w.logW[p] -= top;
}

/**
 * The tilted target's last potential, exp(λ·r_final − cum): with it the potentials of every path
 * multiply to exp(λ·r_final). Returns each final particle's log-weight among all runs' particles:
 * log Ẑ of its run plus its normalised log-weight.
 */
export function finalLogWeights(w: Weights, r: ArrayLike<number>, lambda: number): Float64Array {
  multiply(
    w,
    Float64Array.from(w.cum, (c, p) => lambda * r[p] - c),
  );
  const norm = logSumExp(w.logW);
  return Float64Array.from(w.logW, (l) => w.logZ + l - norm);
}

function logSumExp(xs: Float64Array): number {
  const m = max(xs);
  if (!Number.isFinite(m)) return m;
  let s = 0;
  for (const x of xs) s += Math.exp(x - m);
  return m + Math.log(s);
}

/** The effective sample size of the weights, and the resampled particle indices when it is below threshold·K. */
async function resampleIndices(
  run: SearchRun,
  logW: Float64Array,
  o: ParticleSettings,
  step: number,
  t: TensorScope,
): Promise<{ ess: number; idx: number[] | null }> {
  const K = logW.length;
  if (!(o.threshold > 0)) return { ess: K, idx: null };
  const w = t.track(floatTensor(logW, run.denoiser.device));
  const res = t.track(await ops.resample(w, K, { method: o.method, seed: run.seed, step, stream: run.stream }));
  if (!(res.ess < o.threshold * K)) return { ess: res.ess, idx: null };
  return { ess: res.ess, idx: Array.from((await res.indices.toArray(run.stream)) as BigInt64Array, Number) };
}
