/** Model cards: the JSON stored as model.json inside every shipped TorchScript archive. */
import { DiffusionSearchError } from '../errors';
import type { NoisePath } from '../ops';

export type Prediction = 'velocity' | 'epsilon' | 'x0';

export interface ModelCard {
  name: string;
  kind: string; // 'denoiser' | 'verifier' | 'eval'
  prediction?: Prediction;
  path?: NoisePath;
  sample_shape: number[];
  classes?: string[];
  null_class?: number;
  /**
   * Denoisers: the largest σ the model is evaluated at (default 1, and for ε-prediction the σ
   * where a(σ) = 0.05). Above it the model sees the state as if at sigma_max; see Denoiser.predict.
   */
  sigma_max?: number;
  value_range?: [number, number];
  /** Video ([T, C, H, W] samples): frames per second of its animations (default VIDEO_FPS). */
  fps?: number;
  license?: string;
  provenance?: unknown;
  metrics?: unknown;
  [key: string]: unknown;
}

function fail(file: string, what: string): never {
  throw new DiffusionSearchError(`model card of '${file}': ${what}`, 'MODEL_CARD');
}

/** Checks the fields every card needs, and for denoisers the sampling contract. */
export function validateCard(
  json: Record<string, unknown> | null,
  file: string,
  kind?: 'denoiser' | 'verifier',
): ModelCard {
  if (!json) fail(file, 'the archive has no model.json (see "Bring your own model" in the README)');
  const c = json as Partial<ModelCard>;
  if (typeof c.name !== 'string' || !c.name) fail(file, 'needs a "name"');
  const shape = c.sample_shape;
  if (!Array.isArray(shape) || shape.length === 0 || !shape.every((d) => Number.isInteger(d) && d > 0))
    fail(file, '"sample_shape" must be a non-empty array of positive integers, e.g. [1, 28, 28]');
  if (shape.length > 4)
    fail(
      file,
      `"sample_shape" [${shape}] has ${shape.length} dims; at most 4: [D] vectors, [C, H, W] images, ` +
        '[T, C, H, W] video',
    );
  if (c.fps !== undefined && c.fps !== null && !(typeof c.fps === 'number' && c.fps > 0 && c.fps <= 1000))
    fail(file, `"fps" (frames per second of video) must be a number in (0, 1000], got ${JSON.stringify(c.fps)}`);
  if (kind === 'denoiser') {
    if (!['velocity', 'epsilon', 'x0'].includes(c.prediction as string))
      fail(file, `"prediction" must be "velocity", "epsilon" or "x0", got ${JSON.stringify(c.prediction)}`);
    if (!['rectified_flow', 'vp'].includes(c.path as string))
      fail(file, `"path" must be "rectified_flow" or "vp", got ${JSON.stringify(c.path)}`);
    if (c.sigma_max === null) delete c.sigma_max;
    const top =
      c.prediction === 'epsilon' ? 'less than 1 (at σ = 1 an ε-prediction says nothing about x0)' : 'at most 1';
    if (
      c.sigma_max !== undefined &&
      !(
        typeof c.sigma_max === 'number' &&
        c.sigma_max > 0 &&
        (c.prediction === 'epsilon' ? c.sigma_max < 1 : c.sigma_max <= 1)
      )
    )
      fail(file, `"sigma_max" must be a number above 0 and ${top}, got ${JSON.stringify(c.sigma_max)}`);
  }
  if (c.classes !== undefined && (!Array.isArray(c.classes) || !c.classes.every((x) => typeof x === 'string')))
    fail(file, '"classes" must be an array of names');
  if (c.null_class !== undefined && c.null_class !== null && !Number.isInteger(c.null_class))
    fail(file, '"null_class" must be an integer or null');
  if (c.null_class === null) delete c.null_class;
  if (
    c.value_range !== undefined &&
    c.value_range !== null &&
    (!Array.isArray(c.value_range) || c.value_range.length !== 2)
  )
    fail(file, '"value_range" must be [min, max]');
  return { kind: kind ?? 'unknown', ...c } as ModelCard;
}
