/**
 * Beam search / SVDD (Li et al., "Derivative-free guidance in continuous and discrete diffusion
 * models with soft value-based decoding", arXiv 2408.08252; SVDD-PM is B = 1 per sample):
 *   B beams start from noise. At every step each beam is expanded into M children by the
 *   stochastic (DDIM-η) step, each child with its own noise; the verifier scores every child's x̂0
 *   prediction and the best B children (over all beams) become the beams. The last step lands
 *   on σ = 0 (the beams' x̂0), where the B finals are scored; the best is the result.
 * A child's x̂0 comes from the model evaluation its own next step uses, so one run costs B NFE at
 * σ = 1 and B·M NFE at every later level above 0. B and M the caller leaves unset grow together
 * from (1, 2) to the largest run the budget pays for. The budget left after one run pays for
 * further independent runs while a whole one fits (more budget never loses). Every child steps at
 * the same σ, so an adaptive schedule does not apply (ARGUMENT, see stochasticConfig).
 */
import type { NativeTensor } from '../native';
import { gather } from '../tensor-ops';
import { TensorScope } from '../tensor-scope';
import {
  intOption,
  largestFitting,
  pairSizes,
  rejectMidVerifier,
  sdeFromPrediction,
  stochasticConfig,
  topIndices,
} from './shared';
import { max, mean, withRun, type SearchRun } from './run';
import type { SearchConfig, SearchResult } from './types';

type Prediction = { x0: NativeTensor; eps: NativeTensor };

export interface BeamOptions {
  /** B, beams kept at every step (default: fitted to the budget with M; 5 at 500 NFE and 20 steps). */
  beams?: number;
  /** M, children per beam at every step (default: fitted with B, M ≥ 2). */
  children?: number;
  /** Independent runs at most (default: as many as the budget pays for, at least one). */
  runs?: number;
}

export async function beamSearch(config: SearchConfig, options: BeamOptions = {}): Promise<SearchResult> {
  const alg = 'beam';
  return withRun(alg, stochasticConfig(config, alg), async (run) => {
    const maxRuns = intOption(alg, 'runs', options.runs, Infinity, 1);
    rejectMidVerifier(run, alg);

    const { B, M, cost } = fitBeam(run, options);
    const S = run.steps;
    const expand = Array.from({ length: B * M }, (_, r) => Math.floor(r / M));
    let round = 0;
    for (let index = 0; index < maxRuns && run.budget.canAfford(cost); index++) {
      run.checkAbort();
      using s = new TensorScope(); // this run's beams
      // The beams are carried as their predictions (x̂0, ε̂) at the current level: all a step needs.
      let pred = s.track(await beamsAtNoise(run, B));
      for (let i = 0; i + 1 < S; i++) {
        run.checkAbort();
        using t = new TensorScope(); // this step's children
        const p = t.track(await children(run, pred, expand, i));
        const r = await run.scorePredictions(p.x0);
        const keep = topIndices(r, B);
        pred = {
          x0: s.replace(pred.x0, await gather(p.x0, keep, run.stream)),
          eps: s.replace(pred.eps, await gather(p.eps, keep, run.stream)),
        };
        run.record({
          round: round++,
          run: index,
          sigma: run.sigmas[i + 1],
          population: B * M,
          mean: mean(r),
          roundBest: max(r),
          keptMean: mean(keep.map((k) => r[k])),
        });
      }
      // The last step lands on σ = 0: the finals are the beams' x̂0 (no noise, no children).
      const [last, zero] = [run.sigmas[S - 1], run.sigmas[S]];
      const final = s.track(await sdeFromPrediction(run, pred.x0, pred.eps, last, zero, run.ids(B), 1000 + S - 1));
      const rewards = await run.score(final);
      run.record({
        round: round++,
        run: index,
        sigma: run.sigmas[S],
        population: B,
        mean: mean(rewards),
        roundBest: max(rewards),
      });
    }
    return run.finish({ steps: S });
  });
}

/** B noises and their predictions at σ = 1 (the noise itself is not kept). */
async function beamsAtNoise(run: SearchRun, B: number): Promise<Prediction> {
  using s = new TensorScope();
  const init = s.track(await run.noise(B));
  return await run.predict(init.x, run.sigmas[0]);
}

/** M children of every beam (the stochastic step σ_i → σ_{i+1}, each child its own noise) and their predictions. */
async function children(run: SearchRun, beams: Prediction, expand: number[], i: number): Promise<Prediction> {
  using s = new TensorScope();
  const x0 = await s.track(gather(beams.x0, expand, run.stream));
  const eps = await s.track(gather(beams.eps, expand, run.stream));
  const ids = run.ids(expand.length);
  const x = s.track(await sdeFromPrediction(run, x0, eps, run.sigmas[i], run.sigmas[i + 1], ids, 1000 + i));
  return await run.predict(x, run.sigmas[i + 1]);
}

/** B and M: the caller's where set; the rest the largest run the budget pays for (BUDGET names the smallest). */
function fitBeam(run: SearchRun, o: BeamOptions): { B: number; M: number; cost: number } {
  const alg = 'beam';
  const b0 = o.beams === undefined ? undefined : intOption(alg, 'beams (B)', o.beams, 1, 1);
  const m0 = o.children === undefined ? undefined : intOption(alg, 'children (M)', o.children, 1, 1);
  const sizes = pairSizes(b0, m0);
  const at = (j: number) => {
    const [B, M] = sizes(j);
    return { B, M, cost: run.evalCost(B) + (run.steps - 1) * run.evalCost(B * M) };
  };
  const j = b0 !== undefined && m0 !== undefined ? 1 : largestFitting((j) => at(j).cost, run.budget.total);
  const plan = at(j ?? 1);
  run.require(plan.cost, `${plan.B} beam${plan.B > 1 ? 's' : ''} × ${plan.M} children over ${run.steps} steps`);
  return plan;
}
