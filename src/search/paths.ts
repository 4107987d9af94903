/**
 * Search over paths (Ma et al., arXiv 2501.09732, §3.2 "Search over Paths"):
 *   1. draw N noises and run the sampler from σ = 1 down to the start level σ_{i0};
 *   2. make M forward-noised copies of each, from σ_i back up the schedule to σ_{i−Δf};
 *   3. denoise every copy to σ_{i−Δf+Δb} (Δb > Δf: a net advance of Δb − Δf steps), score the
 *      candidates and keep the top N; repeat 2–3 until σ reaches 0;
 *   4. the best of the last N (and of every sample scored) is the result.
 * Δf and Δb are counted in steps of the schedule (integers), so every level the search visits is
 * a level of the schedule. How step 3 scores a candidate (`score`):
 *   'x0' (default, the paper's): "one additional denoising step" — one model evaluation at the
 *        candidate's own level — and the verifier scores that clean x̂0 prediction (1 NFE each);
 *   'rollout': sample the candidate on to σ = 0 with the sampler and score the sample (a rollout
 *        per candidate; these samples enter the archive, so one of them can be the result).
 * The last round lands on σ = 0 and scores the samples themselves either way.
 * With an adaptive schedule every rollout to σ = 0 (the last round's, and the candidates' with
 * 'rollout') follows the steps the Time Prediction Module chooses; the rounds above it keep the
 * schedule's levels. The first search is planned at the module's maximum of steps, later ones at
 * the most it took so far, capped at what the budget still pays for.
 * Sizes the caller leaves unset are fitted to the budget: N and M grow together from (1, 2) to
 * the largest search the budget pays for, at the default start level; when not even the smallest
 * sizes fit there, the search starts later (fewer rounds). One search costs a fixed NFE (see
 * pathsCost); the budget left after it runs further independent searches while a whole one fits,
 * so with the sizes and start given, more budget never loses.
 */
import { DiffusionSearchError } from '../errors';
import type { NativeTensor } from '../native';
import * as ops from '../ops';
import { gather } from '../tensor-ops';
import { TensorScope } from '../tensor-scope';
import { intOption, largestFitting, pairSizes, rejectMidVerifier, topIndices } from './shared';
import { max, mean, withRun, type SearchRun } from './run';
import type { SearchConfig, SearchResult } from './types';

type Tensor = NativeTensor;
type Mode = 'rollout' | 'x0';

export interface PathsOptions {
  /** Candidates kept after each round (N; default: fitted to the budget, 4 at 500 NFE and 20 steps). */
  n?: number;
  /** Forward-noised copies of each kept candidate (M; default: fitted with N, M ≥ 2). */
  m?: number;
  /**
   * Schedule index where the search starts (σ = sigmas[start]); default round(steps/4), at least
   * `forward`, later when the budget cannot pay for a search from there.
   */
  start?: number;
  /** Δf: schedule steps each copy is noised back up (default 1, ≥ 1). */
  forward?: number;
  /** Δb: schedule steps each copy is then denoised (default 2, > forward). */
  backward?: number;
  /** How candidates are scored: 'x0' (default, as the paper) or 'rollout'; see the header. */
  score?: 'rollout' | 'x0';
  /** Independent searches at most (default: as many as the budget pays for, at least one). */
  runs?: number;
}

/** The rounds of one search: from index i, noise up to `up`, denoise to `to`. */
function plan(steps: number, start: number, forward: number, backward: number) {
  const rounds: { from: number; up: number; to: number }[] = [];
  for (let i = start; i < steps; ) {
    const to = Math.min(steps, i - forward + backward);
    rounds.push({ from: i, up: i - forward, to });
    i = to;
  }
  return rounds;
}

export function searchOverPaths(config: SearchConfig, options: PathsOptions = {}): Promise<SearchResult> {
  return withRun('paths', config, async (run) => {
    const alg = 'paths';
    const forward = intOption(alg, 'forward (Δf, schedule steps)', options.forward, 1, 1);
    const backward = intOption(alg, 'backward (Δb, schedule steps)', options.backward, 2, 1);
    if (backward <= forward)
      throw new DiffusionSearchError(
        `${alg}: backward (Δb = ${backward}) must be greater than forward (Δf = ${forward}) so the search advances`,
        'ARGUMENT',
      );
    if (run.steps - 1 < forward)
      throw new DiffusionSearchError(
        `${alg}: the schedule has ${run.steps} steps; it needs more than forward (Δf = ${forward})`,
        'ARGUMENT',
      );
    const mode = options.score ?? 'x0';
    if (mode !== 'rollout' && mode !== 'x0')
      throw new DiffusionSearchError(`${alg}: score must be 'rollout' or 'x0', got '${String(mode)}'`, 'ARGUMENT');
    const maxRuns = intOption(alg, 'runs', options.runs, Infinity, 1);
    rejectMidVerifier(run, alg);

    const { n, m, start, rounds, cost } = fitPaths(run, options, forward, backward, mode);
    const rows = n * m;
    const repeat = Array.from({ length: rows }, (_, r) => Math.floor(r / m));

    let round = 0;
    for (let index = 0; index < maxRuns; index++) {
      // Adaptive rollouts share what the budget leaves after the schedule's steps (first search: the plan's maximum).
      const maxSteps = cost.rolled ? run.adaptiveCap(cost.rolled, cost.fixed) : undefined;
      if (maxSteps !== undefined ? maxSteps < run.plannedSteps : !run.budget.canAfford(cost.total)) break;
      run.checkAbort();
      using s = new TensorScope(); // this search's kept candidates
      let x = s.track(await startLevel(run, n, start));
      for (const { from, up, to } of rounds) {
        run.checkAbort();
        using t = new TensorScope(); // this round's copies
        const ids = run.ids(rows);
        const copies = await t.track(gather(x, repeat, run.stream));
        const o = { seed: run.seed, ids, step: RENOISE_STEP, stream: run.stream };
        const noised = await t.track(ops.renoise(copies, run.denoiser.path, run.sigmas[from], run.sigmas[up], o));
        let rewards: Float32Array;
        if (to === run.steps) {
          // The last round: the copies to σ = 0 are the samples.
          rewards = t.track(await run.rolloutAndScore(noised, ids, up, { maxSteps })).rewards;
        } else {
          const d = t.track(await run.advance(noised, ids, up, to));
          if (mode === 'x0') rewards = await scoreCleanPrediction(run, d.x, to);
          else rewards = await scoreRollouts(run, d.x, ids, to, maxSteps);
          x = s.replace(x, await gather(d.x, topIndices(rewards, n), run.stream));
        }
        const sigma = run.sigmas[to];
        run.record({
          round: round++,
          run: index,
          sigma,
          population: rows,
          mean: mean(rewards),
          roundBest: max(rewards),
        });
      }
    }
    return run.finish({ steps: run.steps });
  });
}

/**
 * N, M and the start level of one search: the caller's where set; the rest the largest search the
 * budget pays for (N and M together, then a later start). A BUDGET error names the smallest.
 */
function fitPaths(run: SearchRun, o: PathsOptions, forward: number, backward: number, mode: Mode) {
  const alg = 'paths';
  const n0 = o.n === undefined ? undefined : intOption(alg, 'n', o.n, 1, 1);
  const m0 = o.m === undefined ? undefined : intOption(alg, 'm', o.m, 1, 1);
  const S = run.steps;
  const byDefault = Math.min(S - 1, Math.max(forward, Math.round(S / 4)));
  const first = intOption(alg, 'start (schedule index)', o.start, byDefault, forward, S - 1);
  const fixed = n0 !== undefined && m0 !== undefined;
  // A later start (fewer rounds) only when the budget chooses the sizes too.
  const starts = o.start === undefined && !fixed ? Array.from({ length: S - first }, (_, k) => first + k) : [first];
  const sizes = pairSizes(n0, m0);
  const at = (start: number, j: number) => {
    const [n, m] = sizes(j);
    const rounds = plan(S, start, forward, backward);
    return { n, m, start, rounds, cost: pathsCost(run, n, m, start, rounds, mode) };
  };
  for (const start of starts) {
    const total = (j: number) => at(start, j).cost.total;
    const j = fixed ? (total(1) <= run.budget.total ? 1 : null) : largestFitting(total, run.budget.total);
    if (j !== null) return at(start, j);
  }
  const least = at(starts[starts.length - 1], 1);
  const rounds = `${least.rounds.length} round${least.rounds.length > 1 ? 's' : ''}`;
  run.require(least.cost.total, `the smallest search (N = ${least.n}, M = ${least.m}, ${rounds} from ${least.start})`);
  return least; // (not reached: it did not fit above)
}

/** Step 1: N noises sampled from σ = 1 down to the start level (start ≥ 1: a new tensor). */
async function startLevel(run: SearchRun, n: number, start: number): Promise<Tensor> {
  using s = new TensorScope();
  const init = s.track(await run.noise(n));
  const r = s.track(await run.advance(init.x, init.ids, 0, start));
  return s.keep(r.x);
}

/** The paper's scoring: one more model evaluation at the candidates' level, its x̂0 to the verifier. */
async function scoreCleanPrediction(run: SearchRun, x: Tensor, level: number): Promise<Float32Array> {
  using s = new TensorScope();
  const { x0 } = s.track(await run.predict(x, run.sigmas[level]));
  return await run.scorePredictions(x0);
}

/** 'rollout' scoring: each candidate sampled on to σ = 0 (these samples enter the archive). */
async function scoreRollouts(run: SearchRun, x: Tensor, ids: number[], level: number, maxSteps?: number) {
  using s = new TensorScope();
  return s.track(await run.rolloutAndScore(x, ids, level, { maxSteps })).rewards;
}

/**
 * NFE of one search over paths: `fixed` on the schedule's levels, and `rolled` rows rolled out to
 * σ = 0 by the adaptive sampler (none with a fixed schedule); `total` plans those at maxSteps.
 */
function pathsCost(run: SearchRun, n: number, m: number, start: number, rounds: ReturnType<typeof plan>, mode: Mode) {
  let fixed = run.rolloutCost(n, 0, start),
    rolled = 0;
  for (const { up, to } of rounds) {
    const last = to === run.steps;
    if (!last) fixed += run.rolloutCost(n * m, up, to) + (mode === 'x0' ? run.evalCost(n * m) : 0);
    if (last || mode === 'rollout') {
      if (run.adaptive) rolled += n * m;
      else fixed += run.rolloutCost(n * m, last ? up : to);
    }
  }
  return { fixed, rolled, total: fixed + (rolled ? run.rolloutCost(rolled, 0) : 0) };
}

/** Step counter of the re-noising draws (ids are fresh for every copy, so a constant will do). */
const RENOISE_STEP = 2;
