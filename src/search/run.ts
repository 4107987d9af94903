/**
 * The shared machinery of a search: the budget, rollouts along the schedule, scoring, the
 * best-so-far archive, the trace, progress and cancellation. Algorithms are written on top of it
 * and stay short.
 */
import { DiffusionSearchError } from '../errors';
import type { NativeTensor } from '../native';
import * as ops from '../ops';
import { stepCost, stepper, type SamplerName, type StepContext } from '../samplers';
import { validateSchedule } from '../schedules';
import { adaptiveSettings, checkAdaptiveDenoiser, sampleAdaptive } from '../samplers/adaptive';
import { slice } from '../tensor-ops';
import { TensorScope } from '../tensor-scope';
import { verifierForSearch } from '../verifiers/ensemble';
import { checkScores, scoreGuarded } from '../verifiers/verifier';
import { STEP_POOL } from '../request/defaults';
import { Budget } from './budget';
import type { Pool } from './pool';
import { candidatePool } from './tilt';
import { argmax, PreviewSlot } from './preview';
import type { SearchConfig, SearchResult, TraceEntry } from './types';

type Tensor = NativeTensor;
/** A kept sample, with the decoded image its verifier scored (latent models, config.keepImages). */
type Kept = { sample: Tensor; reward: number; steps?: number; image?: Tensor };

export class SearchRun {
  readonly budget: Budget;
  readonly sigmas: readonly number[];
  readonly sampler: SamplerName;
  readonly guidance: number;
  readonly seed: ops.Seed;
  readonly trace: TraceEntry[] = [];
  readonly rewards: number[] = [];
  /** Steps each scored sample took, for adaptive rollouts. */
  readonly stepsTaken: number[] = [];
  private readonly start = performance.now();
  private nextId = 0;
  /** The K best distinct samples scored so far, best first (K = config.keep, default 1). */
  private top: Kept[] = [];
  readonly keep: number;
  private midIndex: number;
  /** Every distinct sample scored (diversity), or the draws from the tilted target (alpha); else null. */
  private pool: Pool | null;
  /** The adaptive sampler's settings (with an adaptive schedule), checked up front. */
  readonly adaptive: ReturnType<typeof adaptiveSettings> | null;
  /** Adaptive steps the module took per sample (its rollouts to σ = 0): what plans after the first rollout read. */
  private readonly measured = { count: 0, min: Infinity, max: 0 };
  /** The current best x̂0 for progress events (config.previewGate). */
  private readonly preview: PreviewSlot;

  constructor(
    readonly algorithm: string,
    readonly config: SearchConfig,
  ) {
    // A verifier with per-search state (a rank ensemble's calibration) starts fresh in each search.
    this.config = { ...config, verifier: verifierForSearch(config.verifier, { nanAsNegInf: config.nanAsNegInf }) };
    this.budget = new Budget(config.budget, config.signal);
    this.sigmas = validateSchedule(config.sigmas);
    this.sampler = config.sampler ?? 'euler';
    this.guidance = config.guidance ?? 1;
    this.seed = config.seed ?? 0;
    this.keep = config.keep ?? 1;
    if (!Number.isInteger(this.keep) || this.keep < 1)
      throw new DiffusionSearchError(`keep must be a positive integer, got ${config.keep}`, 'ARGUMENT');
    this.pool = candidatePool(algorithm, this.config, this.keep, this.seed);
    const classes = config.denoiser.classes ?? [];
    const count = Math.max(1, classes.length); // an unconditional model takes class 0 (ignored)
    if (config.denoiser.conditions) {
      if (!config.denoiser.conditions.has(config.cls))
        throw new DiffusionSearchError(
          `condition ${config.cls} is not registered with '${config.denoiser.name}' (Denoiser.registerCondition, ` +
            `or generate's prompt)`,
          'ARGUMENT',
        );
    } else if (!Number.isInteger(config.cls) || config.cls < 0 || config.cls >= count)
      throw new DiffusionSearchError(`class ${config.cls} is not one of the model's ${count} classes`, 'ARGUMENT');
    // The step whose σ is closest to 0.4: where the self-supervised verifier takes its x̂0.
    let mid = 0;
    this.sigmas.forEach((s, i) => (Math.abs(s - 0.4) < Math.abs(this.sigmas[mid] - 0.4) ? (mid = i) : 0));
    this.midIndex = Math.min(mid, this.sigmas.length - 2);
    this.adaptive = config.adaptive ? adaptiveSettings(config.adaptive.predictor, config.adaptive) : null;
    const dec = config.denoiser.decoder;
    const range = (dec ? dec.spec.value_range : config.denoiser.card.value_range) ?? null;
    this.preview = new PreviewSlot(config.previewGate, range, config.stream);
    if (config.adaptive) {
      // Rollouts to σ = 0 step with the module's rule (its solver); a sampler other than Euler would be ignored.
      if (this.sampler !== 'euler')
        throw new DiffusionSearchError(
          `${algorithm}: the adaptive schedule steps with its module's rule (solver euler or ab2); ` +
            `sampler '${this.sampler}' does not apply: use euler or a fixed schedule`,
          'ARGUMENT',
        );
      checkAdaptiveDenoiser(config.denoiser);
    }
  }

  get denoiser() {
    return this.config.denoiser;
  }
  get stream() {
    return this.config.stream;
  }
  /** Steps of the schedule. */
  get steps(): number {
    return this.sigmas.length - 1;
  }

  /** Fresh sample ids: each new noise draw in a run gets its own, so runs are reproducible. */
  ids(n: number): number[] {
    const out = Array.from({ length: n }, (_, i) => this.nextId + i);
    this.nextId += n;
    return out;
  }

  checkAbort(): void {
    if (this.config.signal?.aborted)
      throw new DiffusionSearchError(`search cancelled after ${this.budget.used} NFE`, 'ABORTED', {
        cause: this.config.signal.reason,
      });
  }

  /** NFE of one model evaluation of `rows` samples. */
  evalCost(rows: number): number {
    return this.denoiser.cost(rows, this.guidance);
  }

  /** NFE of rolling `rows` samples out from schedule index `from` to index `to` (default: the end). */
  rolloutCost(rows: number, from: number, to = this.steps): number {
    // An adaptive rollout to σ = 0 takes at most maxSteps steps per sample.
    if (this.adaptive && to === this.steps) return this.evalCost(rows) * this.adaptive.maxSteps;
    let nfe = 0;
    for (let i = from; i < to; i++)
      nfe += stepCost(this.sampler, rows, new Array(rows).fill(this.sigmas[i + 1]), (n) => this.evalCost(n));
    return nfe;
  }

  /**
   * Steps per sample that a plan of more adaptive rollouts assumes: the most the module took so far
   * (its maxSteps before it ran). Plans of the first rollouts take maxSteps, so they always fit.
   */
  get plannedSteps(): number {
    return this.measured.count ? this.measured.max : this.adaptive!.maxSteps;
  }

  /** The most steps each of `rows` adaptive rollouts may take so that they fit the budget left less `reserve`. */
  adaptiveCap(rows: number, reserve = 0): number {
    return Math.min(this.adaptive!.maxSteps, Math.floor((this.budget.remaining - reserve) / this.evalCost(rows)));
  }

  /**
   * How many of `want` new rollouts from index 0 the budget left pays for (0 when fewer than
   * `least`), and with an adaptive schedule the step cap to give them. Fixed schedule: whole
   * rollouts. Adaptive: rows planned at `plannedSteps`, each capped at its share of the budget
   * left (≥ plannedSteps); when not even `least` fit so, `least` rows still run if their share
   * pays for the fewest steps the module took: the budget's last trajectories, capped at what is
   * left (a capped sample takes its final step to σ = 0 there, as at maxSteps).
   */
  fitRollouts(want: number, least = 1): { rows: number; maxSteps?: number } {
    const left = this.budget.remaining;
    if (!this.adaptive) {
      const rows = Math.min(want, Math.floor(left / this.rolloutCost(1, 0))); // the cost is linear in rows
      return { rows: rows >= least ? rows : 0 };
    }
    const per = this.evalCost(1);
    let rows = Math.min(want, Math.floor(left / (per * this.plannedSteps)));
    if (rows < least) rows = least * per * this.measured.min <= left ? least : 0;
    return rows ? { rows, maxSteps: this.adaptiveCap(rows) } : { rows };
  }

  private measure(steps: ArrayLike<number>): void {
    for (let i = 0; i < steps.length; i++) {
      this.measured.count++;
      this.measured.min = Math.min(this.measured.min, steps[i]);
      this.measured.max = Math.max(this.measured.max, steps[i]);
    }
  }

  /** What one trajectory is, for budget messages. */
  get trajectoryText(): string {
    const a = this.adaptive;
    return a ? `one adaptive trajectory (up to ${a.maxSteps} steps)` : `one trajectory of ${this.steps} steps`;
  }

  /** Initial noise at σ = 1 for n new samples. */
  async noise(n: number, step = 0): Promise<{ x: Tensor; ids: number[] }> {
    const ids = this.ids(n);
    const x = await ops.randn([n, ...this.denoiser.sampleShape], {
      seed: this.seed,
      ids,
      step,
      device: this.denoiser.device,
      stream: this.stream,
    });
    return { x, ids };
  }

  stepContext(rows: number, ids: number[], step: number, eta = this.config.eta ?? 1): StepContext {
    return {
      denoiser: this.denoiser,
      cond: new Array(rows).fill(this.config.cls),
      guidance: this.guidance,
      meter: this.budget,
      stream: this.stream,
      eta,
      seed: this.seed,
      ids,
      step,
    };
  }

  /**
   * Takes x (at σ = sigmas[from]) to sigmas[to] along the schedule. Returns the state, the last
   * x̂0 prediction, the x̂0 at σ ≈ 0.4 when the verifier needs it and this segment holds it, and
   * the SDE noise std of the last step (for EvoSearch's mutation of intermediate states).
   * `start`: the schedule index where the samples' trajectories began (default `from`), for a
   * trajectory run in segments: only the segment that holds its σ ≈ 0.4 step returns x0Mid.
   */
  async advance(
    x: Tensor,
    ids: number[],
    from: number,
    to = this.steps,
    { own = false, start = from }: { own?: boolean; start?: number } = {},
  ): Promise<{ x: Tensor; x0: Tensor | null; x0Mid: Tensor | null; std: Float32Array | null }> {
    if (this.config.stepPool && this.sampler === 'euler' && to - from >= STEP_POOL.minSteps && x.shape[0] > 0)
      return this.pooled(x, from, to, own, start);
    const rows = x.shape[0];
    const step = stepper(this.sampler);
    using s = new TensorScope(); // the state and predictions of the last step; what is returned is kept
    let cur = own ? s.track(x) : x; // the caller's x is freed after the first step only when handed over (own)
    let x0: Tensor | null = null,
      x0Mid: Tensor | null = null,
      std: Float32Array | null = null;
    const wantMid = !!this.config.verifier.needsMidPrediction;
    for (let i = from; i < to; i++) {
      this.checkAbort();
      const [sFrom, sTo] = [new Array(rows).fill(this.sigmas[i]), new Array(rows).fill(this.sigmas[i + 1])];
      const r = s.track(await step(this.stepContext(rows, ids, 1000 + i), cur, sFrom, sTo));
      cur = s.replace(cur, r.x);
      std = r.std ?? null;
      // A trajectory that starts below σ ≈ 0.4 takes its first prediction as the mid one.
      if (wantMid && i === this.midStep(start)) x0Mid = s.replace(x0Mid, r.x0);
      else x0 = s.replace(x0, r.x0);
    }
    return s.keep({ x: cur, x0, x0Mid, std });
  }

  /** advance() by Euler in the engine's step pool: one step for every search's rows at a time. */
  private async pooled(x: Tensor, from: number, to: number, own: boolean, start: number) {
    using s = new TensorScope();
    if (own) s.track(x);
    const r = await this.config.stepPool!.euler({
      denoiser: this.denoiser,
      guidance: this.guidance,
      stream: this.stream,
      x,
      sigmas: this.sigmas,
      from,
      to,
      midAt: this.config.verifier.needsMidPrediction ? this.midStep(start) : -1,
      cond: this.config.cls,
      meter: this.budget,
      check: () => this.checkAbort(),
    });
    return { ...r, std: null };
  }

  /** The schedule index whose x̂0 is the mid prediction of a trajectory begun at `start`: σ closest to 0.4 on it. */
  midStep(start: number): number {
    return Math.max(this.midIndex, start);
  }

  /**
   * Rolls x out to σ = 0 and scores the samples; keeps the best in the archive. For the rest of
   * a trajectory run in segments: `start` is where it began and `x0Mid` (the caller's) its mid
   * prediction when an earlier segment took it.
   */
  async rolloutAndScore(
    x: Tensor,
    ids: number[],
    from: number,
    trajectory: { start?: number; x0Mid?: Tensor | null; maxSteps?: number } = {},
  ): Promise<{ rewards: Float32Array; final: Tensor }> {
    const start = trajectory.start ?? from;
    if (this.adaptive) return this.adaptiveRolloutAndScore(x, from, trajectory.x0Mid ?? null, trajectory.maxSteps);
    using s = new TensorScope();
    const r = s.track(await this.advance(x, ids, from, this.steps, { start }));
    const rewards = await this.score(r.x, trajectory.x0Mid ?? r.x0Mid ?? undefined);
    return { rewards, final: s.keep(r.x) };
  }

  /**
   * The adaptive rollout from schedule index `from`, each sample capped at `maxSteps` (default the
   * module's). A sample's steps are the `from` schedule steps before it plus the adaptive ones;
   * the mid prediction is `given` when the trajectory passed σ ≈ 0.4 before `from`, else the
   * adaptive sampler takes it.
   */
  private async adaptiveRolloutAndScore(
    x: Tensor,
    from: number,
    given: Tensor | null,
    maxSteps = this.adaptive!.maxSteps,
  ): Promise<{ rewards: Float32Array; final: Tensor }> {
    this.checkAbort();
    const a = this.config.adaptive!;
    const n = x.shape[0];
    const wantMid = !!this.config.verifier.needsMidPrediction && !given;
    using s = new TensorScope();
    const r = s.track(
      await sampleAdaptive(x, {
        denoiser: this.denoiser,
        predictor: a.predictor,
        cond: new Array(n).fill(this.config.cls),
        meter: this.budget,
        guidance: this.guidance,
        stream: this.stream,
        sigmaStart: this.sigmas[from],
        sigmaMin: a.sigmaMin,
        maxSteps: Math.min(maxSteps, this.adaptive!.maxSteps),
        solver: a.solver,
        midSigma: wantMid ? 0.4 : undefined,
        signal: this.config.signal,
      }),
    );
    this.measure(r.steps);
    const steps = Array.from(r.steps, (k) => from + k);
    const rewards = await this.score(r.x, given ?? r.x0Mid ?? undefined, steps);
    return { rewards, final: s.keep(r.x) };
  }

  /**
   * Scores samples with the verifier: its time is counted, NaN/∞ checked. Used alone for x̂0
   * predictions of intermediate states, which are not samples (no archive, no final rewards).
   */
  async scorePredictions(x0: Tensor, x0Mid?: Tensor): Promise<Float32Array> {
    // Before any sample is scored, the best prediction is the search's current best x̂0.
    const show = this.preview.wanted && this.top.length === 0;
    using s = new TensorScope();
    const { rewards, images } = s.track(await this.scoreDecoded(x0, x0Mid, show));
    if (show) await this.preview.offer(images ?? x0, argmax(rewards), max(rewards));
    return rewards;
  }

  /**
   * scorePredictions, and with `keepImages` a latent model's decoded batch (the caller disposes
   * it): the images the verifier scored, which a second decode in another batch size would not
   * reproduce bit for bit.
   */
  private async scoreDecoded(x0: Tensor, x0Mid: Tensor | undefined, keepImages: boolean) {
    const n = x0.shape[0];
    const v = this.config.verifier;
    const cond = new Array<number>(n).fill(this.config.cls);
    // A latent model's verifiers see images: decode first (decoder time is neither NFE nor verifier time).
    const dec = this.denoiser.decoder;
    using s = new TensorScope(); // decoded images and condition rows
    const img = dec ? await s.track(dec.decode(x0, this.stream)) : x0;
    const imgMid = dec && x0Mid ? await s.track(dec.decode(x0Mid, this.stream)) : x0Mid;
    let condition: Record<string, Tensor> | undefined;
    const specs = this.denoiser.conditionSpecs;
    if (v.needsCondition && specs) {
      const t = s.track(await this.denoiser.conditions!.inputs(cond, this.stream));
      condition = Object.fromEntries(specs.map((c, i) => [c.name, t[i]]));
    }
    const t0 = performance.now();
    const prompts = this.config.prompt === undefined ? null : new Array<string>(n).fill(this.config.prompt);
    const extras = { x0Mid: imgMid, stream: this.stream, signal: this.config.signal, condition, prompts };
    const raw = await scoreGuarded(v, img, cond, extras);
    this.budget.verifierSeconds += (performance.now() - t0) / 1000;
    if (raw.length !== n)
      throw new DiffusionSearchError(`verifier '${v.name}' returned ${raw.length} scores for ${n} samples`, 'SHAPE');
    const rewards = checkScores(v.name, Float32Array.from(raw), this.config.nanAsNegInf);
    return { rewards, images: keepImages && img !== x0 ? s.keep(img) : null };
  }

  /** Scores final samples; records them and updates the best-so-far (with its steps, if known). */
  async score(
    final: Tensor,
    x0Mid?: Tensor,
    steps?: ArrayLike<number>,
    weigh?: (rewards: Float32Array) => ArrayLike<number>,
  ): Promise<Float32Array> {
    using s = new TensorScope();
    const keepImages = !!this.config.keepImages;
    const { rewards, images } = s.track(await this.scoreDecoded(final, x0Mid, keepImages || !!this.pool));
    const n = final.shape[0];
    for (let i = 0; i < n; i++) this.rewards.push(rewards[i]);
    await this.archive(final, rewards, steps, keepImages ? images : null);
    const kept = keepImages ? images : null;
    const logWeights = weigh?.(rewards);
    await this.pool?.offer({ final, scored: images ?? final, images: kept, rewards, steps, logWeights });
    if (steps) for (let i = 0; i < n; i++) this.stepsTaken.push(steps[i]);
    return rewards;
  }

  /**
   * Keeps the K best distinct samples: a row enters when it beats the K-th kept reward (ties keep
   * the earlier sample) and is not bit-identical to a kept one (elites and resampled copies are
   * scored again; they must not fill the top-K twice). With `images`, its scored image beside it.
   */
  private async archive(final: Tensor, rewards: Float32Array, steps?: ArrayLike<number>, images?: Tensor | null) {
    const order = Array.from(rewards.keys()).sort((a, b) => rewards[b] - rewards[a] || a - b);
    const before = this.top[0];
    for (const i of order) {
      const r = rewards[i];
      if (this.top.length === this.keep && !(r > this.top[this.keep - 1].reward)) break;
      using s = new TensorScope(); // the row, until the archive takes it
      const sample = await s.track(slice(final, i, i + 1, this.stream));
      if (await this.isKept(sample, r)) continue;
      const image = images ? await s.track(slice(images, i, i + 1, this.stream)) : undefined;
      let at = this.top.findIndex((k) => r > k.reward);
      if (at < 0) at = this.top.length;
      this.top.splice(at, 0, s.keep({ sample, reward: r, steps: steps?.[i], image }));
      if (this.top.length > this.keep) disposeKept(this.top.pop()!);
    }
    const best = this.top[0];
    if (best && best !== before) await this.preview.offer(best.image ?? best.sample, 0, best.reward);
  }

  /** True when a kept sample has the same reward and the same values. */
  private async isKept(sample: Tensor, reward: number): Promise<boolean> {
    let values: Float32Array | null = null;
    for (const k of this.top) {
      if (k.reward !== reward) continue;
      values ??= (await sample.toArray(this.stream)) as Float32Array;
      const other = (await k.sample.toArray(this.stream)) as Float32Array;
      if (other.length === values.length && other.every((v, j) => Object.is(v, values![j]))) return true;
    }
    return false;
  }

  /** One model evaluation of x at the schedule level σ (the same for every row): x̂0 and ε̂. */
  predict(x: Tensor, sigma: number) {
    const n = x.shape[0];
    return this.denoiser.predict(
      x,
      new Array(n).fill(sigma),
      new Array(n).fill(this.config.cls),
      this.guidance,
      this.budget,
      this.stream,
    );
  }

  get bestReward(): number {
    return this.top[0]?.reward ?? -Infinity;
  }

  record(entry: {
    round: number;
    mean: number;
    best?: number;
    sigma?: number;
    population?: number;
    [key: string]: unknown;
  }): void {
    this.trace.push({
      ...entry,
      round: entry.round,
      mean: entry.mean,
      nfe: this.budget.used,
      best: entry.best ?? this.bestReward,
    });
    this.config.onProgress?.({
      algorithm: this.algorithm,
      nfe: this.budget.used,
      budget: this.budget.total,
      best: this.bestReward,
      elapsedSeconds: (performance.now() - this.start) / 1000,
      round: entry.round,
      preview: this.preview.take(),
    });
  }

  /**
   * Fails early, naming the minimum, when the budget cannot pay for `need` NFE. A search does not
   * know its entrance: the fix names the CLI flag and the request key.
   */
  require(need: number, what: string): void {
    if (need > this.budget.total) {
      const fewer = this.adaptive ? 'a lower step cap (--max-steps / "maxSteps")' : 'fewer steps (--steps / "steps")';
      throw new DiffusionSearchError(
        `${this.algorithm}: a budget of ${this.budget.total} NFE is too small: ${what} needs ${need} NFE: ` +
          `raise the budget (--budget / "budget") or use ${fewer}`,
        'BUDGET',
      );
    }
  }

  finish(extra: Partial<SearchResult> = {}): SearchResult {
    this.takePool();
    const best = this.top[0];
    if (!best) throw new DiffusionSearchError(`${this.algorithm}: no sample was scored`, 'BUDGET');
    const m = this.budget;
    return {
      algorithm: this.algorithm,
      sample: best.sample,
      reward: best.reward,
      top: this.top.map((k) => ({ ...k })),
      rewards: this.rewards,
      nfe: m.used,
      budget: m.total,
      wallSeconds: (performance.now() - this.start) / 1000,
      modelSeconds: m.modelSeconds,
      verifierSeconds: m.verifierSeconds,
      trace: this.trace,
      ...extra,
      // An adaptive run reports the steps its best sample took.
      ...(best.steps !== undefined ? { steps: best.steps } : {}),
    };
  }

  /** The pool's picks (diverse top-k, or draws from the tilted target) replace the archive's top-K. */
  private takePool(): void {
    const picks = this.pool?.take(this.keep) ?? [];
    this.pool = null;
    if (!picks.length) return;
    this.top.forEach(disposeKept);
    this.top = picks;
  }

  /** Releases the archive when a search fails. */
  dispose(): void {
    this.top.forEach(disposeKept);
    this.top = [];
    this.pool?.dispose();
    this.pool = null;
  }
}

function disposeKept(k: Kept): void {
  k.sample.dispose();
  k.image?.dispose();
}

export const mean = (xs: ArrayLike<number>) => {
  let s = 0;
  for (let i = 0; i < xs.length; i++) s += xs[i];
  return xs.length ? s / xs.length : NaN;
};
export const max = (xs: ArrayLike<number>) => {
  let m = -Infinity;
  for (let i = 0; i < xs.length; i++) if (xs[i] > m) m = xs[i];
  return m;
};

/** Runs an algorithm body with a SearchRun, releasing its archive if the body fails. */
export async function withRun(
  algorithm: string,
  config: SearchConfig,
  body: (run: SearchRun) => Promise<SearchResult>,
): Promise<SearchResult> {
  using s = new TensorScope(); // the archive, freed if the body fails; the result holds its samples
  const run = s.track(new SearchRun(algorithm, config));
  const result = await body(run);
  s.keep(run);
  return result;
}
