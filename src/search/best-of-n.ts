/**
 * Random search / best-of-N (Ma et al.): draw N initial noises, sample each, keep the one the
 * verifier scores highest. N is as many trajectories as the budget pays for.
 */
import type { SearchConfig, SearchResult } from './types';
import { max, mean, withRun } from './run';

export interface BestOfNOptions {
  /** Candidates scored per batch (default: all of them at once, split by the model's maxBatch). */
  batch?: number;
}

/** Default rows per round. */
const MAX_ROUND = 4096;

export function bestOfN(config: SearchConfig, options: BestOfNOptions = {}): Promise<SearchResult> {
  return withRun('best-of-n', config, async (run) => {
    const per = run.rolloutCost(1, 0);
    run.require(per, `one trajectory of ${run.steps} steps`);
    const total = Math.floor(run.budget.total / per);
    // Rounds of at most MAX_ROUND rows by default: one round of every trajectory the budget pays for
    // allocated all of them at once (a large budget: gigabytes of noise, or a V8 heap abort).
    const batch = Math.max(1, Math.min(options.batch ?? MAX_ROUND, total));
    for (let round = 0, done = 0; done < total; round++) {
      const n = Math.min(batch, total - done);
      const { x, ids } = await run.noise(n);
      const { rewards, final } = await run.rolloutAndScore(x, ids, 0);
      x.dispose();
      final.dispose();
      done += n;
      run.record({ round, mean: mean(rewards), population: n, sigma: 1, roundBest: max(rewards) });
    }
    return run.finish({ steps: run.steps });
  });
}
