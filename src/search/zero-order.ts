/**
 * Zero-order search (Ma et al., arXiv 2501.09732, §4):
 *   1. draw a random pivot noise n (and sample and score it);
 *   2. draw N neighbours of n on its sphere at cosine τ (same norm, cos(neighbour, n) = τ);
 *   3. sample and score them; if the best beats the pivot it becomes the pivot, otherwise the
 *      search restarts from a fresh random pivot (a local optimum was reached); go to 2.
 * Rounds repeat while the budget pays for them; the last one takes as many neighbours as the
 * budget still pays for (a prefix of the round a larger budget would run, so more budget never
 * loses). A fresh pivot is sampled in the same batch as its first neighbours. With an adaptive
 * schedule, rounds after the first are planned at the most steps the module took so far
 * (SearchRun.fitRollouts).
 */
import { DiffusionSearchError } from '../errors';
import type { NativeTensor } from '../native';
import * as ops from '../ops';
import { cat, gather, slice } from '../tensor-ops';
import { TensorScope } from '../tensor-scope';
import { intOption, numOption } from './shared';
import { max, mean, withRun } from './run';
import type { SearchConfig, SearchResult } from './types';

type Tensor = NativeTensor;

export interface ZeroOrderOptions {
  /** Neighbours per round (N, default 4). */
  n?: number;
  /**
   * Cosine between the pivot and each neighbour, in (−1, 1) (default 0.95: a small step; in d
   * dimensions two independent noises have cosine ≈ 0, so 0.95 stays close to the pivot).
   */
  tau?: number;
  /** Rounds at most (default: as many as the budget pays for). */
  rounds?: number;
}

/** Step counter of the neighbour draws (neighbour ids are fresh, so a constant will do). */
const NEIGHBOUR_STEP = 1;

export function zeroOrder(config: SearchConfig, options: ZeroOrderOptions = {}): Promise<SearchResult> {
  return withRun('zero-order', config, async (run) => {
    const alg = 'zero-order';
    const n = intOption(alg, 'n (neighbours)', options.n, 4, 1);
    const tau = numOption(alg, 'tau (cosine)', options.tau, 0.95);
    if (!(tau > -1 && tau < 1))
      throw new DiffusionSearchError(`${alg}: tau (cosine) must lie in (−1, 1), got ${tau}`, 'ARGUMENT');
    const maxRounds = intOption(alg, 'rounds', options.rounds, Infinity, 1);
    run.require(run.rolloutCost(2, 0), 'a pivot and one neighbour');

    using s = new TensorScope(); // the pivot, carried from round to round
    let pivot: { x: Tensor; id: number; reward: number | null } | null = null;
    for (let round = 0; round < maxRounds; round++) {
      run.checkAbort();
      const fresh: boolean = pivot === null || pivot.reward === null;
      // As many neighbours as the budget still pays for (with the pivot when it is new).
      const fit = run.fitRollouts(n + (fresh ? 1 : 0), fresh ? 2 : 1);
      const k = fit.rows - (fresh ? 1 : 0);
      if (k <= 0) break;
      if (!pivot) {
        const p = s.track(await run.noise(1));
        pivot = { x: p.x, id: p.ids[0], reward: null };
      }
      using t = new TensorScope(); // this round's neighbours
      const nbIds = run.ids(n).slice(0, k); // always n ids: the rounds do not depend on the budget
      const reps: Tensor = await t.track(gather(pivot.x, new Array(k).fill(0), run.stream));
      const o = { seed: run.seed, ids: nbIds, step: NEIGHBOUR_STEP, stream: run.stream };
      const nb: Tensor = await t.track(ops.sphereNeighbours(reps, tau, o));
      const batch: Tensor = fresh ? await t.track(cat([pivot.x, nb], run.stream)) : nb;
      const ids: number[] = fresh ? [pivot.id, ...nbIds] : nbIds;
      const { rewards } = t.track(await run.rolloutAndScore(batch, ids, 0, { maxSteps: fit.maxSteps }));
      if (fresh) pivot.reward = rewards[0];
      const nbr = rewards.subarray(fresh ? 1 : 0);
      let bi = 0;
      for (let i = 1; i < k; i++) if (nbr[i] > nbr[bi]) bi = i;
      const pivotReward: number = pivot.reward!;
      const moved: boolean = nbr[bi] > pivotReward;
      // Move to the best neighbour, or restart from fresh noise next round.
      const x: Tensor | null = s.replace(pivot.x, moved ? await slice(nb, bi, bi + 1, run.stream) : null);
      pivot = x ? { x, id: nbIds[bi], reward: nbr[bi] } : null;
      const population = rewards.length;
      run.record({
        round,
        sigma: 1,
        population,
        mean: mean(nbr),
        roundBest: max(nbr),
        pivot: pivotReward,
        moved,
        restarted: !moved,
      });
    }
    return run.finish({ steps: run.steps });
  });
}
