/**
 * A denoiser: a TorchScript module with a card. `evaluate` runs it once on a batch at per-sample
 * noise levels with classifier-free guidance (its forward, or a method that also returns
 * features); `predict` converts whatever it predicts into x̂0 and ε̂. Batches larger than
 * maxBatch are split. Every sample through the model is one NFE (guidance ≠ 1 doubles it),
 * charged to the meter the caller passes. Guidance ≠ 1 needs an unconditional branch: the card's
 * null class, or for a model conditioned on named tensors (card "conditions", see ./conditions)
 * its stored null condition or a negative/empty prompt registered for the row's condition.
 * A latent model's card names a decoder (card "decoder"), loaded with it.
 */
import { DiffusionSearchError } from '../errors';
import { loadModule, type TorchModule } from '../module';
import type { NativeStream, NativeTensor } from '../native';
import { axpby, cat, classTensor, floatTensor, slice } from '../tensor-ops';
import { isTensor } from '../tensor';
import { TensorScope, type Owned } from '../tensor-scope';
import { validateCard, type ModelCard, type Prediction } from './card';
import { ConditionTable, NULL_CONDITION, conditionSpecs, type ConditionSpec } from './conditions';
import { LatentDecoder, type DecoderSpec } from './decoder';
import { modelFileBeside } from './shipped';
import { rowCoefficients, rowCombine, type NoisePath, type Pair } from '../ops';
import { pathCoefficients, sigmaAtAlpha } from '../schedules/path';
import type { Precision } from '../precision';
import { inferenceLoad } from './inference-load';

type Tensor = NativeTensor;

/** a(σ) where an ε-prediction model stops being evaluated by default (see Denoiser.sigmaMax). */
export const EPSILON_ALPHA_MIN = 0.05;

/** Counts model evaluations and time; a search's budget implements it. */
export interface DenoiserLoadOptions {
  device?: string;
  maxBatch?: number;
  /** The precision of its forwards (the decoder's stay fp32): src/precision.ts. */
  precision?: Precision;
  wrap?: (m: TorchModule) => TorchModule;
}

export interface NfeMeter {
  charge(nfe: number): void;
  addModelTime(seconds: number): void;
  /** The search's cancellation: a batch split in chunks stops between them. */
  readonly signal?: AbortSignal;
}

/** A model evaluation: its (guided) output and, from a features method, the features[N, D]. */
export interface Evaluation {
  out: Tensor;
  features: Tensor | null;
}

export interface Prediction2 {
  x0: Tensor;
  eps: Tensor;
}

export class Denoiser {
  readonly card: ModelCard;
  maxBatch: number;
  /** Condition inputs declared by the card; undefined for a class-conditional model. */
  readonly conditionSpecs: ConditionSpec[] | undefined;
  /** One-row conditions by id (tensor-conditioned models): searches register theirs. */
  readonly conditions: ConditionTable | undefined;
  /** Latents → pixels, for a latent model (card "decoder"). */
  decoder: LatentDecoder | undefined;
  /** The unconditional row of each registered condition id (a negative prompt); else NULL_CONDITION. */
  private readonly negatives = new Map<number, number>();

  constructor(
    readonly module: TorchModule,
    options: { maxBatch?: number } = {},
  ) {
    this.card = validateCard(module.card, module.path, 'denoiser');
    // Above 128 rows a forward's per-row cost rises on CPU (fashion-flow, bench/RESULTS.md).
    this.maxBatch = options.maxBatch ?? 128;
    if (!module.hasMethod('forward'))
      throw new DiffusionSearchError(`'${module.path}' has no forward method`, 'MODEL_LOAD');
    this.conditionSpecs = conditionSpecs(this.card, module.path);
    this.conditions = this.conditionSpecs
      ? new ConditionTable(this.conditionSpecs, `denoiser '${this.card.name}'`)
      : undefined;
  }

  /**
   * Loads the module; for a latent model also its decoder, and for a model with a stored null
   * condition (card "unconditional": { "method": ... }) that condition.
   */
  static async load(file: string, options: DenoiserLoadOptions = {}): Promise<Denoiser> {
    // `wrap`: an engine routes the module's calls through its batcher (src/engine/batcher.ts).
    const m = await loadModule(file, inferenceLoad(options.device, options.precision));
    using s = new TensorScope(); // the denoiser is freed if its decoder or null condition fails
    const d = s.track(new Denoiser(options.wrap ? options.wrap(m) : m, options));
    const spec = d.card.decoder as DecoderSpec | undefined;
    // A card's "decoder" that is not { model: ... } (e.g. a string) reached path code as undefined: a TypeError.
    if (
      spec !== undefined &&
      (typeof spec !== 'object' || spec === null || typeof spec.model !== 'string' || !spec.model)
    )
      throw new DiffusionSearchError(
        `model card of '${d.module.path}': "decoder" must be an object naming its "model", got ` +
          `${JSON.stringify(spec).slice(0, 80)}`,
        'MODEL_CARD',
      );
    if (spec)
      d.decoder = await LatentDecoder.load(
        { ...spec, model: modelFileBeside(spec.model, d.module.path) },
        d.sampleShape,
        options,
      );
    const method = (d.card.unconditional as { method?: string } | undefined)?.method;
    if (method && d.conditions) await d.loadNullCondition(method);
    return s.keep(d);
  }

  /** The stored null condition: a method returning the condition tensors, one row each, in card order. */
  private async loadNullCondition(method: string): Promise<void> {
    if (!this.module.hasMethod(method))
      throw new DiffusionSearchError(
        `'${this.module.path}': the card's unconditional method '${method}' is missing`,
        'MODEL_CARD',
      );
    using s = new TensorScope();
    const out = await this.module.call(method, []);
    const list = s.track((Array.isArray(out) ? out : [out]) as Tensor[]);
    const specs = this.conditionSpecs!;
    if (list.length !== specs.length)
      throw new DiffusionSearchError(
        `'${this.module.path}' ${method}() returned ${list.length} tensors for the ${specs.length} conditions of ` +
          'its card',
        'MODEL_CARD',
      );
    this.conditions!.register(Object.fromEntries(specs.map((c, i) => [c.name, list[i]])), NULL_CONDITION);
    s.keep(list); // the table owns them now
  }

  /**
   * Registers one condition (each tensor [1, ...shape], owned by the denoiser from now on) and,
   * optionally, the unconditional row guidance uses with it (a negative prompt). Its id goes
   * where a class id would: in a SearchConfig's `cls`. Release it when the search ends.
   */
  registerCondition(t: Record<string, Tensor>, negative?: Record<string, Tensor>): number {
    if (!this.conditions)
      throw new DiffusionSearchError(
        `'${this.name}' is class-conditional (its card declares no "conditions"): pass a class`,
        'ARGUMENT',
      );
    const id = this.conditions.register(t);
    if (negative) {
      try {
        this.negatives.set(id, this.conditions.register(negative));
      } catch (e) {
        this.conditions.release(id);
        throw e;
      }
    }
    return id;
  }

  releaseCondition(id: number): void {
    const neg = this.negatives.get(id);
    if (neg !== undefined) this.conditions?.release(neg);
    this.negatives.delete(id);
    this.conditions?.release(id);
  }

  /** Whether rows with this condition id can be guided (an unconditional row exists for them). */
  private hasUnconditional(id?: number): boolean {
    if (!this.conditions) return this.nullClass !== undefined;
    // Rows without a negative prompt fall back to the null condition; inputs() names the gap if it is missing.
    return this.conditions.has(NULL_CONDITION) || (id === undefined ? this.negatives.size > 0 : this.negatives.has(id));
  }

  /** The unconditional row for each row's condition: the null class, its negative prompt, or the null condition. */
  private unconditional(cond: ArrayLike<number>): number[] {
    if (!this.conditions) return new Array<number>(cond.length).fill(this.nullClass!);
    return Array.from(cond, (id) => this.negatives.get(id) ?? NULL_CONDITION);
  }

  dispose(): void {
    this.conditions?.dispose();
    this.decoder?.dispose();
    this.module.dispose();
  }

  get name(): string {
    return this.card.name;
  }
  get device(): string {
    return this.module.device;
  }
  get path(): NoisePath {
    return this.card.path as NoisePath;
  }
  get prediction(): Prediction {
    return this.card.prediction as Prediction;
  }
  get sampleShape(): number[] {
    return this.card.sample_shape;
  }
  get classes(): string[] | undefined {
    return this.card.classes;
  }
  /** The class that means "no condition" (for guidance), if the model has one. */
  get nullClass(): number | undefined {
    return this.card.null_class;
  }

  /**
   * The largest σ the model is evaluated at: the card's sigma_max, else 1, except for ε-prediction:
   * at σ = 1 the state is pure noise (a = 0), the exact ε̂ is x itself and x̂0 = (x − σ·ε̂)/a is
   * 0/0. Its value there is the limit E[x0 | x] = E[x0], which the model can only tell from
   * a level with a > 0; by default the σ with a = EPSILON_ALPHA_MIN (0.05; DDPM-style models
   * are trained up to a ≈ 0.07 (Stable Diffusion) or less).
   */
  get sigmaMax(): number {
    return this.card.sigma_max ?? (this.prediction === 'epsilon' ? sigmaAtAlpha(this.path, EPSILON_ALPHA_MIN) : 1);
  }

  /** Whether guidance w mixes in the null class; an ARGUMENT error when the model has none. */
  private guided(guidance: number): boolean {
    if (!Number.isFinite(guidance))
      throw new DiffusionSearchError(`guidance must be a finite number, got ${guidance}`, 'ARGUMENT');
    if (guidance === 1) return false;
    if (!this.hasUnconditional())
      throw new DiffusionSearchError(
        this.conditions
          ? `guidance ${guidance} needs an unconditional branch, but '${this.name}' has none (no "unconditional" ` +
              'in its card, no empty prompt registered); pass a negative prompt or use guidance 1'
          : `guidance ${guidance} needs classifier-free guidance, but '${this.name}' has no null class (its card ` +
              'has no "null_class"); use guidance 1',
        'ARGUMENT',
      );
    return true;
  }

  /** NFE of one evaluation of `rows` samples at this guidance (an ARGUMENT error if it cannot guide). */
  cost(rows: number, guidance: number): number {
    return this.guided(guidance) ? 2 * rows : rows;
  }

  /**
   * Raw outputs of `method` for a batch, split into chunks of maxBatch: the output, and with
   * `features` the features[N, D] the method returns beside it (forward_features).
   */
  private async raw(
    x: Tensor,
    sigma: ArrayLike<number>,
    cond: ArrayLike<number>,
    stream: NativeStream | undefined,
    method: string,
    features: boolean,
    signal?: AbortSignal,
  ): Promise<Evaluation> {
    const n = x.shape[0];
    using s = new TensorScope();
    const outs: Tensor[] = [],
      feats: Tensor[] = [];
    for (let start = 0; start < n; start += this.maxBatch) {
      if (start > 0 && signal?.aborted)
        throw new DiffusionSearchError(`cancelled after ${start} of ${n} rows`, 'ABORTED', { cause: signal.reason });
      const end = Math.min(n, start + this.maxBatch);
      using chunk = new TensorScope(); // this chunk's inputs
      const xs = start === 0 && end === n ? x : await chunk.track(slice(x, start, end, stream));
      const ids = Array.from(cond).slice(start, end);
      const levels = chunk.track(floatTensor(Array.from(sigma).slice(start, end), this.device));
      const c = chunk.track(
        this.conditions ? await this.conditions.inputs(ids, stream) : [classTensor(ids, this.device)],
      );
      const res = await this.module.call(method, [xs, levels, ...c], stream);
      s.track((Array.isArray(res) ? res : [res]) as Owned[]); // every output, freed unless it is returned
      const r = this.checkOutput(res, xs, method, features);
      outs.push(r.out);
      if (r.features) feats.push(r.features);
    }
    const out = outs.length === 1 ? outs[0] : await s.track(cat(outs, stream));
    const f = !features ? null : feats.length === 1 ? feats[0] : await s.track(cat(feats, stream));
    return s.keep({ out, features: f });
  }

  /** The output of one chunk: a tensor shaped like the input, or (output, features[N, D]). */
  private checkOutput(r: unknown, xs: Tensor, method: string, features: boolean): Evaluation {
    if (!features) {
      if (!isTensor(r) || r.shape.join() !== xs.shape.join())
        throw new DiffusionSearchError(
          `'${this.module.path}' ${method} returned ${isTensor(r) ? `shape [${r.shape}]` : 'no tensor'} for input ` +
            `[${xs.shape}]`,
          'SHAPE',
        );
      return { out: r, features: null };
    }
    if (!Array.isArray(r) || r.length < 2 || !isTensor(r[0]) || !isTensor(r[1]))
      throw new DiffusionSearchError(`'${this.module.path}' ${method} must return (output, features[N, D])`, 'SHAPE');
    const [out, f] = r as [Tensor, Tensor];
    if (out.shape.join() !== xs.shape.join() || f.shape.length !== 2 || f.shape[0] !== xs.shape[0])
      throw new DiffusionSearchError(
        `'${this.module.path}' ${method} returned [${out.shape}] and [${f.shape}] for input [${xs.shape}]`,
        'SHAPE',
      );
    return { out, features: f };
  }

  /**
   * One evaluation of the model (its `method`, default forward) on a batch, with classifier-free
   * guidance `guidance` (1 = conditional model only): the guided output and, with `features`,
   * the conditional pass's features. Charged to the meter before the model runs.
   */
  async evaluate(
    x: Tensor,
    sigma: ArrayLike<number>,
    cond: ArrayLike<number>,
    guidance: number,
    meter: NfeMeter,
    stream?: NativeStream,
    options: { method?: string; features?: boolean } = {},
  ): Promise<Evaluation> {
    const n = x.shape[0];
    if (sigma.length !== n || cond.length !== n)
      throw new DiffusionSearchError(
        `predict: ${n} samples but ${sigma.length} noise levels and ${cond.length} classes`,
        'SHAPE',
      );
    const method = options.method ?? 'forward';
    const features = options.features ?? false;
    const guided = this.guided(guidance);
    meter.charge(this.cost(n, guidance));
    const t0 = performance.now();
    try {
      if (guided) return await this.guidedRaw(x, sigma, cond, guidance, stream, method, features, meter.signal);
      return await this.raw(x, sigma, cond, stream, method, features, meter.signal);
    } finally {
      meter.addModelTime((performance.now() - t0) / 1000);
    }
  }

  /** One batch [x; x] with [cond; unconditional]: out = u + w·(c − u), features of the conditional half. */
  private async guidedRaw(
    x: Tensor,
    sigma: ArrayLike<number>,
    cond: ArrayLike<number>,
    w: number,
    stream: NativeStream | undefined,
    method: string,
    features: boolean,
    signal?: AbortSignal,
  ): Promise<Evaluation> {
    const n = x.shape[0];
    using s = new TensorScope();
    const both = await s.track(cat([x, x], stream));
    const sig = [...Array.from(sigma), ...Array.from(sigma)];
    const cls = [...Array.from(cond), ...this.unconditional(cond)];
    const raw = s.track(await this.raw(both, sig, cls, stream, method, features, signal));
    const c = await s.track(slice(raw.out, 0, n, stream));
    const u = await s.track(slice(raw.out, n, 2 * n, stream));
    const out = await s.track(axpby(u, c, new Array(n).fill(1 - w), new Array(n).fill(w), stream));
    const f = raw.features ? await slice(raw.features, 0, n, stream) : null;
    return { out: s.keep(out), features: f };
  }

  /**
   * x̂0 and ε̂ for x at noise levels sigma (one per row), conditioned on cond (class ids),
   * with classifier-free guidance `guidance` (1 = conditional model only). Rows above sigmaMax
   * are evaluated at sigmaMax: x̂0 is the model's there, and ε̂ = (x − a(σ)·x̂0)/σ keeps the
   * pair consistent with x at its own σ (at σ = 1: ε̂ = x, exactly).
   */
  async predict(
    x: Tensor,
    sigma: ArrayLike<number>,
    cond: ArrayLike<number>,
    guidance: number,
    meter: NfeMeter,
    stream?: NativeStream,
  ): Promise<Prediction2> {
    using s = new TensorScope();
    const { out, rows } = s.track(await this.predictLinear(x, sigma, cond, guidance, meter, stream));
    return await combineX0Eps(x, out, rows, stream);
  }

  /**
   * predict's model output and, per row, the coefficients that make x̂0 and ε̂ from x and it:
   * samplers fold them into their step's and take everything from one rowCombine.
   */
  async predictLinear(
    x: Tensor,
    sigma: ArrayLike<number>,
    cond: ArrayLike<number>,
    guidance: number,
    meter: NfeMeter,
    stream?: NativeStream,
  ): Promise<{ out: Tensor; rows: RowConversion[] }> {
    const top = this.sigmaMax;
    const at = Array.from(sigma, (s) => Math.min(s, top));
    const { out } = await this.evaluate(x, at, cond, guidance, meter, stream);
    return { out, rows: conversions(this.prediction, this.path, sigma, at) };
  }
}

/** Per row: x̂0 = x0[0]·x + x0[1]·out and ε̂ = eps[0]·x + eps[1]·out. */
export interface RowConversion {
  x0: Pair;
  eps: Pair;
}

/** How x̂0 and ε̂ follow from x and a model output at σ. */
function conversion(prediction: Prediction, path: NoisePath, sigma: number): RowConversion {
  const a = pathCoefficients(path, sigma).a;
  const tiny = 1e-6; // only reached at σ = 0 (x0-prediction) or a = 0 (ε-prediction above sigmaMax = 1)
  switch (prediction) {
    case 'velocity':
      // RF v = ε − x0: x0 = x − σ·v, ε = x + (1 − σ)·v. VP v = a·ε − σ·x0: x0 = a·x − σ·v, ε = σ·x + a·v.
      return path === 'rectified_flow'
        ? { x0: [1, -sigma], eps: [1, 1 - sigma] }
        : { x0: [a, -sigma], eps: [sigma, a] };
    case 'epsilon':
      return { x0: [1 / Math.max(a, tiny), -sigma / Math.max(a, tiny)], eps: [0, 1] };
    case 'x0':
      return { x0: [0, 1], eps: [1 / Math.max(sigma, tiny), -a / Math.max(sigma, tiny)] };
  }
}

/**
 * The conversions of a model output to (x̂0, ε̂) on the path x = a(σ)·x0 + σ·ε, for x at levels
 * `sigma` and a model evaluated at levels `at` (default: the same). Where the model was evaluated
 * lower (at < σ, see Denoiser.sigmaMax), x̂0 is the model's and ε̂ = (x − a(σ)·x̂0)/σ.
 */
function conversions(
  prediction: Prediction,
  path: NoisePath,
  sigma: ArrayLike<number>,
  at: ArrayLike<number> = sigma,
): RowConversion[] {
  return Array.from(sigma, (s, i) => {
    const c = conversion(prediction, path, at[i]);
    if (!(at[i] < s)) return c;
    const a = pathCoefficients(path, s).a;
    return { x0: c.x0, eps: [(1 - a * c.x0[0]) / s, (-a * c.x0[1]) / s] };
  });
}

/** x̂0 and ε̂ from x and a model output (see conversions), in one rowCombine. */
export async function toX0Eps(
  prediction: Prediction,
  path: NoisePath,
  x: Tensor,
  out: Tensor,
  sigma: ArrayLike<number>,
  stream?: NativeStream,
  at: ArrayLike<number> = sigma,
): Promise<Prediction2> {
  return combineX0Eps(x, out, conversions(prediction, path, sigma, at), stream);
}

/** x̂0 and ε̂ from x and a model output, given each row's conversion: one rowCombine. */
async function combineX0Eps(
  x: Tensor,
  out: Tensor,
  rows: RowConversion[],
  stream?: NativeStream,
): Promise<Prediction2> {
  const [x0, eps] = await rowCombine(
    x,
    out,
    rowCoefficients(rows, (r) => [r.x0, r.eps]),
    2,
    stream,
  );
  return { x0, eps };
}
