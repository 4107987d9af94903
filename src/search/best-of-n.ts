/**
 * Random search / best-of-N (Ma et al.): draw N initial noises, sample each, keep the one the
 * verifier scores highest. N is as many trajectories as the budget pays for: trajectories are
 * drawn while another one fits. With an adaptive schedule a trajectory's steps are known only
 * once it ran: the first round is planned at the module's maximum of steps, later ones at the
 * most steps it took so far, and the budget's last trajectories may be capped at what is left
 * (see SearchRun.fitRollouts), so the search spends nearly all of its budget.
 */
import type { SearchConfig, SearchResult } from './types';
import { TensorScope } from '../tensor-scope';
import { max, mean, withRun } from './run';

export interface BestOfNOptions {
  /** Candidates scored per batch (default: all of them at once, split by the model's maxBatch). */
  batch?: number;
}

/** Default rows per round. */
const MAX_ROUND = 4096;

export function bestOfN(config: SearchConfig, options: BestOfNOptions = {}): Promise<SearchResult> {
  return withRun('best-of-n', config, async (run) => {
    run.require(run.rolloutCost(1, 0), run.trajectoryText);
    // Rounds of at most MAX_ROUND rows by default: one round of every trajectory the budget pays for
    // allocated all of them at once (a large budget: gigabytes of noise, or a V8 heap abort).
    const batch = Math.max(1, options.batch ?? MAX_ROUND);
    for (let round = 0; ; round++) {
      run.checkAbort();
      const { rows: n, maxSteps } = run.fitRollouts(batch);
      if (n === 0) break;
      using s = new TensorScope(); // this round's noise and samples
      const { x, ids } = s.track(await run.noise(n));
      const { rewards } = s.track(await run.rolloutAndScore(x, ids, 0, { maxSteps }));
      run.record({ round, mean: mean(rewards), population: n, sigma: 1, roundBest: max(rewards) });
    }
    return run.finish({ steps: run.steps });
  });
}
