/** Verifiers backed by TorchScript modules (see DESIGN.md: forward(x0, cond) -> [N], features(x0) -> [N, D]). */
import { DiffusionSearchError } from '../errors';
import { loadModule, type TorchModule } from '../module';
import { inferenceLoad } from '../models/inference-load';
import type { NativeStream, NativeTensor } from '../native';
import { classTensor, slice } from '../tensor-ops';
import type { ScoreExtras, Verifier } from './verifier';

type Tensor = NativeTensor;

/** Runs `method` on row chunks of at most maxBatch and returns the results per chunk, in order. */
export async function chunked(
  module: TorchModule,
  method: string,
  x: Tensor,
  cond: ArrayLike<number> | Tensor[] | null,
  maxBatch: number,
  stream?: NativeStream,
): Promise<Float32Array[]> {
  const n = x.shape[0];
  checkSampleShape(module, x.shape, `verifier '${module.path}'`);
  const out: Float32Array[] = [];
  for (let start = 0; start < n; start += maxBatch) {
    const end = Math.min(n, start + maxBatch);
    const whole = start === 0 && end === n;
    const xs = whole ? x : await slice(x, start, end, stream);
    // Class ids as one int64 tensor, or condition tensors sliced with the rows.
    const c: Tensor[] = [];
    try {
      if (cond && !isTensorList(cond)) c.push(classTensor(Array.from(cond).slice(start, end), module.device));
      else if (cond) for (const t of cond) c.push(whole ? t : await slice(t, start, end, stream));
      const r = await module.call(method, [xs, ...c], stream);
      if (typeof r !== 'object' || r === null || !('toArray' in r))
        throw new DiffusionSearchError(`'${module.path}' ${method} did not return a tensor`, 'SHAPE');
      const t = r as Tensor;
      checkOutputShape(module, method, t, end - start);
      out.push(Float32Array.from((await t.toArray(stream)) as Float32Array));
      t.dispose();
    } finally {
      if (!whole || !isTensorList(cond)) c.forEach((t) => t.dispose());
      if (xs !== x) xs.dispose();
    }
  }
  return out;
}

/**
 * Samples must have the shape the module's card declares: else libtorch fails deep inside the
 * forward (a NATIVE error, HTTP 500 from serve) where the request only paired a model with a
 * verifier or eval model of another shape (gmm2d with 'self', or with eval: true).
 */
export function checkSampleShape(module: TorchModule, shape: readonly number[], what: string): void {
  const want = module.card?.sample_shape;
  if (!Array.isArray(want) || !want.every((d) => Number.isInteger(d) && d > 0)) return;
  if (shape.length !== want.length + 1 || want.some((d, i) => d !== shape[i + 1]))
    throw new DiffusionSearchError(
      `${what} takes samples of shape [${want}] (its model card), got [${shape.slice(1)}]`,
      'SHAPE',
    );
}

/**
 * forward and logits give rows (forward one score each: [N] or [N, 1]); a video verifier that
 * scores each frame ([N, T]) would otherwise be read as N·T scores of other samples.
 */
function checkOutputShape(module: TorchModule, method: string, t: Tensor, rows: number): void {
  const wrong = (what: string) =>
    new DiffusionSearchError(`'${module.path}' ${method} returned [${t.shape}] for ${rows} samples; ${what}`, 'SHAPE');
  if (t.shape[0] !== rows) throw wrong(`want ${rows} rows`);
  if (method === 'forward' && t.shape.slice(1).some((d) => d !== 1))
    throw wrong(`want one score per sample ([${rows}]), e.g. the mean over frames`);
}

const isTensorList = (c: unknown): c is Tensor[] => Array.isArray(c) && c.length > 0 && typeof c[0] === 'object';

const concat = (parts: Float32Array[]) => {
  const out = new Float32Array(parts.reduce((s, p) => s + p.length, 0));
  let o = 0;
  for (const p of parts) out.set(p, o), (o += p.length);
  return out;
};

/**
 * forward(x0, cond) -> [N] of any TorchScript verifier; or, when its card lists
 * "inputs": ["x0", name, ...], forward(x0, ...those condition tensors) — a prompt-aware verifier
 * reading the same condition tensors the denoiser was given.
 */
export class TorchScriptVerifier implements Verifier {
  /** Condition tensors forward takes after x0 (from the card's "inputs"); empty: a class id. */
  readonly conditionInputs: string[];
  readonly needsCondition: boolean;
  constructor(
    readonly module: TorchModule,
    readonly name = String(module.card?.name ?? module.path),
    readonly maxBatch = 256,
  ) {
    const inputs = module.card?.inputs;
    if (
      inputs !== undefined &&
      (!Array.isArray(inputs) || inputs[0] !== 'x0' || !inputs.every((i) => typeof i === 'string'))
    )
      throw new DiffusionSearchError(
        `verifier card of '${module.path}': "inputs" must be ["x0", condition names...]`,
        'MODEL_CARD',
      );
    this.conditionInputs = inputs ? (inputs as string[]).slice(1) : [];
    this.needsCondition = this.conditionInputs.length > 0;
  }
  static async load(file: string, o: { device?: string; name?: string; maxBatch?: number } = {}) {
    const m = await loadModule(file, inferenceLoad(o.device));
    return new TorchScriptVerifier(m, o.name ?? String(m.card?.name ?? file), o.maxBatch);
  }
  async score(x0: Tensor, cond: ArrayLike<number>, extras: ScoreExtras = {}): Promise<Float32Array> {
    if (!this.needsCondition)
      return concat(await chunked(this.module, 'forward', x0, cond, this.maxBatch, extras.stream));
    const given = extras.condition ?? {};
    const missing = this.conditionInputs.filter((k) => !given[k]);
    if (missing.length)
      throw new DiffusionSearchError(
        `verifier '${this.name}' reads the condition tensors [${this.conditionInputs}], but the search has no ` +
          `${missing.join(', ')} (a class-conditional model?)`,
        'ARGUMENT',
      );
    return concat(
      await chunked(
        this.module,
        'forward',
        x0,
        this.conditionInputs.map((k) => given[k]),
        this.maxBatch,
        extras.stream,
      ),
    );
  }
}

/** The log-softmax of the conditioning class from a module's logits(x) -> [N, C]. */
export class ClassLogitVerifier implements Verifier {
  constructor(
    readonly module: TorchModule,
    readonly name = `${String(module.card?.name ?? 'classifier')}:logit`,
    readonly maxBatch = 256,
  ) {
    if (!module.hasMethod('logits'))
      throw new DiffusionSearchError(`'${module.path}' has no logits method`, 'MODEL_LOAD');
  }
  async score(x0: Tensor, cond: ArrayLike<number>, extras: ScoreExtras = {}): Promise<Float32Array> {
    const logits = concat(await chunked(this.module, 'logits', x0, null, this.maxBatch, extras.stream));
    const n = x0.shape[0];
    const C = logits.length / n;
    return Float32Array.from({ length: n }, (_, i) => {
      const row = logits.subarray(i * C, (i + 1) * C);
      const m = Math.max(...row);
      let z = 0;
      for (const v of row) z += Math.exp(v - m);
      const c = cond[i];
      if (!(c >= 0 && c < C))
        throw new DiffusionSearchError(`class ${c} is outside the verifier's ${C} classes`, 'ARGUMENT');
      return row[c] - m - Math.log(z);
    });
  }
}

/**
 * Self-supervised verifier (Ma et al.): cosine similarity between the features of the x̂0
 * predicted at σ ≈ 0.4 and of the final sample. Needs no labels.
 */
export class SelfSupervisedVerifier implements Verifier {
  readonly needsMidPrediction = true;
  constructor(
    readonly module: TorchModule,
    readonly name = `${String(module.card?.name ?? 'features')}:self`,
    readonly maxBatch = 256,
  ) {
    if (!module.hasMethod('features'))
      throw new DiffusionSearchError(`'${module.path}' has no features method`, 'MODEL_LOAD');
  }
  async score(x0: Tensor, _cond: ArrayLike<number>, extras: ScoreExtras = {}): Promise<Float32Array> {
    if (!extras.x0Mid)
      throw new DiffusionSearchError(`verifier '${this.name}' needs the x̂0 predicted at σ ≈ 0.4`, 'ARGUMENT');
    const a = concat(await chunked(this.module, 'features', x0, null, this.maxBatch, extras.stream));
    const b = concat(await chunked(this.module, 'features', extras.x0Mid, null, this.maxBatch, extras.stream));
    const n = x0.shape[0],
      D = a.length / n;
    return Float32Array.from({ length: n }, (_, i) => {
      let ab = 0,
        aa = 0,
        bb = 0;
      for (let d = 0; d < D; d++) {
        const u = a[i * D + d],
          v = b[i * D + d];
        ab += u * v;
        aa += u * u;
        bb += v * v;
      }
      return ab / Math.sqrt(aa * bb + 1e-12);
    });
  }
}
