/**
 * The project's own judge: a separately trained classifier (eval/fashion-eval.pt) that is never a
 * search verifier. Reports class accuracy, the mean log-probability of the intended class, an
 * Inception-style score and Fréchet distances on its features against the real test split
 * (overall and per class).
 */
import path from 'node:path';
import { DiffusionSearchError } from '../errors';
import { loadModule, type TorchModule } from '../module';
import { inferenceLoad } from '../models/inference-load';
import { packageRoot, type NativeTensor } from '../native';
import { tensor } from '../tensor';
import { classTensor } from '../tensor-ops';
import { checkSampleShape } from '../verifiers/torchscript';
import { frechetDistance, meanCov } from './linalg';

export const DEFAULT_EVAL_MODEL = path.join(packageRoot, 'eval', 'fashion-eval.pt');

export interface ClassMetrics {
  n: number;
  accuracy: number;
  mean_log_prob: number;
  fid: number | null;
}

export interface EvalReport extends ClassMetrics {
  inception_score: number;
  per_class: Record<string, ClassMetrics>;
}

interface Stats {
  dim: number;
  muAll: Float32Array;
  covAll: Float32Array;
  muClass: Float32Array;
  covClass: Float32Array;
}

export class Evaluator {
  private constructor(
    readonly module: TorchModule,
    private readonly stats: Stats,
  ) {}

  static async load(file = DEFAULT_EVAL_MODEL, device = 'cpu'): Promise<Evaluator> {
    const m = await loadModule(file, inferenceLoad(device));
    for (const method of ['logits', 'features', 'fid_stats'])
      if (!m.hasMethod(method))
        throw new DiffusionSearchError(`'${file}' has no ${method} method: not an eval model`, 'MODEL_LOAD');
    const out = (await m.call('fid_stats', [])) as NativeTensor[];
    const [muAll, covAll, muClass, covClass] = (await Promise.all(out.map((t) => t.toArray()))) as Float32Array[];
    const dim = out[0].shape[0];
    out.forEach((t) => t.dispose());
    return new Evaluator(m, { dim, muAll, covAll, muClass, covClass });
  }

  /**
   * Metrics of samples [n, ...] meant to be of classes `cls` (one per sample). `feats`: their
   * feature rows when the caller has them already (from features()), else computed here.
   */
  async evaluate(
    samples: Float32Array,
    shape: number[],
    cls: ArrayLike<number>,
    classNames?: string[],
    feats?: Float32Array,
  ): Promise<EvalReport> {
    const n = shape[0];
    if (cls.length !== n) throw new DiffusionSearchError(`eval: ${n} samples but ${cls.length} classes`, 'SHAPE');
    checkSampleShape(this.module, shape, 'eval: the eval/ classifier');
    feats ??= await this.features(samples, shape);
    const x = tensor(samples, shape, { device: this.module.device });
    const c = classTensor(cls, this.module.device);
    try {
      const logitsT = (await this.module.call('logits', [x])) as NativeTensor;
      const logits = (await logitsT.toArray()) as Float32Array;
      const C = logits.length / n,
        D = feats.length / n;
      logitsT.dispose();
      if (D !== this.stats.dim)
        throw new DiffusionSearchError(`eval: features have ${D} dims, statistics ${this.stats.dim}`, 'SHAPE');
      const logp = new Float64Array(n * C);
      for (let i = 0; i < n; i++) {
        const row = logits.subarray(i * C, (i + 1) * C);
        const m = Math.max(...row);
        const z = Math.log(row.reduce((s, v) => s + Math.exp(v - m), 0)) + m;
        for (let k = 0; k < C; k++) logp[i * C + k] = row[k] - z;
      }
      const summarize = (rows: number[]): ClassMetrics & { fidParts?: never } => {
        let correct = 0,
          lp = 0;
        for (const i of rows) {
          let arg = 0;
          for (let k = 1; k < C; k++) if (logp[i * C + k] > logp[i * C + arg]) arg = k;
          if (arg === cls[i]) correct++;
          lp += logp[i * C + cls[i]];
        }
        return {
          n: rows.length,
          accuracy: rows.length ? correct / rows.length : NaN,
          mean_log_prob: rows.length ? lp / rows.length : NaN,
          fid: null,
        };
      };
      const all = Array.from({ length: n }, (_, i) => i);
      const report: EvalReport = { ...summarize(all), inception_score: inceptionScore(logp, n, C), per_class: {} };
      report.fid = n >= 2 ? this.fid(feats, all, D, -1) : null;
      for (const k of [...new Set(Array.from(cls))].sort((a, b) => a - b)) {
        const rows = all.filter((i) => cls[i] === k);
        report.per_class[classNames?.[k] ?? String(k)] = {
          ...summarize(rows),
          fid: rows.length >= 2 ? this.fid(feats, rows, D, k) : null,
        };
      }
      return report;
    } finally {
      x.dispose();
      c.dispose();
    }
  }

  /** Feature rows [n, D] of samples (the space of the Fréchet distances; diversity reads it too). */
  async features(samples: Float32Array, shape: number[]): Promise<Float32Array> {
    checkSampleShape(this.module, shape, 'eval: the eval/ classifier');
    const x = tensor(samples, shape, { device: this.module.device });
    try {
      const t = (await this.module.call('features', [x])) as NativeTensor;
      const out = (await t.toArray()) as Float32Array;
      t.dispose();
      return out;
    } finally {
      x.dispose();
    }
  }

  private fid(feats: Float32Array, rows: number[], D: number, k: number): number {
    const X = new Float64Array(rows.length * D);
    rows.forEach((r, i) => X.set(feats.subarray(r * D, (r + 1) * D), i * D));
    const { mu, cov } = meanCov(X, rows.length, D);
    const s = this.stats;
    const mu2 = k < 0 ? s.muAll : s.muClass.subarray(k * D, (k + 1) * D);
    const cov2 = k < 0 ? s.covAll : s.covClass.subarray(k * D * D, (k + 1) * D * D);
    return frechetDistance(mu, cov, mu2, cov2, D);
  }
}

/** exp(E_x KL(p(y|x) ‖ p(y))) from log-probabilities [n, C]. */
export function inceptionScore(logp: Float64Array, n: number, C: number): number {
  const py = new Float64Array(C);
  for (let i = 0; i < n; i++) for (let k = 0; k < C; k++) py[k] += Math.exp(logp[i * C + k]) / n;
  let kl = 0;
  for (let i = 0; i < n; i++)
    for (let k = 0; k < C; k++) {
      const p = Math.exp(logp[i * C + k]);
      if (p > 0) kl += (p * (logp[i * C + k] - Math.log(py[k]))) / n;
    }
  return Math.exp(kl);
}
