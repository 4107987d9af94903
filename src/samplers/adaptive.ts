/**
 * Adaptive denoising schedules (TPDM, arXiv 2412.01243): a Time Prediction Module reads the
 * denoiser's features at the current state and predicts Beta(α, β) over r = σ_next/σ. The sampler
 * takes the mode (α−1)/(α+β−2), clamps it to [r_min, r_max] and steps every sample from its own σ
 * to r·σ; a sample whose next σ would fall below σ_min, or that reaches its maximum of steps,
 * takes its final step to 0 and is done. Samples finish independently: the batch shrinks.
 *
 * The step rule (`solver`, from the card's sampler.solver unless given): 'euler' moves along the
 * velocity v; 'ab2' (second-order Adams–Bashforth with variable steps) along (1 + c)·v − c·v_prev,
 * c = min(h / 2h′, 1) with h, h′ this and the sample's previous step — one evaluation per step
 * like Euler, but second order: with 15–20 uniform steps it reaches a lower Fréchet distance than
 * Euler with 50 (docs/tpm). A sample's first step is Euler.
 *
 * One step = one denoiser evaluation of that sample = one NFE (two with classifier-free guidance),
 * charged to the meter before the model runs (Denoiser.evaluate). A sample never takes more
 * than maxSteps steps, whatever the modules return (NaN, ∞, r ≥ 1 …).
 *
 * The denoiser must export `forward_features(x, sigma, cond) -> (output, features[N, D])`; the
 * time predictor is any `TimePredictor` — `TimePredictionModule` wraps a TorchScript module with
 * `forward(features[N, D], sigma[N]) -> [N, 2] (α, β)` and its card (models/fashion-tpm.pt).
 */
import { DiffusionSearchError } from '../errors';
import { loadModule, type TorchModule } from '../module';
import { inferenceLoad } from '../models/inference-load';
import type { NativeStream, NativeTensor } from '../native';
import * as ops from '../ops';
import { axpby, cat, floatTensor, gather } from '../tensor-ops';
import { TensorScope, type Owned } from '../tensor-scope';
import { toX0Eps, type Denoiser, type NfeMeter } from '../models/denoiser';
import { pathCoefficients } from '../schedules/path';

type Tensor = NativeTensor;

/** Predicts Beta(α, β) over r = σ_next/σ from denoiser features (one row per sample). */
export interface TimePredictor {
  readonly name: string;
  /** α and β per row (both should be > 1). */
  predict(
    features: Tensor,
    sigma: ArrayLike<number>,
    stream?: NativeStream,
  ): Promise<{ alpha: Float32Array; beta: Float32Array }>;
  /** Defaults of the sampler that this predictor was trained with (from its card). */
  readonly defaults?: { sigmaMin?: number; maxSteps?: number; rRange?: [number, number]; solver?: AdaptiveSolver };
}

/** The step rule of the adaptive sampler (see the file's comment). */
export type AdaptiveSolver = 'euler' | 'ab2';
export const ADAPTIVE_SOLVERS: readonly AdaptiveSolver[] = ['euler', 'ab2'];
/**
 * AB2's extrapolation weight c = h / 2h′ is capped here: a step much longer than the one before would
 * amplify v − v_prev.
 */
export const AB2_C_MAX = 1;

/** The sampler defaults when neither the options nor the predictor's card give them. */
export const ADAPTIVE_DEFAULTS = {
  sigmaMin: 0.01,
  maxSteps: 60,
  rRange: [1e-3, 1 - 1e-3] as [number, number],
  solver: 'euler' as AdaptiveSolver,
};

/** The parts of a TPM card the sampler reads (the card is model.json inside the archive). */
export interface TpmCard {
  name: string;
  kind: string;
  feature_dim?: number;
  sampler?: { sigma_min?: number; max_steps?: number; r_range?: [number, number]; solver?: AdaptiveSolver };
  training?: { gamma?: number; iterations?: number; [key: string]: unknown };
  [key: string]: unknown;
}

function cardFail(file: string, what: string): never {
  throw new DiffusionSearchError(`TPM card of '${file}': ${what}`, 'MODEL_CARD');
}

/** Checks a TPM card: a name, and sane sampler defaults when present. */
export function validateTpmCard(json: Record<string, unknown> | null, file: string): TpmCard {
  if (!json) cardFail(file, 'the archive has no model.json');
  const c = json as Partial<TpmCard>;
  if (typeof c.name !== 'string' || !c.name) cardFail(file, 'needs a "name"');
  if (c.feature_dim !== undefined && !(Number.isInteger(c.feature_dim) && c.feature_dim > 0))
    cardFail(file, '"feature_dim" must be a positive integer');
  const s = c.sampler;
  if (s !== undefined) {
    if (typeof s !== 'object' || s === null) cardFail(file, '"sampler" must be an object');
    if (s.sigma_min !== undefined && !(s.sigma_min > 0 && s.sigma_min < 1))
      cardFail(file, '"sampler.sigma_min" must be in (0, 1)');
    if (s.max_steps !== undefined && !(Number.isInteger(s.max_steps) && s.max_steps >= 1))
      cardFail(file, '"sampler.max_steps" must be a positive integer');
    if (
      s.r_range !== undefined &&
      !(
        Array.isArray(s.r_range) &&
        s.r_range.length === 2 &&
        s.r_range[0] > 0 &&
        s.r_range[0] <= s.r_range[1] &&
        s.r_range[1] < 1
      )
    )
      cardFail(file, '"sampler.r_range" must be [r_min, r_max] with 0 < r_min <= r_max < 1');
    if (s.solver !== undefined && !ADAPTIVE_SOLVERS.includes(s.solver))
      cardFail(file, `"sampler.solver" must be one of ${ADAPTIVE_SOLVERS.join(', ')}, got ${JSON.stringify(s.solver)}`);
  }
  return { kind: 'tpm', ...c } as TpmCard;
}

/** A TorchScript Time Prediction Module: forward(features[N, D], sigma[N]) -> [N, 2] (α, β). */
export class TimePredictionModule implements TimePredictor {
  readonly card: TpmCard;
  readonly defaults: { sigmaMin?: number; maxSteps?: number; rRange?: [number, number]; solver?: AdaptiveSolver };

  constructor(readonly module: TorchModule) {
    this.card = validateTpmCard(module.card, module.path);
    if (!module.hasMethod('forward'))
      throw new DiffusionSearchError(`'${module.path}' has no forward method`, 'MODEL_LOAD');
    const s = this.card.sampler ?? {};
    this.defaults = { sigmaMin: s.sigma_min, maxSteps: s.max_steps, rRange: s.r_range, solver: s.solver };
  }

  static async load(file: string, options: { device?: string } = {}): Promise<TimePredictionModule> {
    return new TimePredictionModule(await loadModule(file, inferenceLoad(options.device)));
  }

  get name(): string {
    return this.card.name;
  }
  get featureDim(): number | undefined {
    return this.card.feature_dim;
  }
  /** γ of the reward it was trained with (undefined for a module that had no RL iterations). */
  get gamma(): number | undefined {
    const t = this.card.training;
    return t && t.iterations !== 0 ? t.gamma : undefined;
  }

  async predict(
    features: Tensor,
    sigma: ArrayLike<number>,
    stream?: NativeStream,
  ): Promise<{ alpha: Float32Array; beta: Float32Array }> {
    const n = features.shape[0];
    if (features.shape.length !== 2 || (this.featureDim !== undefined && features.shape[1] !== this.featureDim))
      throw new DiffusionSearchError(
        `'${this.module.path}' expects features [N, ${this.featureDim ?? 'D'}], got [${features.shape}] (is it the ` +
          'TPM of this denoiser?)',
        'SHAPE',
      );
    using s = new TensorScope();
    const levels = s.track(floatTensor(sigma, this.module.device));
    const t = (await this.module.call('forward', [features, levels], stream)) as Tensor;
    s.track(t as Owned);
    if (!t || typeof t !== 'object' || !('shape' in t) || t.shape.length !== 2 || t.shape[0] !== n || t.shape[1] !== 2)
      throw new DiffusionSearchError(
        `'${this.module.path}' forward must return [N, 2] (α, β); got ` +
          `${t && 'shape' in t ? `[${t.shape}]` : 'no tensor'}`,
        'SHAPE',
      );
    const ab = Float32Array.from((await t.toArray(stream)) as Float32Array);
    const alpha = new Float32Array(n),
      beta = new Float32Array(n);
    for (let i = 0; i < n; i++) (alpha[i] = ab[2 * i]), (beta[i] = ab[2 * i + 1]);
    return { alpha, beta };
  }

  dispose(): void {
    this.module.dispose();
  }
}

/**
 * r from (α, β): the mode (α−1)/(α+β−2) clamped to [rMin, rMax]. Degenerate predictions never
 * stall or crash the sampler: α = β = 1 (no mode) gives the mean 1/2, anything non-finite or
 * below 1 gives rMax (the smallest step; the maximum of steps still ends the sample).
 */
export function betaMode(alpha: number, beta: number, rMin: number, rMax: number): number {
  let r: number;
  if (!(Number.isFinite(alpha) && Number.isFinite(beta)) || alpha < 1 || beta < 1) r = rMax;
  else if (alpha + beta - 2 > 0) r = (alpha - 1) / (alpha + beta - 2);
  else r = 0.5;
  if (!Number.isFinite(r)) r = rMax;
  return Math.min(rMax, Math.max(rMin, r));
}

export interface AdaptiveOptions {
  denoiser: Denoiser;
  predictor: TimePredictor;
  /** Class of each row. */
  cond: ArrayLike<number>;
  meter: NfeMeter;
  guidance?: number;
  stream?: NativeStream;
  /** Starting σ of each row (default 1: pure noise). */
  sigmaStart?: number | ArrayLike<number>;
  /** Stop below this σ (default: the predictor's card, else 0.01). */
  sigmaMin?: number;
  /** The most steps a sample takes, the final step to 0 included (default: the card's, else 60). */
  maxSteps?: number;
  /** The step rule (default: the card's sampler.solver, else 'euler'): use the one the module was trained with. */
  solver?: AdaptiveSolver;
  /** Take the x̂0 predicted at the first step with σ ≤ midSigma (for the self-supervised verifier). */
  midSigma?: number;
  /** The denoiser's method returning (output, features) (default 'forward_features'). */
  featuresMethod?: string;
  signal?: AbortSignal;
  /** Called after every step with the number of rows still running. */
  onStep?: (step: number, active: number) => void;
}

export interface AdaptiveResult {
  /** The samples at σ = 0, in the input's row order. */
  x: Tensor;
  /** Steps (denoiser evaluations) each sample took, 1..maxSteps. */
  steps: Int32Array;
  /** The σ each sample visited, from its start to 0. */
  sigmas: number[][];
  /** x̂0 at σ ≈ midSigma per row (when midSigma was given). */
  x0Mid: Tensor | null;
  /** NFE charged to the meter. */
  nfe: number;
}

/** Rows produced out of order (as samples finish), reassembled in the input order; the pieces live in `scope`. */
class RowCollector {
  private pieces: Tensor[] = [];
  private rows: number[] = [];
  constructor(private readonly scope: TensorScope) {}
  add(t: Tensor, rows: number[]): void {
    this.pieces.push(this.scope.track(t));
    this.rows.push(...rows);
  }
  /** The rows in input order, a tensor the caller owns (the pieces are freed). */
  async assemble(n: number, stream?: NativeStream): Promise<Tensor> {
    if (this.rows.length !== n)
      throw new DiffusionSearchError(`internal: ${this.rows.length} of ${n} rows collected`, 'NATIVE');
    using s = new TensorScope();
    const pieces = s.track(this.scope.keep(this.pieces));
    this.pieces = [];
    const all = pieces.length === 1 ? pieces[0] : await s.track(cat(pieces, stream));
    const inv = new Array<number>(n);
    this.rows.forEach((r, i) => (inv[r] = i));
    return s.keep(inv.every((v, i) => v === i) ? all : await gather(all, inv, stream));
  }
}

/** The sampler settings that apply: the options, else the predictor's card, else the defaults. */
export function adaptiveSettings(
  predictor: TimePredictor,
  o: { sigmaMin?: number; maxSteps?: number; solver?: AdaptiveSolver } = {},
) {
  const sigmaMin = o.sigmaMin ?? predictor.defaults?.sigmaMin ?? ADAPTIVE_DEFAULTS.sigmaMin;
  const maxSteps = o.maxSteps ?? predictor.defaults?.maxSteps ?? ADAPTIVE_DEFAULTS.maxSteps;
  const solver = o.solver ?? predictor.defaults?.solver ?? ADAPTIVE_DEFAULTS.solver;
  const [rMin, rMax] = predictor.defaults?.rRange ?? ADAPTIVE_DEFAULTS.rRange;
  if (!(sigmaMin > 0 && sigmaMin < 1))
    throw new DiffusionSearchError(`adaptive: sigmaMin must be in (0, 1), got ${sigmaMin}`, 'ARGUMENT');
  if (!(Number.isInteger(maxSteps) && maxSteps >= 1))
    throw new DiffusionSearchError(`adaptive: maxSteps must be a positive integer, got ${maxSteps}`, 'ARGUMENT');
  if (!ADAPTIVE_SOLVERS.includes(solver))
    throw new DiffusionSearchError(
      `adaptive: solver must be one of ${ADAPTIVE_SOLVERS.join(', ')}, got ${JSON.stringify(solver)}`,
      'ARGUMENT',
    );
  return { sigmaMin, maxSteps, rMin, rMax, solver };
}

/** A denoiser the adaptive sampler can drive: on a rectified-flow path, with a features method; ARGUMENT otherwise. */
export function checkAdaptiveDenoiser(d: Denoiser, featuresMethod = 'forward_features'): void {
  // The module's step rule (Euler / AB2 in σ) is the rectified flow's; in σ a vp path's slope is
  // unbounded at σ = 1, and a Time Prediction Module is trained for one model and its path anyway.
  if (d.path !== 'rectified_flow')
    throw new DiffusionSearchError(
      `adaptive schedules step in σ along a rectified-flow path; '${d.name}' is on the '${d.path}' path: ` +
        'use a fixed schedule',
      'ARGUMENT',
    );
  if (!d.module.hasMethod(featuresMethod))
    throw new DiffusionSearchError(
      `adaptive schedules read the denoiser's features, but '${d.name}' has no ${featuresMethod} method ` +
        '(a Time Prediction Module is trained for one model): use a fixed schedule',
      'ARGUMENT',
    );
}

/** AB2's weight per row: c = min(h / 2h′, AB2_C_MAX), 0 where the row has no previous step. */
export function ab2Coefficients(h: readonly number[], hPrev: readonly number[]): number[] {
  return h.map((hj, j) => (hPrev[j] !== 0 ? Math.min(AB2_C_MAX, Math.max(0, hj / (2 * hPrev[j]))) : 0));
}

/**
 * Samples x (at σ = sigmaStart, default 1) to σ = 0 along the schedule the predictor chooses per
 * sample. Does not dispose x. Each step, for the rows still running:
 *   1. evaluate the denoiser at σ, with its features; the predictor chooses σ_next = r·σ per row
 *      (0 below σ_min or at maxSteps: the row's last step);
 *   2. the velocity v at σ (and x̂0, when the mid prediction is asked for);
 *   3. the direction: v (Euler), or AB2's (1 + c)·v − c·v_prev;
 *   4. x ← x + (σ_next − σ)·direction; the rows at σ_next = 0 are done, the rest go on.
 */
export async function sampleAdaptive(x: Tensor, o: AdaptiveOptions): Promise<AdaptiveResult> {
  const n = x.shape[0];
  const settings = adaptiveSettings(o.predictor, o);
  const cond = Array.from(o.cond);
  if (cond.length !== n) throw new DiffusionSearchError(`adaptive: ${n} samples but ${cond.length} classes`, 'SHAPE');
  const start = startingSigmas(o.sigmaStart, n);
  const d = o.denoiser;
  checkAdaptiveDenoiser(d, o.featuresMethod);
  const steps = new Int32Array(n);
  const sigmas = start.map((s) => [s]);
  using scope = new TensorScope(); // the state carried across steps, and the finished rows
  const done = new RowCollector(scope);
  const mid = o.midSigma !== undefined ? new RowCollector(scope) : null;
  const midTaken = new Uint8Array(n);
  let nfe = 0;
  let active = Array.from({ length: n }, (_, i) => i);
  let sig = start.slice();
  let cur = x; // the caller's until the first step (scope.replace never frees it)
  // AB2's memory: the last velocity of the active rows, in their order (the last step is in sigmas).
  let vPrev: Tensor | null = null;
  for (let step = 1; active.length > 0; step++) {
    if (o.signal?.aborted)
      throw new DiffusionSearchError(`adaptive sampling cancelled after ${nfe} NFE`, 'ABORTED', {
        cause: o.signal.reason,
      });
    using t = new TensorScope(); // this step's temporaries
    const m = active.length;
    const c = active.map((i) => cond[i]);
    const used0 = d.cost(m, o.guidance ?? 1);
    // As Denoiser.predict: evaluated at min(σ, σ_max) (an ε-prediction model is 0/0 at σ = 1), converted there.
    const at = sig.map((s) => Math.min(s, d.sigmaMax));
    const method = o.featuresMethod ?? 'forward_features';
    const { out, features } = t.track(
      await d.evaluate(cur, at, c, o.guidance ?? 1, o.meter, o.stream, { method, features: true }),
    );
    nfe += used0;
    const ab = await o.predictor.predict(features!, sig, o.stream);
    const { next, finished, keep } = nextSigmas(ab, sig, active, step, settings, steps, sigmas);
    const { v, x0 } = await stepVelocity(d, cur, out, sig, at, mid !== null, t, o.stream);
    const u =
      settings.solver === 'ab2' && vPrev ? await ab2Direction(v, vPrev, sig, next, active, sigmas, t, o.stream) : v;
    const nx = await t.track(ops.eulerStep(cur, u, sig, next, o.stream));
    if (settings.solver === 'ab2') vPrev = scope.replace(vPrev, t.keep(v));
    if (mid && x0) await takeMidPrediction(mid, midTaken, x0, active, sig, next, o.midSigma!, t, o.stream);
    if (finished.length === m) {
      done.add(t.keep(nx), active);
      active = [];
      o.onStep?.(step, 0);
      break;
    }
    if (finished.length > 0) {
      done.add(
        await gather(nx, finished, o.stream),
        finished.map((j) => active[j]),
      );
      cur = scope.replace(cur, await gather(nx, keep, o.stream));
      if (vPrev) vPrev = scope.replace(vPrev, await gather(vPrev, keep, o.stream));
    } else cur = scope.replace(cur, t.keep(nx));
    active = keep.map((j) => active[j]);
    sig = keep.map((j) => next[j]);
    o.onStep?.(step, active.length);
  }
  const xOut = scope.track(await done.assemble(n, o.stream));
  const x0Mid = mid ? await mid.assemble(n, o.stream) : null;
  return { x: scope.keep(xOut), steps, sigmas, x0Mid, nfe };
}

/** Each row's starting σ: sigmaStart (a number for all, or one per row; default 1), in (0, 1]. */
function startingSigmas(sigmaStart: AdaptiveOptions['sigmaStart'], n: number): number[] {
  const start =
    typeof sigmaStart === 'number' || sigmaStart === undefined
      ? new Array<number>(n).fill(sigmaStart ?? 1)
      : Array.from(sigmaStart);
  if (start.length !== n || !start.every((s) => s > 0 && s <= 1))
    throw new DiffusionSearchError('adaptive: sigmaStart must be in (0, 1] for every sample', 'ARGUMENT');
  return start;
}

/**
 * Step 1's choice: σ_next = r·σ per active row j, r the clamped mode of Beta(α, β); 0 (the final
 * step) below σ_min or at maxSteps. Records the step count and σ_next of each row; `finished`
 * and `keep` are the positions j that end now and that go on.
 */
function nextSigmas(
  ab: { alpha: Float32Array; beta: Float32Array },
  sig: readonly number[],
  active: readonly number[],
  step: number,
  settings: ReturnType<typeof adaptiveSettings>,
  steps: Int32Array,
  sigmas: number[][],
): { next: number[]; finished: number[]; keep: number[] } {
  const { sigmaMin, maxSteps, rMin, rMax } = settings;
  const m = active.length;
  const next = new Array<number>(m);
  const finished: number[] = [],
    keep: number[] = [];
  for (let j = 0; j < m; j++) {
    const row = active[j];
    steps[row] = step;
    const r = betaMode(ab.alpha[j], ab.beta[j], rMin, rMax);
    let s = r * sig[j];
    if (!(s >= sigmaMin) || step >= maxSteps) s = 0;
    next[j] = s;
    sigmas[row].push(s);
    (s === 0 ? finished : keep).push(j);
  }
  return { next, finished, keep };
}

/** Step 2: the velocity at σ from the model's output (and x̂0 when `wantX0`), temporaries in `t`. */
async function stepVelocity(
  d: Denoiser,
  cur: Tensor,
  out: Tensor,
  sig: readonly number[],
  at: readonly number[],
  wantX0: boolean,
  t: TensorScope,
  stream?: NativeStream,
): Promise<{ v: Tensor; x0: Tensor | null }> {
  if (d.prediction === 'velocity' && at.every((s, j) => s === sig[j])) {
    const x0 = wantX0
      ? await t.track(
          axpby(
            cur,
            out,
            sig.map(() => 1),
            sig.map((s) => -s),
            stream,
          ),
        )
      : null;
    return { v: out, x0 };
  }
  const p = t.track(await toX0Eps(d.prediction, d.path, cur, out, sig, stream, at));
  const da = sig.map((s) => pathCoefficients(d.path, s).da);
  const v = await t.track(axpby(p.x0, p.eps, da, new Array(sig.length).fill(1), stream));
  return { v, x0: wantX0 ? p.x0 : null };
}

/** Step 3 for AB2: (1 + c)·v − c·v_prev per row, c = min(h / 2h′, AB2_C_MAX) (0 on a row's first step). */
async function ab2Direction(
  v: Tensor,
  vPrev: Tensor,
  sig: readonly number[],
  next: readonly number[],
  active: readonly number[],
  sigmas: readonly number[][],
  t: TensorScope,
  stream?: NativeStream,
): Promise<Tensor> {
  const h = next.map((s, j) => s - sig[j]);
  // sigmas[row] ends with (σ before, σ, σ_next) by now: h′ = σ − σ before.
  const hPrev = active.map((row) => {
    const s = sigmas[row];
    return s.length >= 3 ? s[s.length - 2] - s[s.length - 3] : 0;
  });
  const cj = ab2Coefficients(h, hPrev);
  return t.track(
    axpby(
      v,
      vPrev,
      cj.map((k) => 1 + k),
      cj.map((k) => -k),
      stream,
    ),
  );
}

/** The x̂0 of the rows reaching σ ≤ midSigma (or finishing) for the first time, into `mid`. */
async function takeMidPrediction(
  mid: RowCollector,
  midTaken: Uint8Array,
  x0: Tensor,
  active: readonly number[],
  sig: readonly number[],
  next: readonly number[],
  midSigma: number,
  t: TensorScope,
  stream?: NativeStream,
): Promise<void> {
  const m = active.length;
  const take: number[] = [];
  for (let j = 0; j < m; j++) {
    const row = active[j];
    if (!midTaken[row] && (sig[j] <= midSigma || next[j] === 0)) take.push(j), (midTaken[row] = 1);
  }
  const rows = take.length === m ? t.keep(x0) : take.length ? await gather(x0, take, stream) : null;
  if (rows)
    mid.add(
      rows,
      take.map((j) => active[j]),
    );
}
