/**
 * EvoSearch (He et al., arXiv 2505.17618): denoising trajectories as evolution paths.
 *
 *   P_0 ← K_0 noises at σ = 1; score each by rolling it out
 *   for g = 1..G, at evolution level L_g (schedule index; L_1 = 0 is pure noise):
 *     bring P to level L_g (states captured on the trajectories already scored: no extra NFE)
 *     elites ← top E of P, kept exactly as they are (state and reward)
 *     parents ← K_g − E tournament winners (each tournament: the best of 0.9·P distinct members of P)
 *     children ← mutate(parents): at σ = 1  √(1−β²)·x + β·ε   (stays N(0, I))
 *                                  at σ < 1  x + σ_t·ε         (σ_t: the SDE noise std of the step into L_g)
 *       At σ < 1 the default ('sde') first takes σ_t's share of noise out of the parent along its
 *       own predicted noise ε̂ (one NFE per member): x − (σ − √(σ² − σ_t²))·ε̂ + σ_t·ε, so the child
 *       keeps noise level σ and stays on the sampler's path; 'additive' is the literal x + σ_t·ε,
 *       which leaves children noisier than their level at few steps.
 *     score the children by rolling them out (or, as an option, by their x̂0)
 *     P ← elites ∪ children
 *   return the best sample ever scored
 *
 * Defaults follow the reference (SD2.1: levels {0, 20, 30, 40} of 50 steps, sizes {42, 26, 26, 26, 30},
 * E = 5, β = 0.2, tournaments of 0.9·P drawn without replacement), scaled to the schedule and to
 * the budget.
 */
import { DiffusionSearchError } from '../errors';
import type { NativeTensor } from '../native';
import * as ops from '../ops';
import { pathCoefficients } from '../schedules/path';
import { axpby, cat, floatTensor, gather } from '../tensor-ops';
import { max, mean, withRun, type SearchRun } from './run';
import { topIndices } from './shared';
import type { SearchConfig, SearchResult } from './types';

type Tensor = NativeTensor;

export interface EvoSearchOptions {
  /** Evolution schedule: schedule indices of the generations after the first; the first must be 0. */
  levels?: number[];
  /** Population-size schedule K_0..K_G (one more entry than levels). */
  population?: number[];
  /** Elites kept unchanged each generation (default min(5, smallest K − 1)). */
  elites?: number;
  /** Fraction of the population in each tournament (default 0.9, at least 2 entrants). */
  tournament?: number;
  /**
   * Entrants drawn without replacement (default, as the reference: 0.9·P distinct members of the
   * whole population, elites included, so nearly always the best wins) or with replacement (the
   * native kernel; 0.2 with replacement was our earlier, gentler default — bench/RESULTS.md).
   */
  replacement?: boolean;
  /** Initial-noise mutation strength (default 0.2). */
  beta?: number;
  /** Multiplier of the SDE noise std for intermediate-state mutation (default 1). */
  mutationScale?: number;
  /** Intermediate-state mutation: 'sde' (default, keeps the noise level) or 'additive' (x + σ_t·ε). */
  mutation?: 'sde' | 'additive';
  /** How to score intermediate generations: roll out to σ = 0 (default, as the reference) or use x̂0. */
  scoreBy?: 'rollout' | 'x0';
}

/** A population at one schedule level, with states captured further down its scored trajectories. */
interface Population {
  level: number;
  x: Tensor;
  ids: number[];
  rewards: Float32Array;
  ahead: Map<number, Tensor>;
}

const REFERENCE_FRACTIONS = [0, 0.4, 0.6, 0.8];
const REFERENCE_SIZES = [42, 26, 26, 26, 30];
/** Noise step of the without-replacement tournament draws (mutations use 100 + g). */
const TOURNAMENT_STEP = 200;

/** The reference's levels as fractions of S: distinct indices below S (few steps merge them; at least [0]). */
export function defaultLevels(S: number): number[] {
  return [...new Set(REFERENCE_FRACTIONS.map((f) => Math.round(f * S)))].filter((L) => L < S);
}

export function planEvoSearch(run: SearchRun, o: EvoSearchOptions): { levels: number[]; population: number[]; elites: number } {
  const S = run.steps;
  const levels = o.levels ?? defaultLevels(S);
  if (levels.length === 0 || levels[0] !== 0)
    throw new DiffusionSearchError('evosearch: the evolution schedule must start at level 0 (pure noise)', 'ARGUMENT');
  for (let i = 1; i < levels.length; i++)
    if (!(Number.isInteger(levels[i]) && levels[i] > levels[i - 1] && levels[i] < S))
      throw new DiffusionSearchError(`evosearch: levels must be increasing schedule indices below ${S}, got [${levels}]`, 'ARGUMENT');
  const cost = (pop: number[], E: number) => planCost(run, levels, pop, E, o);
  let population = o.population;
  let elites = o.elites;
  if (population) {
    if (population.length !== levels.length + 1)
      throw new DiffusionSearchError(`evosearch: population needs ${levels.length + 1} sizes (one per generation), got ${population.length}`, 'ARGUMENT');
    if (!population.every((k) => Number.isInteger(k) && k >= 1)) throw new DiffusionSearchError('evosearch: population sizes must be positive integers', 'ARGUMENT');
    elites ??= Math.min(5, Math.min(...population) - 1);
  } else {
    // Scale the reference sizes so the whole plan fits the budget.
    const ref = levels.map((_, g) => REFERENCE_SIZES[Math.min(g + 1, REFERENCE_SIZES.length - 1)]);
    const base = [REFERENCE_SIZES[0], ...ref];
    let lo = 0.01, hi = 50;
    const sizes = (f: number) => base.map((k) => Math.max(2, Math.round(k * f)));
    const E = (p: number[]) => elites ?? Math.min(5, Math.min(...p) - 1);
    for (let it = 0; it < 60; it++) {
      const mid = (lo + hi) / 2;
      if (cost(sizes(mid), E(sizes(mid))) <= run.budget.total) lo = mid;
      else hi = mid;
    }
    population = sizes(lo);
    elites = E(population);
  }
  if (!(Number.isInteger(elites) && elites >= 0)) throw new DiffusionSearchError('evosearch: elites must be a non-negative integer', 'ARGUMENT');
  for (let g = 1; g < population.length; g++)
    if (population[g] <= elites)
      throw new DiffusionSearchError(`evosearch: population ${population[g]} of generation ${g} must exceed the ${elites} elites`, 'ARGUMENT');
  if (population.some((k, g) => g > 0 && elites! > population![g - 1]))
    throw new DiffusionSearchError('evosearch: elites cannot exceed the previous population', 'ARGUMENT');
  run.require(cost(population, elites), `the evolution plan (sizes [${population}], levels [${levels}])`);
  return { levels, population, elites };
}

/**
 * NFE of a whole plan. Rollout scoring captures later states on the way (no advancing cost): a
 * rollout from level L walks the schedule to the last level, then to σ = 0 (with an adaptive
 * schedule only that last part is adaptive, planned at its maximum of steps).
 */
function planCost(run: SearchRun, levels: number[], pop: number[], E: number, o: EvoSearchOptions): number {
  // The 'sde' mutation at an intermediate level predicts ε̂ of every member once.
  const mutation = (o.mutation ?? 'sde') === 'sde' ? levels.reduce((s, L, g) => s + (L > 0 ? pop[g] * run.evalCost(1) : 0), 0) : 0;
  const last = levels[levels.length - 1];
  const rollout = (L: number) => run.rolloutCost(1, L, last) + run.rolloutCost(1, Math.max(L, last));
  if (o.scoreBy !== 'x0') return mutation + pop[0] * rollout(0) + levels.reduce((s, L, g) => s + Math.max(0, pop[g + 1] - E) * rollout(L), 0);
  // x̂0 scoring: one evaluation per new member, advancing each generation to the next level,
  // and the final rollout of the last generation.
  let nfe = pop[0] * run.evalCost(1);
  for (let g = 1; g < pop.length; g++) {
    nfe += Math.max(0, pop[g] - E) * run.evalCost(1);
    if (g < levels.length) nfe += pop[g] * run.rolloutCost(1, levels[g - 1], levels[g]);
  }
  return mutation + nfe + pop[pop.length - 1] * run.rolloutCost(1, levels[levels.length - 1]);
}

export function evoSearch(config: SearchConfig, options: EvoSearchOptions = {}): Promise<SearchResult> {
  return withRun('evosearch', config, async (run) => {
    const { levels, population, elites } = planEvoSearch(run, options);
    const beta = options.beta ?? 0.2;
    if (!(beta > 0 && beta <= 1)) throw new DiffusionSearchError(`evosearch: beta must be in (0, 1], got ${beta}`, 'ARGUMENT');
    const fraction = options.tournament ?? 0.9;
    if (!(fraction > 0 && fraction <= 1)) throw new DiffusionSearchError(`evosearch: tournament must be in (0, 1], got ${fraction}`, 'ARGUMENT');
    const scale = options.mutationScale ?? 1;
    const mutation = options.mutation ?? 'sde';
    if (mutation !== 'sde' && mutation !== 'additive')
      throw new DiffusionSearchError(`evosearch: mutation must be 'sde' or 'additive', got '${String(mutation)}'`, 'ARGUMENT');
    const lastRolloutLevels = options.scoreBy === 'x0' ? [] : levels.slice(1);

    // Generation 0: K_0 noises, scored by full rollouts that also capture the states at later levels.
    const first = await run.noise(population[0]);
    let pop: Population = await evaluate(run, first.x, first.ids, 0, lastRolloutLevels, options).finally(() => first.x.dispose());
    run.record({ round: 0, sigma: 1, population: population[0], mean: mean(pop.rewards), generationBest: max(pop.rewards) });

    try {
      for (let g = 1; g < population.length; g++) {
        run.checkAbort();
        const L = levels[g - 1];
        pop = await bringTo(run, pop, L);
        const K = population[g];
        const eliteIdx = topIndices(pop.rewards, Math.min(elites, pop.ids.length));
        const childIds = run.ids(K - eliteIdx.length);
        const parents = await tournaments(run, pop, childIds, fraction, options.replacement ?? false, g);
        const children =
          L === 0
            ? await ops.mutateGaussian(pop.x, parents, beta, { seed: run.seed, ids: childIds, step: 100 + g, stream: run.stream })
            : await mutateIntermediate(run, pop.x, parents, L, scale * mutationStd(run, L), mutation, { ids: childIds, step: 100 + g });
        // Disposed also when a cancellation rejects a model call mid-step (with cross-search batching).
        const scored = await evaluate(run, children, childIds, L, lastRolloutLevels.filter((l) => l > L), options).finally(() => children.dispose());
        const next = await join(run, pop, eliteIdx, scored);
        disposePopulation(pop);
        disposePopulation(scored);
        pop = next;
        run.record({
          round: g,
          sigma: run.sigmas[L],
          level: L,
          population: pop.ids.length,
          mean: mean(pop.rewards),
          generationBest: max(pop.rewards),
          elites: eliteIdx.length,
        });
      }
      // Scored by x̂0: the last generation still has to become real samples.
      if (options.scoreBy === 'x0') {
        const r = await run.rolloutAndScore(pop.x, pop.ids, pop.level);
        r.final.dispose();
      }
    } finally {
      disposePopulation(pop);
    }
    return run.finish({ steps: run.steps });
  });
}

/**
 * One tournament per child over the whole population (elites included): the best of
 * max(2, round(fraction·P)) entrants (at most P without replacement). Returns parent indices.
 */
async function tournaments(run: SearchRun, pop: Population, childIds: number[], fraction: number, replacement: boolean, g: number): Promise<number[]> {
  const P = pop.ids.length, n = childIds.length;
  const size = Math.max(2, Math.round(fraction * P));
  if (replacement) {
    const fitness = floatTensor(pop.rewards, pop.x.device);
    const t = await ops.tournamentSelect(fitness, n, { size, seed: run.seed, step: g, stream: run.stream }).finally(() => fitness.dispose());
    const idx = Array.from((await t.toArray(run.stream)) as BigInt64Array, Number);
    t.dispose();
    return idx;
  }
  // Without replacement: each child's entrants are the members with its `size` smallest uniform keys.
  const m = Math.min(P, size);
  const u = await ops.uniform([n, P], { seed: run.seed, ids: childIds, step: TOURNAMENT_STEP + g, stream: run.stream });
  const keys = (await u.toArray(run.stream)) as Float32Array;
  u.dispose();
  return childIds.map((_, c) => {
    const row = keys.subarray(c * P, (c + 1) * P);
    const entrants = Array.from({ length: P }, (_, i) => i).sort((a, b) => row[a] - row[b] || a - b).slice(0, m);
    return entrants.reduce((best, i) => (pop.rewards[i] > pop.rewards[best] || (pop.rewards[i] === pop.rewards[best] && i < best) ? i : best));
  });
}

/** The SDE (η = 1) noise std of the step into level L: how far an intermediate state may move. */
function mutationStd(run: SearchRun, L: number): number {
  const from = run.sigmas[L - 1], to = run.sigmas[L];
  const { a: af } = pathCoefficients(run.denoiser.path, from);
  const { a: at } = pathCoefficients(run.denoiser.path, to);
  const ratio = (af * to) / (at * from);
  return to * Math.sqrt(Math.max(0, 1 - ratio * ratio));
}

/**
 * Children of states at level L: x + σ_t·ε ('additive'), or with σ_t's share of noise first
 * taken out along the parent's predicted ε̂ ('sde'), so the child keeps the noise level σ_L.
 */
async function mutateIntermediate(
  run: SearchRun,
  x: Tensor,
  parents: number[],
  L: number,
  std: number,
  mutation: 'sde' | 'additive',
  o: { ids: number[]; step: number },
): Promise<Tensor> {
  const noise = { seed: run.seed, ids: o.ids, step: o.step, stream: run.stream };
  if (mutation === 'additive') return ops.mutateAdditive(x, parents, std, noise);
  const sigma = run.sigmas[L];
  const s = Math.min(std, sigma);
  const { x0, eps } = await run.predict(x, sigma);
  x0.dispose();
  const n = x.shape[0];
  const base = await axpby(x, eps, new Array(n).fill(1), new Array(n).fill(Math.sqrt(sigma * sigma - s * s) - sigma), run.stream);
  eps.dispose();
  try {
    return await ops.mutateAdditive(base, parents, s, noise);
  } finally {
    base.dispose();
  }
}

/** Scores states at `level`: rollouts to σ = 0 (capturing states at `capture` levels) or x̂0. */
async function evaluate(run: SearchRun, x: Tensor, ids: number[], level: number, capture: number[], o: EvoSearchOptions): Promise<Population> {
  const ahead = new Map<number, Tensor>();
  if (o.scoreBy === 'x0') {
    const { x0, eps } = await run.predict(x, run.sigmas[level]);
    eps.dispose();
    const rewards = await run.scorePredictions(x0).finally(() => x0.dispose());
    return { level, x: await cat([x], run.stream), ids, rewards: Float32Array.from(rewards), ahead };
  }
  // The trajectories begin at `level` and run in segments; the one segment holding their σ ≈ 0.4
  // step returns the mid prediction, which scores them at the end.
  let cur = x, at = level, mid: Tensor | null = null;
  try {
    for (const L of capture) {
      const r = await run.advance(cur, ids, at, L, { start: level });
      r.x0?.dispose();
      if (r.x0Mid) mid = r.x0Mid;
      ahead.set(L, r.x);
      cur = r.x;
      at = L;
    }
    const { rewards, final } = await run.rolloutAndScore(cur, ids, at, { start: level, x0Mid: mid });
    final.dispose();
    return { level, x: await cat([x], run.stream), ids, rewards, ahead };
  } catch (e) {
    for (const t of ahead.values()) t.dispose();
    throw e;
  } finally {
    mid?.dispose();
  }
}

/** The population's states at level L: captured ones when available, else advanced (costs NFE). */
async function bringTo(run: SearchRun, pop: Population, L: number): Promise<Population> {
  if (pop.level === L) return pop;
  let x = pop.ahead.get(L);
  if (x) pop.ahead.delete(L);
  else {
    const r = await run.advance(pop.x, pop.ids, pop.level, L);
    r.x0?.dispose();
    r.x0Mid?.dispose();
    x = r.x;
  }
  pop.x.dispose();
  return { ...pop, level: L, x };
}

/** Elites (unchanged: state, reward and captured states) followed by the children. */
async function join(run: SearchRun, pop: Population, eliteIdx: number[], kids: Population): Promise<Population> {
  const parts: Tensor[] = [];
  if (eliteIdx.length) parts.push(await gather(pop.x, eliteIdx, run.stream));
  parts.push(kids.x);
  const x = await cat(parts, run.stream);
  if (eliteIdx.length) parts[0].dispose();
  const ahead = new Map<number, Tensor>();
  for (const [L, kx] of kids.ahead) {
    const ex = pop.ahead.get(L);
    if (eliteIdx.length && !ex) continue; // no captured state for elites: bringTo will advance them
    const e = eliteIdx.length ? await gather(ex!, eliteIdx, run.stream) : null;
    ahead.set(L, await cat(e ? [e, kx] : [kx], run.stream));
    e?.dispose();
  }
  return {
    level: kids.level,
    x,
    ids: [...eliteIdx.map((i) => pop.ids[i]), ...kids.ids],
    rewards: Float32Array.from([...eliteIdx.map((i) => pop.rewards[i]), ...kids.rewards]),
    ahead,
  };
}

function disposePopulation(p: Population): void {
  if (!p.x.disposed) p.x.dispose();
  for (const t of p.ahead.values()) t.dispose();
  p.ahead.clear();
}
