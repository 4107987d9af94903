/**
 * Search over paths (Ma et al., arXiv 2501.09732, §4):
 *   1. draw N noises and run the sampler from σ = 1 down to the start level σ_{i0};
 *   2. make M forward-noised copies of each, from σ_i back up the schedule to σ_{i−Δf};
 *   3. denoise every copy to σ_{i−Δf+Δb} (Δb > Δf: a net advance of Δb − Δf steps), score the
 *      candidates and keep the top N; repeat 2–3 until σ reaches 0;
 *   4. the best sample ever scored is the result.
 * Δf and Δb are counted in steps of the schedule (integers), so every level the search visits is
 * a level of the schedule. Candidates are scored by rolling them out to σ = 0 with the sampler
 * (default, as the paper), or by the x̂0 the last denoising step predicted (no extra NFE).
 * One search costs a fixed NFE (see pathsCost); the budget left after it runs further
 * independent searches (fresh noise) while a whole one fits, so more budget never loses.

 */
import { DiffusionSearchError } from '../errors';
import type { NativeTensor } from '../native';
import * as ops from '../ops';
import { gather } from '../tensor-ops';
import { intOption, rejectMidVerifier, topIndices } from './shared';
import { max, mean, withRun, type SearchRun } from './run';
import type { SearchConfig, SearchResult } from './types';

type Tensor = NativeTensor;

export interface PathsOptions {
  /** Candidates kept after each round (N, default 4). */
  n?: number;
  /** Forward-noised copies of each kept candidate (M, default 4). */
  m?: number;
  /** Schedule index where the search starts (σ = sigmas[start]); default round(steps/4), at least `forward`. */
  start?: number;
  /** Δf: schedule steps each copy is noised back up (default 1, ≥ 1). */
  forward?: number;
  /** Δb: schedule steps each copy is then denoised (default 2, > forward). */
  backward?: number;
  /**
   * How candidates are scored: 'rollout' — sample each to σ = 0 and score the sample (default, as
   * the paper; these samples enter the archive) — or 'x0' — score the x̂0 that the candidate's last
   * denoising step predicted (at the level just above it: no extra NFE). The last round lands on
   * σ = 0 and scores the samples themselves either way.
   */
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
    const n = intOption(alg, 'n', options.n, 4, 1);
    const m = intOption(alg, 'm', options.m, 4, 1);
    const forward = intOption(alg, 'forward (Δf, schedule steps)', options.forward, 1, 1);
    const backward = intOption(alg, 'backward (Δb, schedule steps)', options.backward, 2, 1);
    if (backward <= forward)
      throw new DiffusionSearchError(`${alg}: backward (Δb = ${backward}) must be greater than forward (Δf = ${forward}) so the search advances`, 'ARGUMENT');
    if (run.steps - 1 < forward)
      throw new DiffusionSearchError(`${alg}: the schedule has ${run.steps} steps; it needs more than forward (Δf = ${forward})`, 'ARGUMENT');
    const start = intOption(alg, 'start (schedule index)', options.start, Math.min(run.steps - 1, Math.max(forward, Math.round(run.steps / 4))), forward, run.steps - 1);
    const mode = options.score ?? 'rollout';
    if (mode !== 'rollout' && mode !== 'x0') throw new DiffusionSearchError(`${alg}: score must be 'rollout' or 'x0', got '${String(mode)}'`, 'ARGUMENT');
    const maxRuns = intOption(alg, 'runs', options.runs, Infinity, 1);
    rejectMidVerifier(run, alg);

    const rounds = plan(run.steps, start, forward, backward);
    const cost = pathsCost(run, n, m, start, rounds, mode);
    run.require(cost, `one search (N = ${n}, M = ${m}, ${rounds.length} rounds from step ${start})`);
    const rows = n * m;
    const repeat = Array.from({ length: rows }, (_, r) => Math.floor(r / m));

    let round = 0;
    for (let index = 0; index < maxRuns && run.budget.canAfford(cost); index++) {
      run.checkAbort();
      const init = await run.noise(n);
      let x: Tensor;
      try {
        const r = await run.advance(init.x, init.ids, 0, start); // start ≥ 1: a new tensor
        r.x0?.dispose();
        r.x0Mid?.dispose();
        x = r.x;
      } finally {
        init.x.dispose();
      }
      try {
        for (const { from, up, to } of rounds) {
          run.checkAbort();
          const copies = await gather(x, repeat, run.stream);
          const ids = run.ids(rows);
          let noised: Tensor;
          try {
            noised = await ops.renoise(copies, run.denoiser.path, run.sigmas[from], run.sigmas[up], { seed: run.seed, ids, step: RENOISE_STEP, stream: run.stream });
          } finally {
            copies.dispose();
          }
          const d = await run.advance(noised, ids, up, to).finally(() => noised.dispose());
          let rewards: Float32Array;
          try {
            if (to === run.steps) rewards = await run.score(d.x);
            else if (mode === 'x0') rewards = await run.scorePredictions(d.x0!);
            else {
              const r = await run.rolloutAndScore(d.x, ids, to);
              r.final.dispose();
              rewards = r.rewards;
            }
            if (to < run.steps) {
              const next = await gather(d.x, topIndices(rewards, n), run.stream);
              x.dispose();
              x = next;
            }
          } finally {
            d.x.dispose();
            d.x0?.dispose();
            d.x0Mid?.dispose();
          }
          run.record({ round: round++, run: index, sigma: run.sigmas[to], population: rows, mean: mean(rewards), roundBest: max(rewards) });
        }
      } finally {
        x.dispose();
      }
    }
    return run.finish({ steps: run.steps });
  });
}

/** NFE of one search over paths. */
function pathsCost(run: SearchRun, n: number, m: number, start: number, rounds: ReturnType<typeof plan>, mode: 'rollout' | 'x0'): number {
  let nfe = run.rolloutCost(n, 0, start);
  for (const { up, to } of rounds) {
    nfe += run.rolloutCost(n * m, up, to);
    if (mode === 'rollout' && to < run.steps) nfe += run.rolloutCost(n * m, to);
  }
  return nfe;
}

/** Step counter of the re-noising draws (ids are fresh for every copy, so a constant will do). */
const RENOISE_STEP = 2;
