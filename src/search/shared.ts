/** Small pieces the search algorithms share: option checks, selection, stochastic steps. */
import { DiffusionSearchError } from '../errors';
import type { NativeTensor } from '../native';
import * as ops from '../ops';
import { TensorScope } from '../tensor-scope';
import type { SearchRun } from './run';
import type { SearchConfig } from './types';

type Tensor = NativeTensor;

/** An integer option in [min, max], or its default; an ARGUMENT error naming it otherwise. */
export function intOption(
  alg: string,
  name: string,
  value: number | undefined,
  def: number,
  min: number,
  max = Infinity,
): number {
  const v = value ?? def;
  if (v === Infinity && value === undefined) return v;
  if (!Number.isInteger(v) || v < min || v > max)
    throw new DiffusionSearchError(
      `${alg}: ${name} must be an integer ${max === Infinity ? `>= ${min}` : `in [${min}, ${max}]`}, got ${value}`,
      'ARGUMENT',
    );
  return v;
}

/** A finite number option in [min, max], or its default. */
export function numOption(
  alg: string,
  name: string,
  value: number | undefined,
  def: number,
  min = -Infinity,
  max = Infinity,
): number {
  const v = value ?? def;
  if (typeof v !== 'number' || !Number.isFinite(v) || v < min || v > max)
    throw new DiffusionSearchError(
      `${alg}: ${name} must be a finite number in [${min}, ${max}], got ${value}`,
      'ARGUMENT',
    );
  return v;
}

/** Indices of the k highest rewards, best first (ties to the lower index). */
export function topIndices(rewards: ArrayLike<number>, k: number): number[] {
  const idx = Array.from({ length: rewards.length }, (_, i) => i);
  idx.sort((a, b) => (rewards[b] > rewards[a] ? 1 : rewards[b] < rewards[a] ? -1 : a - b));
  return idx.slice(0, k);
}

/** Algorithms that score intermediate states cannot feed a verifier that needs the x̂0 at σ ≈ 0.4. */
export function rejectMidVerifier(run: SearchRun, alg: string): void {
  if (run.config.verifier.needsMidPrediction)
    throw new DiffusionSearchError(
      `${alg}: verifier '${run.config.verifier.name}' needs each trajectory's x̂0 at σ ≈ 0.4, which ${alg} does ` +
        'not keep; use it with best-of-n, zero-order or evosearch',
      'ARGUMENT',
    );
}

/**
 * Particle and beam search need the stochastic sampler (η > 0): copies of a state must be able to
 * diverge. They step every particle at one σ at a time (that is where they compare and resample),
 * so an adaptive schedule, whose module moves each sample deterministically to its own σ, does not apply.
 */
export function stochasticConfig(config: SearchConfig, alg: string): SearchConfig {
  if (config.adaptive)
    throw new DiffusionSearchError(
      `${alg}: steps all particles together with the stochastic sampler on a fixed schedule; the adaptive ` +
        'schedule does not apply: use a fixed one, or adaptive with best-of-n, zero-order, paths, evosearch, baseline',
      'ARGUMENT',
    );
  if (config.sampler !== undefined && config.sampler !== 'sde')
    throw new DiffusionSearchError(
      `${alg}: needs the stochastic sampler (sampler: 'sde'), got '${config.sampler}'`,
      'ARGUMENT',
    );
  const eta = config.eta ?? 1;
  if (!(Number.isFinite(eta) && eta > 0))
    throw new DiffusionSearchError(
      `${alg}: needs η > 0 (a deterministic step cannot tell copies of a state apart), got ${eta}`,
      'ARGUMENT',
    );
  return { ...config, sampler: 'sde', eta };
}

/** The DDIM-η step from predictions x̂0, ε̂ at σ_from to σ_to, with the noise of `ids` at `step`. */
export async function sdeFromPrediction(
  run: SearchRun,
  x0: Tensor,
  eps: Tensor,
  from: number,
  to: number,
  ids: number[],
  step: number,
): Promise<Tensor> {
  using s = new TensorScope();
  const o = { seed: run.seed, ids, step, stream: run.stream };
  const { x } = s.track(await ops.ddimStep(x0, eps, run.denoiser.path, from, to, run.config.eta ?? 1, o));
  return s.keep(x);
}

/**
 * The largest j in [lo, hi] whose plan cost(j) fits the budget, or null when cost(lo) does not.
 * cost must not decrease with j. Doubling, then bisection: a few dozen plans at most.
 */
export function largestFitting(
  cost: (j: number) => number,
  budget: number,
  lo = 1,
  hi = Math.max(lo, budget),
): number | null {
  if (cost(lo) > budget) return null;
  let good = lo,
    step = 1;
  while (good + step <= hi && cost(good + step) <= budget) {
    good += step;
    step *= 2;
  }
  let bad = Math.min(good + step, hi + 1); // cost(bad) > budget, or bad is past hi
  while (bad - good > 1) {
    const mid = Math.floor((good + bad) / 2);
    if (cost(mid) <= budget) good = mid;
    else bad = mid;
  }
  return good;
}

/**
 * Two sizes (p, q) scaled together, q ≥ 2 (one copy per parent would be no search):
 * j = 1, 2, 3, 4, … gives (1, 2), (2, 2), (2, 3), (3, 3), …; a size the user set stays fixed.
 */
export function pairSizes(p: number | undefined, q: number | undefined): (j: number) => [number, number] {
  if (p !== undefined && q !== undefined) return () => [p, q];
  if (p !== undefined) return (j) => [p, j + 1];
  if (q !== undefined) return (j) => [j, q];
  return (j) => [Math.floor(j / 2) + 1, Math.ceil(j / 2) + 1];
}
