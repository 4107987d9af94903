/**
 * Baseline: plain sampling, one trajectory. With `scaleSteps`, the budget buys denoising steps
 * instead of search (the "scaling denoising steps" axis of Ma et al.). With an adaptive schedule
 * the Time Prediction Module chooses the steps (the budget must pay for its maximum of steps).
 */
import { DiffusionSearchError } from '../errors';
import { uniform } from '../schedules';
import { TensorScope } from '../tensor-scope';
import type { SearchConfig, SearchResult } from './types';
import { withRun } from './run';

export interface BaselineOptions {
  /** Spend the whole budget on steps of a uniform schedule. */
  scaleSteps?: boolean;
}

export function baseline(config: SearchConfig, options: BaselineOptions = {}): Promise<SearchResult> {
  if (options.scaleSteps && config.adaptive)
    throw new DiffusionSearchError(
      'baseline: scaleSteps spends the budget on a uniform schedule; with the adaptive schedule the module chooses ' +
        'the steps: use one or the other',
      'ARGUMENT',
    );
  const perStep = config.denoiser.cost(1, config.guidance ?? 1) * (config.sampler === 'heun' ? 2 : 1);
  const sigmas = options.scaleSteps ? uniform(Math.max(1, Math.floor(config.budget / perStep))) : config.sigmas;
  return withRun('baseline', { ...config, sigmas }, async (run) => {
    run.require(run.rolloutCost(1, 0), run.trajectoryText);
    using s = new TensorScope();
    const { x, ids } = s.track(await run.noise(1));
    const { rewards } = s.track(await run.rolloutAndScore(x, ids, 0));
    run.record({ round: 0, mean: rewards[0], population: 1, sigma: 1 });
    return run.finish({ steps: run.steps });
  });
}
