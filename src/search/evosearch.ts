/**
 * EvoSearch (He et al., arXiv 2505.17618): denoising trajectories as evolution paths.
 *
 *   score K_0 noises at σ = 1 by rolling them out
 *   for g = 1..G, at evolution level L_g (schedule index; L_1 = 0 is pure noise):
 *     pool ← every trajectory scored so far that passes through L_g, with its state there and its
 *            reward (as the reference: earlier generations stay in the pool; states and x̂0 captured
 *            on the trajectories already scored, so no extra NFE)
 *     elites ← top E of the pool (kept as they are: scored, and in the later levels' pools)
 *     parents ← K_g − E tournament winners (each: the best of ⌊0.9·P⌋ distinct members of the pool)
 *     children ← mutate(parents): at σ = 1  √(1−β²)·x + β·ε   (stays N(0, I))
 *                                  at σ < 1  x + σ_t·ε         (σ_t: the SDE noise std of the step into L_g)
 *       At σ < 1 the default ('sde') first takes σ_t's share of noise out of the parent along its
 *       predicted noise ε̂ = (x − a·x̂0)/σ, with x̂0 the one its trajectory predicted at L_g (no NFE):
 *       x − (σ − √(σ² − σ_t²))·ε̂ + σ_t·ε, so the child keeps noise level σ and stays on the
 *       sampler's path; 'additive' is the literal x + σ_t·ε, which leaves children noisier than
 *       their level at few steps.
 *     score the children by rolling them out, capturing their states and x̂0 at the later levels
 *   return the best sample ever scored
 *
 * Scored by x̂0 instead (an option) there are no trajectories to pool: the population is the elites
 * and the latest children, brought to each new level and scored there again (x̂0 at that level),
 * so that elites and children are compared at the same level; the last one is rolled out at the end.
 *
 * Defaults follow the reference (SD2.1: levels {0, 20, 30, 40} of 50 steps, sizes {42, 26, 26, 26, 30},
 * E = 5, β = 0.2, tournaments of ⌊0.9·P⌋ drawn without replacement from the whole pool), scaled to
 * the schedule and to the budget. The reference also rolls its elites out again; here they are
 * not (same trajectory, same reward), so each counts once in the pool and costs nothing.
 */
import { DiffusionSearchError, isDiffusionSearchError } from '../errors';
import type { NativeTensor } from '../native';
import * as ops from '../ops';
import { pathCoefficients } from '../schedules/path';
import { axpby, cat, floatTensor, gather } from '../tensor-ops';
import { TensorScope } from '../tensor-scope';
import { max, mean, withRun, type SearchRun } from './run';
import { largestFitting, topIndices } from './shared';
import type { SearchConfig, SearchResult } from './types';

type Tensor = NativeTensor;

export interface EvoSearchOptions {
  /** Evolution schedule: schedule indices of the generations after the first; the first must be 0. */
  levels?: number[];
  /** Population-size schedule K_0..K_G (one more entry than levels). */
  population?: number[];
  /** Elites kept unchanged each generation (default min(5, smallest K − 1)). */
  elites?: number;
  /** Fraction of the pool in each tournament: ⌊fraction·P⌋ entrants, at least 1 (default 0.9). */
  tournament?: number;
  /**
   * Entrants drawn without replacement (default, as the reference: ⌊0.9·P⌋ distinct members of the
   * pool, elites included, so nearly always the best wins) or with replacement (the native kernel;
   * gentler selection, which finds lower rewards: bench/RESULTS.md).
   */
  replacement?: boolean;
  /**
   * Tournament pool: 'all' (default with rollout scoring, as the reference) — every trajectory scored
   * through the level, earlier generations included; 'latest' — the elites and the latest children
   * (the only pool when scoring by x̂0).
   */
  pool?: 'all' | 'latest';
  /** Initial-noise mutation strength (default 0.2). */
  beta?: number;
  /** Multiplier of the SDE noise std for intermediate-state mutation (default 1). */
  mutationScale?: number;
  /** Intermediate-state mutation: 'sde' (default, keeps the noise level) or 'additive' (x + σ_t·ε). */
  mutation?: 'sde' | 'additive';
  /** How to score intermediate generations: roll out to σ = 0 (default, as the reference) or use x̂0. */
  scoreBy?: 'rollout' | 'x0';
}

/** Members at one schedule level: their states, the x̂0 predicted there (when known), ids and rewards. */
interface Pool {
  level: number;
  x: Tensor;
  x0: Tensor | null;
  ids: number[];
  rewards: Float32Array;
}

const REFERENCE_FRACTIONS = [0, 0.4, 0.6, 0.8];
const REFERENCE_SIZES = [42, 26, 26, 26, 30];
/** Noise step of the without-replacement tournament draws (mutations use 100 + g). */
const TOURNAMENT_STEP = 200;

/** The reference's levels as fractions of S: distinct indices below S (few steps merge them; at least [0]). */
export function defaultLevels(S: number): number[] {
  return [...new Set(REFERENCE_FRACTIONS.map((f) => Math.round(f * S)))].filter((L) => L < S);
}

/** Entrants of one tournament over a pool of P: ⌊fraction·P⌋ (the reference's int(0.9·P)), at least 1. */
export function tournamentSize(fraction: number, P: number): number {
  return Math.max(1, Math.floor(fraction * P));
}

/** A plan: the evolution levels, the sizes K_0..K_G, the elites, and the sizes' scale when fitted to the budget. */
export interface EvoPlan {
  levels: number[];
  population: number[];
  elites: number;
  /** The reference sizes the population was scaled from (null: the caller set it). */
  base: number[] | null;
}

/**
 * The plan. Adaptive, with levels and sizes left to the budget: a first plan assumes the module's
 * maximum of steps, so when not even sizes of 1 fit, fewer generations (the last levels dropped).
 */
export function planEvoSearch(run: SearchRun, o: EvoSearchOptions): EvoPlan {
  if (o.levels || o.population || !run.adaptive) return planAt(run, o, o.levels ?? defaultLevels(run.steps));
  for (let levels = defaultLevels(run.steps); ; levels = levels.slice(0, -1)) {
    try {
      return planAt(run, o, levels);
    } catch (e) {
      if (!(levels.length > 1 && isDiffusionSearchError(e, 'BUDGET'))) throw e;
    }
  }
}

function planAt(run: SearchRun, o: EvoSearchOptions, at: number[]): EvoPlan {
  const levels = checkLevels(run, at);
  const cost = (pop: number[], E: number) => planCost(run, levels, pop, E, o);
  let population = o.population,
    elites = o.elites,
    base: number[] | null = null;
  if (population) {
    if (population.length !== levels.length + 1)
      throw argument(`population needs ${levels.length + 1} sizes (one per generation), got ${population.length}`);
    if (!population.every((k) => Number.isInteger(k) && k >= 1))
      throw argument('population sizes must be positive integers');
    elites ??= Math.min(5, Math.min(...population) - 1);
  } else {
    base = [REFERENCE_SIZES[0], ...levels.map((_, g) => REFERENCE_SIZES[Math.min(g + 1, REFERENCE_SIZES.length - 1)])];
    const E = (p: number[]) => elites ?? Math.min(5, Math.min(...p) - 1);
    // Sizes of 2 at least (one elite and one child); of 1 when only those fit.
    const fits = (p: number[]) => cost(p, E(p)) <= run.budget.total;
    population = fitScale(base, 2, fits);
    if (!fits(population)) population = fitScale(base, 1, fits);
    elites = E(population);
  }
  if (!(Number.isInteger(elites) && elites >= 0)) throw argument('elites must be a non-negative integer');
  checkElites(elites, population, o.population === undefined);
  run.require(cost(population, elites), `the evolution plan (sizes [${population}], levels [${levels}])`);
  return { levels, population, elites, base };
}

function argument(message: string): DiffusionSearchError {
  return new DiffusionSearchError(`evosearch: ${message}`, 'ARGUMENT');
}

function checkLevels(run: SearchRun, levels: number[]): number[] {
  if (levels.length === 0 || levels[0] !== 0)
    throw argument('the evolution schedule must start at level 0 (pure noise)');
  for (let i = 1; i < levels.length; i++)
    if (!(Number.isInteger(levels[i]) && levels[i] > levels[i - 1] && levels[i] < run.steps))
      throw argument(`levels must be increasing schedule indices below ${run.steps}, got [${levels}]`);
  return levels;
}

/**
 * Elites pass from one generation into the next beside children: below each later generation's
 * size and no more than the one before. The message names the most allowed and both fixes.
 */
function checkElites(elites: number, pop: number[], fitted: boolean): void {
  const most = Math.min(Math.min(...pop.slice(1)) - 1, Math.min(...pop.slice(0, -1)));
  if (elites <= most) return;
  const raise = fitted ? 'raise the budget (the population is fitted to it) or set population' : 'raise population';
  throw argument(
    `elites must be below the smallest population size after the first and at most the one before ` +
      `(here at most ${most}, population [${pop}]), got ${elites}: lower elites or ${raise}`,
  );
}

/** The base sizes scaled by the largest factor that `fits` (at least `least` each). */
function fitScale(base: number[], least: number, fits: (p: number[]) => boolean): number[] {
  const sizes = (f: number) => base.map((k) => Math.max(least, Math.round(k * f)));
  let lo = 0.01,
    hi = 50;
  for (let it = 0; it < 60; it++) {
    const mid = (lo + hi) / 2;
    if (fits(sizes(mid))) lo = mid;
    else hi = mid;
  }
  return sizes(lo);
}

/**
 * NFE of a whole plan. Rollout scoring captures later states and their x̂0 on the way (no
 * advancing cost, and the 'sde' mutation needs no model call): a rollout from level L walks the
 * schedule to the last level, then to σ = 0 (with an adaptive schedule only that last part is
 * adaptive, planned at `steps`: SearchRun.plannedSteps by default).
 */
function planCost(run: SearchRun, levels: number[], pop: number[], E: number, o: EvoSearchOptions, from = 0): number {
  if (o.scoreBy !== 'x0')
    return pop.reduce((s, _, g) => s + (g >= from ? generationCost(run, levels, pop, E, o, g) : 0), 0);
  // x̂0 scoring: one evaluation per new member; at each later level the population is advanced
  // there and scored again; the last population is rolled out.
  let nfe = pop[0] * run.evalCost(1);
  for (let g = 1; g < pop.length; g++) {
    if (g > 1) nfe += pop[g - 1] * (run.rolloutCost(1, levels[g - 2], levels[g - 1]) + run.evalCost(1));
    nfe += (pop[g] - E) * run.evalCost(1);
  }
  return nfe + pop[pop.length - 1] * run.rolloutCost(1, levels[levels.length - 1]);
}

/** NFE of generation g with rollout scoring: K_0 new trajectories, or K_g − E children at level L_{g−1}. */
function generationCost(run: SearchRun, levels: number[], pop: number[], E: number, o: EvoSearchOptions, g: number) {
  const sde = (o.mutation ?? 'sde') === 'sde';
  const last = levels[levels.length - 1];
  const toZero = run.adaptive ? run.evalCost(1) * run.plannedSteps : run.rolloutCost(1, last);
  const rollout = (L: number) => run.rolloutCost(1, L, last) + toZero;
  if (g === 0) return pop[0] * rollout(0);
  const L = levels[g - 1];
  // Where no trajectory predicts x̂0 at the level, the 'sde' mutation predicts it for the parents.
  const predicted = sde && L > 0 && !capturesX0(run, L, last) ? run.evalCost(1) : 0;
  return Math.max(0, pop[g] - E) * (rollout(L) + predicted);
}

/**
 * An adaptive plan fitted to the budget, re-fitted before generation g to the budget left, its
 * rollouts planned at the steps the module took so far (SearchRun.plannedSteps): the sizes of
 * generations g..G scaled together, the last one filled with what is left. Null when not even
 * one child per generation fits (the search ends there).
 */
function refit(run: SearchRun, plan: EvoPlan, o: EvoSearchOptions, g: number): number[] | null {
  const { levels, population, elites: E, base } = plan;
  const left = run.budget.remaining;
  const fits = (p: number[]) => planCost(run, levels, p, E, o, g) <= left;
  const rest = fitScale(base!.slice(g), E + 1, (p) => fits([...population.slice(0, g), ...p]));
  const pop = [...population.slice(0, g), ...rest];
  if (!fits(pop)) return null;
  const G = pop.length - 1;
  const more = largestFitting((k) => planCost(run, levels, [...pop.slice(0, G), pop[G] + k], E, o, g), left, 0);
  pop[G] += more ?? 0;
  return pop;
}

/**
 * Whether a trajectory passing level L predicts x̂0 there with a fixed step of the schedule: not
 * at the last step, and not where an adaptive rollout begins (the last level).
 */
function capturesX0(run: SearchRun, L: number, last: number): boolean {
  return L + 1 < run.steps && !(run.config.adaptive && L === last);
}

export function evoSearch(config: SearchConfig, options: EvoSearchOptions = {}): Promise<SearchResult> {
  return withRun('evosearch', config, async (run) => {
    const plan = planEvoSearch(run, options);
    const o = checkOptions(options);
    const { levels, elites } = plan;
    using s = new TensorScope(); // the members (their pools)
    const byX0 = options.scoreBy === 'x0';
    const members: Members = s.track(byX0 ? new Predicted(run) : new Trajectories(run, levels, o.pool));
    // What generation g leaves for the later ones: their plan (adaptive rollouts are capped to keep it).
    const reserve = (g: number) => planCost(run, levels, plan.population, elites, options, g + 1);
    const r0 = await firstGeneration(run, members, plan.population[0], reserve(0));
    run.record({ round: 0, sigma: 1, population: plan.population[0], mean: mean(r0), generationBest: max(r0) });
    for (let g = 1; g < plan.population.length; g++) {
      run.checkAbort();
      if (!replan(run, plan, options, g)) break;
      const L = levels[g - 1];
      // This generation's pool and children, freed also when a cancellation rejects a model call.
      using t = new TensorScope();
      const pool = t.track(await members.poolAt(L));
      const eliteIdx = topIndices(pool.rewards, Math.min(elites, pool.ids.length));
      const childIds = run.ids(plan.population[g] - eliteIdx.length);
      const parents = await tournaments(run, pool, childIds, o, g);
      const children = t.track(await mutate(run, pool, parents, { ids: childIds, step: 100 + g }, o));
      const rewards = await members.add(children, childIds, L, reserve(g));
      await members.keep(pool, eliteIdx, childIds);
      const generation = [...eliteIdx.map((i) => pool.rewards[i]), ...rewards];
      run.record({
        round: g,
        sigma: run.sigmas[L],
        level: L,
        population: generation.length,
        pool: pool.ids.length,
        mean: mean(generation),
        generationBest: max(generation),
        elites: eliteIdx.length,
      });
    }
    await members.finish();
    return run.finish({ steps: run.steps });
  });
}

/** Generation 0: K_0 noises, scored. */
async function firstGeneration(run: SearchRun, members: Members, k: number, reserve: number): Promise<Float32Array> {
  using s = new TensorScope();
  const first = s.track(await run.noise(k));
  return await members.add(first.x, first.ids, 0, reserve);
}

/**
 * An adaptive plan fitted to the budget is fitted again before each generation, by the steps the
 * module took (the first plan assumed its maximum); false when the budget left pays for no child.
 */
function replan(run: SearchRun, plan: EvoPlan, o: EvoSearchOptions, g: number): boolean {
  if (!run.adaptive || !plan.base || o.scoreBy === 'x0') return true;
  const pop = refit(run, plan, o, g);
  if (pop) plan.population = pop;
  return pop !== null;
}

interface Checked {
  beta: number;
  fraction: number;
  replacement: boolean;
  scale: number;
  mutation: 'sde' | 'additive';
  pool: 'all' | 'latest';
}

function checkOptions(options: EvoSearchOptions): Checked {
  const beta = options.beta ?? 0.2;
  const bad = (message: string) => new DiffusionSearchError(`evosearch: ${message}`, 'ARGUMENT');
  if (!(beta > 0 && beta <= 1)) throw bad(`beta must be in (0, 1], got ${beta}`);
  const fraction = options.tournament ?? 0.9;
  if (!(fraction > 0 && fraction <= 1)) throw bad(`tournament must be in (0, 1], got ${fraction}`);
  const mutation = options.mutation ?? 'sde';
  if (mutation !== 'sde' && mutation !== 'additive')
    throw bad(`mutation must be 'sde' or 'additive', got '${String(mutation)}'`);
  const x0 = options.scoreBy === 'x0';
  const pool = options.pool ?? (x0 ? 'latest' : 'all');
  if (pool !== 'all' && pool !== 'latest') throw bad(`pool must be 'all' or 'latest', got '${String(pool)}'`);
  if (x0 && pool === 'all') throw bad("scoring by x̂0 keeps no trajectories to pool: pool 'latest' only");
  const scale = options.mutationScale ?? 1;
  return { beta, fraction, replacement: options.replacement ?? false, scale, mutation, pool };
}

/**
 * One tournament per child over the pool (elites included): the best of tournamentSize entrants
 * (drawn without replacement by default). Returns parent indices.
 */
async function tournaments(run: SearchRun, pool: Pool, childIds: number[], o: Checked, g: number): Promise<number[]> {
  const P = pool.ids.length,
    n = childIds.length;
  const size = tournamentSize(o.fraction, P);
  using s = new TensorScope();
  if (o.replacement) {
    const fitness = s.track(floatTensor(pool.rewards, pool.x.device));
    const t = await s.track(ops.tournamentSelect(fitness, n, { size, seed: run.seed, step: g, stream: run.stream }));
    return Array.from((await t.toArray(run.stream)) as BigInt64Array, Number);
  }
  // Without replacement: each child's entrants are the members with its `size` smallest uniform keys.
  const m = Math.min(P, size);
  const noise = { seed: run.seed, ids: childIds, step: TOURNAMENT_STEP + g, stream: run.stream };
  const u = await s.track(ops.uniform([n, P], noise));
  const keys = (await u.toArray(run.stream)) as Float32Array;
  return childIds.map((_, c) => {
    const row = keys.subarray(c * P, (c + 1) * P);
    const entrants = Array.from({ length: P }, (_, i) => i)
      .sort((a, b) => row[a] - row[b] || a - b)
      .slice(0, m);
    const r = pool.rewards;
    return entrants.reduce((best, i) => (r[i] > r[best] || (r[i] === r[best] && i < best) ? i : best));
  });
}

/** Children of the parents at the pool's level: Gaussian-preserving at σ = 1, else intermediate. */
function mutate(
  run: SearchRun,
  pool: Pool,
  parents: number[],
  at: { ids: number[]; step: number },
  o: Checked,
): Promise<Tensor> {
  const noise = { seed: run.seed, ids: at.ids, step: at.step, stream: run.stream };
  if (pool.level === 0) return ops.mutateGaussian(pool.x, parents, o.beta, noise);
  const std = o.scale * mutationStd(run, pool.level);
  if (o.mutation === 'additive') return ops.mutateAdditive(pool.x, parents, std, noise);
  return mutateSde(run, pool, parents, std, noise);
}

/** The SDE (η = 1) noise std of the step into level L: how far an intermediate state may move. */
function mutationStd(run: SearchRun, L: number): number {
  const from = run.sigmas[L - 1],
    to = run.sigmas[L];
  const { a: af } = pathCoefficients(run.denoiser.path, from);
  const { a: at } = pathCoefficients(run.denoiser.path, to);
  const ratio = (af * to) / (at * from);
  return to * Math.sqrt(Math.max(0, 1 - ratio * ratio));
}

/**
 * x − (σ − r)·ε̂ + s·ε with r = √(σ² − s²): the child keeps the noise level σ. With
 * ε̂ = (x − a·x̂0)/σ (x = a·x̂0 + σ·ε̂ on the path) that is (r/σ)·x + (a·(σ − r)/σ)·x̂0 + s·ε, from
 * the x̂0 the parent's trajectory predicted at this level; predicted here only where none did.
 */
async function mutateSde(
  run: SearchRun,
  pool: Pool,
  parents: number[],
  std: number,
  noise: ops.NoiseOptions,
): Promise<Tensor> {
  const sigma = run.sigmas[pool.level];
  const s = Math.min(std, sigma),
    r = Math.sqrt(sigma * sigma - s * s);
  const a = pathCoefficients(run.denoiser.path, sigma).a;
  using scope = new TensorScope();
  const { x, x0, rows } = await withX0(run, pool, parents, scope);
  const n = x.shape[0];
  const [cx, cx0] = [new Array(n).fill(r / sigma), new Array(n).fill((a * (sigma - r)) / sigma)];
  const base = await scope.track(axpby(x, x0, cx, cx0, run.stream));
  return await ops.mutateAdditive(base, rows, s, noise);
}

/**
 * States and their x̂0 (the pool's, or the distinct parents' predicted now, held by `scope`), and
 * the parents' rows in them.
 */
async function withX0(
  run: SearchRun,
  pool: Pool,
  parents: number[],
  scope: TensorScope,
): Promise<State & { x0: Tensor; rows: number[] }> {
  if (pool.x0) return { x: pool.x, x0: pool.x0, rows: parents };
  const distinct = [...new Set(parents)];
  const x = await scope.track(gather(pool.x, distinct, run.stream));
  const { x0 } = scope.track(await run.predict(x, run.sigmas[pool.level]));
  return { x, x0, rows: parents.map((p) => distinct.indexOf(p)) };
}

/** The members a search keeps: where new ones are scored, and the pool of each generation. */
interface Members {
  /**
   * Scores new members (states at `level`); returns their rewards. `reserve`: NFE to leave for the
   * later generations (adaptive rollouts are capped to it).
   */
  add(x: Tensor, ids: number[], level: number, reserve: number): Promise<Float32Array>;
  /** The pool of the generation at level L (the caller disposes it). */
  poolAt(L: number): Promise<Pool>;
  /** After a generation: its elites (rows of the pool) and children are the next population. */
  keep(pool: Pool, eliteIdx: number[], childIds: number[]): Promise<void>;
  /** Makes real samples of what was scored only by x̂0. */
  finish(): Promise<void>;
  dispose(): void;
}

/**
 * Rollout scoring: every trajectory is kept at each later evolution level (state, x̂0, reward)
 * until that level's generation, as the reference keeps every rollout in each level's pool.
 */
class Trajectories implements Members {
  private readonly pools = new Map<number, Pool>();
  /** 'latest' pools: the ids of the elites and the latest children. */
  private latest: Set<number> | null = null;
  /** Levels whose generation has run: their pools are gone. */
  private evolved = -1;

  constructor(
    private readonly run: SearchRun,
    private readonly levels: number[],
    private readonly pool: 'all' | 'latest',
  ) {}

  async add(x: Tensor, ids: number[], level: number, reserve: number): Promise<Float32Array> {
    const last = this.levels[this.levels.length - 1];
    const capture = this.levels.filter((l) => l > level);
    const withX0 = (L: number) => capturesX0(this.run, L, last);
    using s = new TensorScope(); // the captured states: the pools take copies
    const { rewards, states } = await rollout(this.run, x, ids, level, { capture, withX0, reserve }, s);
    if (level > this.evolved) states.set(level, { x: await s.track(cat([x], this.run.stream)), x0: null });
    for (const [L, st] of states) await this.append({ level: L, ...st, ids, rewards });
    return rewards;
  }

  private async append(p: Pool): Promise<void> {
    const old = this.pools.get(p.level);
    using s = new TensorScope();
    const join = (a: Tensor | null, b: Tensor | null) => (a && b ? s.track(cat([a, b], this.run.stream)) : null);
    const copy = (a: Tensor | null) => (a ? s.track(cat([a], this.run.stream)) : null);
    const next: Pool = old
      ? {
          level: p.level,
          x: (await join(old.x, p.x))!,
          x0: await join(old.x0, p.x0),
          ids: [...old.ids, ...p.ids],
          rewards: Float32Array.from([...old.rewards, ...p.rewards]),
        }
      : { ...p, x: (await copy(p.x))!, x0: await copy(p.x0) };
    this.pools.set(p.level, s.keep(next));
    s.track(old); // merged into next: freed as this ends
  }

  async poolAt(L: number): Promise<Pool> {
    // Every level has a pool: generation 0's trajectories pass through them all.
    const pool = this.pools.get(L)!;
    this.pools.delete(L);
    this.evolved = L;
    if (this.pool === 'all' || !this.latest) return pool;
    using s = new TensorScope();
    s.track(pool); // only the latest members' rows leave
    const rows = pool.ids.flatMap((id, i) => (this.latest!.has(id) ? [i] : []));
    return await gatherPool(this.run, pool, rows);
  }

  async keep(pool: Pool, eliteIdx: number[], childIds: number[]): Promise<void> {
    this.latest = new Set([...eliteIdx.map((i) => pool.ids[i]), ...childIds]);
  }

  async finish(): Promise<void> {}

  dispose(): void {
    for (const p of this.pools.values()) disposePool(p);
    this.pools.clear();
  }
}

/**
 * x̂0 scoring: the population (elites and latest children) at one level. Brought to a new level,
 * it is scored there again, so that elites and children are compared at the same level.
 */
class Predicted implements Members {
  private pop: Pool | null = null;
  private children: Pool | null = null;
  private started = false;

  constructor(private readonly run: SearchRun) {}

  async add(x: Tensor, ids: number[], level: number): Promise<Float32Array> {
    const scored = await this.score(await cat([x], this.run.stream), ids, level);
    // Generation 0 is the first population; later members are children until keep().
    if (this.started) this.children = scored;
    else this.pop = scored;
    this.started = true;
    return scored.rewards;
  }

  /** Scores states at `level` by the x̂0 predicted there (takes x). */
  private async score(x: Tensor, ids: number[], level: number): Promise<Pool> {
    using s = new TensorScope();
    s.track(x); // taken: freed if scoring fails
    const { x0 } = s.track(await this.run.predict(x, this.run.sigmas[level]));
    const rewards = await this.run.scorePredictions(x0);
    return s.keep({ level, x, x0, ids, rewards: Float32Array.from(rewards) });
  }

  async poolAt(L: number): Promise<Pool> {
    const pop = this.pop!;
    this.pop = null;
    if (pop.level === L) return pop;
    using s = new TensorScope();
    s.track(pop); // replaced by its states at L
    const r = s.track(await this.run.advance(pop.x, pop.ids, pop.level, L));
    return await this.score(s.keep(r.x), pop.ids, L);
  }

  async keep(pool: Pool, eliteIdx: number[]): Promise<void> {
    const kids = this.children!;
    this.children = null;
    if (eliteIdx.length === 0) {
      this.pop = kids;
      return;
    }
    using s = new TensorScope();
    s.track(kids); // merged with the elites into the next population
    const elites = s.track(await gatherPool(this.run, pool, eliteIdx));
    const x = await s.track(cat([elites.x, kids.x], this.run.stream));
    const x0 = await s.track(cat([elites.x0!, kids.x0!], this.run.stream));
    const ids = [...elites.ids, ...kids.ids];
    const rewards = Float32Array.from([...elites.rewards, ...kids.rewards]);
    this.pop = s.keep({ level: kids.level, x, x0, ids, rewards });
  }

  async finish(): Promise<void> {
    const pop = this.pop!;
    using s = new TensorScope();
    s.track(await this.run.rolloutAndScore(pop.x, pop.ids, pop.level));
  }

  dispose(): void {
    for (const p of [this.pop, this.children]) if (p) disposePool(p);
    this.pop = this.children = null;
  }
}

type State = { x: Tensor; x0: Tensor | null };

/**
 * Rolls x (at `level`) out to σ = 0 and scores it, capturing each trajectory's state at the
 * `capture` levels and, where `withX0` allows, the x̂0 predicted there by the step that leaves the
 * level (the rollout runs in segments; the one holding the σ ≈ 0.4 step returns the mid prediction).
 * Adaptive rollouts are capped so that `reserve` NFE stay in the budget. The states belong to `owner`.
 */
async function rollout(
  run: SearchRun,
  x: Tensor,
  ids: number[],
  level: number,
  { capture, withX0, reserve }: { capture: number[]; withX0: (L: number) => boolean; reserve: number },
  owner: TensorScope,
): Promise<{ rewards: Float32Array; states: Map<number, State> }> {
  const states = new Map<number, State>();
  using s = new TensorScope(); // states between the captured levels, the mid prediction, the samples
  let cur = x,
    at = level,
    mid: Tensor | null = null;
  /** Takes cur to level `to`; with `x0`, the x̂0 of its last step (a copy of the mid one if that is the 0.4 step). */
  const advance = async (to: number, x0: boolean): Promise<Tensor | null> => {
    using step = new TensorScope();
    const r = step.track(await run.advance(cur, ids, at, to, { start: level }));
    if (r.x0Mid) mid = s.track(step.keep(r.x0Mid));
    cur = s.replace(cur, step.keep(r.x)); // frees a state no level captured
    at = to;
    if (!x0) return null;
    return r.x0 ? step.keep(r.x0) : await cat([r.x0Mid!], run.stream);
  };
  for (const L of capture) {
    if (at < L) await advance(L, false);
    const state: State = { x: owner.track(s.keep(cur)), x0: null };
    states.set(L, state);
    if (withX0(L)) state.x0 = owner.track(await advance(L + 1, true));
  }
  // Capped where the steps are spent, so what the later generations were planned with stays.
  const maxSteps = run.adaptive ? run.adaptiveCap(ids.length, reserve) : undefined;
  const { rewards } = s.track(await run.rolloutAndScore(cur, ids, at, { start: level, x0Mid: mid, maxSteps }));
  return { rewards, states };
}

async function gatherPool(run: SearchRun, p: Pool, rows: number[]): Promise<Pool> {
  using s = new TensorScope();
  const x = await s.track(gather(p.x, rows, run.stream));
  const x0 = p.x0 && (await gather(p.x0, rows, run.stream));
  const rewards = Float32Array.from(rows, (i) => p.rewards[i]);
  return { level: p.level, x: s.keep(x), x0, ids: rows.map((i) => p.ids[i]), rewards };
}

function disposeState(s: State): void {
  if (!s.x.disposed) s.x.dispose();
  if (s.x0 && !s.x0.disposed) s.x0.dispose();
}

function disposePool(p: Pool): void {
  disposeState(p);
}
