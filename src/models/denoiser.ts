/**
 * A denoiser: a TorchScript module with a card. `predict` evaluates it once on a batch at
 * per-sample noise levels and converts whatever it predicts into x̂0 and ε̂, with classifier-free
 * guidance. Batches larger than maxBatch are split. Every sample through the model is one NFE
 * (guidance ≠ 1 doubles it), charged to the meter the caller passes.
 */
import { DiffusionSearchError } from '../errors';
import { loadModule, type TorchModule } from '../module';
import type { NativeStream, NativeTensor } from '../native';
import { axpby, cat, classTensor, floatTensor, slice } from '../tensor-ops';
import { validateCard, type ModelCard, type Prediction } from './card';
import type { NoisePath } from '../ops';
import { pathCoefficients } from '../schedules/path';

type Tensor = NativeTensor;

/** Counts model evaluations and time; a search's budget implements it. */
export interface NfeMeter {
  charge(nfe: number): void;
  addModelTime(seconds: number): void;
}

export interface Prediction2 {
  x0: Tensor;
  eps: Tensor;
}

export class Denoiser {
  readonly card: ModelCard;
  maxBatch: number;

  constructor(
    readonly module: TorchModule,
    options: { maxBatch?: number } = {},
  ) {
    this.card = validateCard(module.card, module.path, 'denoiser');
    this.maxBatch = options.maxBatch ?? 256;
    if (!module.hasMethod('forward')) throw new DiffusionSearchError(`'${module.path}' has no forward method`, 'MODEL_LOAD');
  }

  static async load(file: string, options: { device?: string; maxBatch?: number } = {}): Promise<Denoiser> {
    return new Denoiser(await loadModule(file, { device: options.device }), options);
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

  /** NFE of one evaluation of `rows` samples at this guidance. */
  cost(rows: number, guidance: number): number {
    return guidance === 1 || this.nullClass === undefined ? rows : 2 * rows;
  }

  /** The raw model output for a batch, split into chunks of maxBatch. */
  private async raw(x: Tensor, sigma: ArrayLike<number>, cond: ArrayLike<number>, stream?: NativeStream): Promise<Tensor> {
    const n = x.shape[0];
    const chunks: Tensor[] = [];
    try {
      for (let start = 0; start < n; start += this.maxBatch) {
        const end = Math.min(n, start + this.maxBatch);
        const xs = start === 0 && end === n ? x : await slice(x, start, end, stream);
        const s = floatTensor(Array.from(sigma).slice(start, end), this.device);
        const c = classTensor(Array.from(cond).slice(start, end), this.device);
        try {
          const out = await this.module.call('forward', [xs, s, c], stream);
          if (!isTensor(out) || out.shape.join() !== xs.shape.join())
            throw new DiffusionSearchError(
              `'${this.module.path}' forward returned ${isTensor(out) ? `shape [${out.shape}]` : 'no tensor'} for input [${xs.shape}]`,
              'SHAPE',
            );
          chunks.push(out);
        } finally {
          s.dispose();
          c.dispose();
          if (xs !== x) xs.dispose();
        }
      }
      if (chunks.length === 1) return chunks[0];
      return await cat(chunks, stream);
    } finally {
      if (chunks.length > 1) for (const c of chunks) c.dispose();
    }
  }

  /**
   * x̂0 and ε̂ for x at noise levels sigma (one per row), conditioned on cond (class ids),
   * with classifier-free guidance `guidance` (1 = conditional model only).
   */
  async predict(
    x: Tensor,
    sigma: ArrayLike<number>,
    cond: ArrayLike<number>,
    guidance: number,
    meter: NfeMeter,
    stream?: NativeStream,
  ): Promise<Prediction2> {
    const n = x.shape[0];
    if (sigma.length !== n || cond.length !== n)
      throw new DiffusionSearchError(`predict: ${n} samples but ${sigma.length} noise levels and ${cond.length} classes`, 'SHAPE');
    const guided = guidance !== 1 && this.nullClass !== undefined;
    meter.charge(this.cost(n, guidance));
    const t0 = performance.now();
    let out: Tensor;
    if (!guided) {
      out = await this.raw(x, sigma, cond, stream);
    } else {
      // One batch [x; x] with [cond; null]: out = u + w·(c − u).
      const both = await cat([x, x], stream);
      const sig = [...Array.from(sigma), ...Array.from(sigma)];
      const cls = [...Array.from(cond), ...new Array<number>(n).fill(this.nullClass!)];
      const raw = await this.raw(both, sig, cls, stream);
      both.dispose();
      const c = await slice(raw, 0, n, stream);
      const u = await slice(raw, n, 2 * n, stream);
      raw.dispose();
      out = await axpby(u, c, new Array(n).fill(1 - guidance), new Array(n).fill(guidance), stream);
      c.dispose();
      u.dispose();
    }
    meter.addModelTime((performance.now() - t0) / 1000);
    try {
      return await toX0Eps(this.prediction, this.path, x, out, sigma, stream);
    } finally {
      out.dispose();
    }
  }
}

function isTensor(v: unknown): v is Tensor {
  return typeof v === 'object' && v !== null && 'shape' in v && 'dtype' in v;
}

/**
 * Converts a model output to (x̂0, ε̂) on the path x = a(σ)·x0 + σ·ε.
 * velocity: RF v = ε − x0; VP v = a·ε − σ·x0 (with a² + σ² = 1).
 */
export async function toX0Eps(
  prediction: Prediction,
  path: NoisePath,
  x: Tensor,
  out: Tensor,
  sigma: ArrayLike<number>,
  stream?: NativeStream,
): Promise<Prediction2> {
  const s = Array.from(sigma);
  const a = s.map((v) => pathCoefficients(path, v).a);
  const eps0 = 1e-6;
  switch (prediction) {
    case 'velocity':
      if (path === 'rectified_flow') {
        // x0 = x − σ·v, ε = x + (1 − σ)·v
        return {
          x0: await axpby(x, out, s.map(() => 1), s.map((v) => -v), stream),
          eps: await axpby(x, out, s.map(() => 1), s.map((v) => 1 - v), stream),
        };
      }
      // VP: x0 = a·x − σ·v, ε = σ·x + a·v
      return {
        x0: await axpby(x, out, a, s.map((v) => -v), stream),
        eps: await axpby(x, out, s, a, stream),
      };
    case 'epsilon':
      // x0 = (x − σ·ε)/a
      return {
        x0: await axpby(x, out, a.map((ai) => 1 / Math.max(ai, eps0)), s.map((v, i) => -v / Math.max(a[i], eps0)), stream),
        eps: await axpby(out, out, s.map(() => 1), s.map(() => 0), stream),
      };
    case 'x0':
      // ε = (x − a·x0)/σ
      return {
        x0: await axpby(out, out, s.map(() => 1), s.map(() => 0), stream),
        eps: await axpby(x, out, s.map((v) => 1 / Math.max(v, eps0)), s.map((v, i) => -a[i] / Math.max(v, eps0)), stream),
      };
  }
}
