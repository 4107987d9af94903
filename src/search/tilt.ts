/**
 * The options that change what a search returns: `alpha` (sample the tilted target p·exp(r/α)
 * instead of returning the best) and `diversity` (the diverse top-k). Which algorithms take α,
 * the checks a search makes when called directly (the request layer names flags or keys first),
 * and the pool a SearchRun keeps for either.
 */
import { DiffusionSearchError } from '../errors';
import type { Seed } from '../ops';
import { DiversePool, type Pool, TiltedDraws } from './pool';
import type { SearchConfig } from './types';

/**
 * Algorithms that sample p·exp(r/α) given α: particles (FK potentials with λ = 1/α and the final
 * correction that makes their product exp(r/α)) and best-of-n (importance resampling of its N
 * samples with weights exp(r/α); consistent as N → ∞). The others move towards the best sample
 * (greedy selection, elites, tournaments) and have no target to be consistent with.
 */
export const TILTED_ALGORITHMS: readonly string[] = ['particles', 'best-of-n'];

/** Why α does not apply to `algorithm` (null when it does), in words for any entrance. */
export function alphaRefusal(algorithm: string): string | null {
  if (TILTED_ALGORITHMS.includes(algorithm)) return null;
  return (
    `${algorithm} searches for the best sample and has no target temperature; α applies to ` +
    `${TILTED_ALGORITHMS.join(' and ')}, which sample p·exp(r/α)`
  );
}

/** The pool a search keeps for α or diversity (null for neither); ARGUMENT where they do not apply. */
export function candidatePool(algorithm: string, config: SearchConfig, keep: number, seed: Seed): Pool | null {
  const { alpha, diversity = 0 } = config;
  if (!(Number.isFinite(diversity) && diversity >= 0))
    throw new DiffusionSearchError(`diversity must be a finite number ≥ 0, got ${diversity}`, 'ARGUMENT');
  // One kept sample is the best whatever λ is: no pool, no feature passes.
  if (alpha === undefined)
    return diversity > 0 && keep > 1 ? new DiversePool(config.verifier, diversity, config.stream) : null;
  if (!(Number.isFinite(alpha) && alpha > 0))
    throw new DiffusionSearchError(`alpha must be a finite number > 0, got ${alpha}`, 'ARGUMENT');
  const why = alphaRefusal(algorithm);
  if (why) throw new DiffusionSearchError(`${algorithm}: alpha (--alpha / "alpha"): ${why}`, 'ARGUMENT');
  if (diversity > 0)
    throw new DiffusionSearchError(
      'alpha and diversity do not go together: α draws samples from the tilted target, diversity picks them; ' +
        'drop one (--alpha / "alpha", --diversity / "diversity")',
      'ARGUMENT',
    );
  return new TiltedDraws(alpha, keep, seed, config.stream);
}
