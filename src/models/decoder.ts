/**
 * The decoder of a latent model: a TorchScript module (or one of its methods) from latents to
 * pixels, named by the denoiser's card (`decoder: { model, method, image_shape, value_range }`).
 * Verifiers score decoded samples; its time is counted apart from NFE (it is not a denoiser
 * evaluation).
 */
import { DiffusionSearchError } from '../errors';
import { loadModule, type TorchModule } from '../module';
import type { NativeStream, NativeTensor } from '../native';
import { cat, slice } from '../tensor-ops';
import { TensorScope } from '../tensor-scope';

export interface DecoderSpec {
  /** Shipped name or file of the module holding the decoder. */
  model: string;
  /** Its method (default 'decode', else forward). */
  method?: string;
  image_shape: number[];
  value_range?: [number, number] | null;
  /** Video ([T, C, H, W] images): frames per second of its animations. */
  fps?: number;
}

export class LatentDecoder {
  /** Seconds spent decoding, and calls, since load. */
  seconds = 0;
  rows = 0;

  constructor(
    readonly module: TorchModule,
    readonly spec: DecoderSpec,
    readonly latentShape: number[],
    readonly maxBatch = 256,
  ) {
    const method = spec.method ?? 'decode';
    if (!module.hasMethod(method))
      throw new DiffusionSearchError(`decoder '${module.path}' has no method '${method}'`, 'MODEL_CARD');
  }

  static async load(
    spec: DecoderSpec,
    latentShape: number[],
    o: { device?: string; maxBatch?: number } = {},
  ): Promise<LatentDecoder> {
    checkSpec(spec);
    // No small-call copy: fashion-ae's gains at 1 row only and is slower at 10 (bench/RESULTS.md), and
    // optimize_for_inference's in-place oneDNN clamp makes libtorch 1.13 warn on stderr at every call.
    return new LatentDecoder(await loadModule(spec.model, { device: o.device }), spec, latentShape, o.maxBatch);
  }

  get imageShape(): number[] {
    return this.spec.image_shape;
  }

  /** Pixels [N, ...image_shape] of latents [N, ...latentShape], in chunks of maxBatch. */
  async decode(z: NativeTensor, stream?: NativeStream): Promise<NativeTensor> {
    const n = z.shape[0];
    if (z.shape.slice(1).join() !== this.latentShape.join())
      throw new DiffusionSearchError(
        `decode: latents [${z.shape}] do not have the model's shape [N, ${this.latentShape}]`,
        'SHAPE',
      );
    const t0 = performance.now();
    using scope = new TensorScope();
    const parts: NativeTensor[] = [];
    try {
      for (let s = 0; s < n; s += this.maxBatch) {
        const e = Math.min(n, s + this.maxBatch);
        using chunk = new TensorScope();
        const zs = s === 0 && e === n ? z : await chunk.track(slice(z, s, e, stream));
        const out = scope.track((await this.module.call(this.spec.method ?? 'decode', [zs], stream)) as NativeTensor);
        parts.push(out);
        if (
          typeof out !== 'object' ||
          out === null ||
          !('shape' in out) ||
          out.shape.join() !== [e - s, ...this.imageShape].join()
        )
          throw new DiffusionSearchError(
            `decoder '${this.module.path}' returned ${out && 'shape' in out ? `[${out.shape}]` : 'no tensor'} for ` +
              `${e - s} latents; its card says images [${this.imageShape}]`,
            'SHAPE',
          );
      }
      return scope.keep(parts.length === 1 ? parts[0] : await scope.track(cat(parts, stream)));
    } finally {
      this.seconds += (performance.now() - t0) / 1000;
      this.rows += n;
    }
  }

  dispose(): void {
    this.module.dispose();
  }
}

function checkSpec(spec: DecoderSpec): void {
  const fail = (what: string): never => {
    throw new DiffusionSearchError(`the card's "decoder": ${what}`, 'MODEL_CARD');
  };
  if (typeof spec !== 'object' || spec === null) fail('must be an object { model, method, image_shape, value_range }');
  if (typeof spec.model !== 'string' || !spec.model)
    fail('"model" must name the decoder module (a shipped name or a file)');
  if (spec.method !== undefined && typeof spec.method !== 'string') fail('"method" must be a method name');
  if (!Array.isArray(spec.image_shape) || !spec.image_shape.every((d) => Number.isInteger(d) && d > 0))
    fail('"image_shape" must be positive integers');
  if (spec.image_shape.length > 4)
    fail(`"image_shape" [${spec.image_shape}] has ${spec.image_shape.length} dims; at most 4 ([T, C, H, W] video)`);
  if (spec.fps !== undefined && !(typeof spec.fps === 'number' && spec.fps > 0 && spec.fps <= 1000))
    fail(`"fps" must be a number in (0, 1000], got ${JSON.stringify(spec.fps)}`);
}
