/**
 * What a search keeps beside its top-K archive when the request asks for more than the best:
 * DiversePool holds every distinct sample scored with its feature row, for the diverse top-k
 * (./mmr); TiltedDraws draws K samples from the scored ones in proportion to their weights, for
 * the tilted target p·exp(r/α) (./tilt). Both hand their picks to SearchRun.finish.
 */
import type { NativeStream, NativeTensor } from '../native';
import type { Seed } from '../ops';
import { slice } from '../tensor-ops';
import { TensorScope } from '../tensor-scope';
import { featuresOf } from '../verifiers/features';
import type { Verifier } from '../verifiers/verifier';
import { mmrSelect } from './mmr';

type Tensor = NativeTensor;
export type Kept = { sample: Tensor; reward: number; steps?: number; image?: Tensor };

/** One scored batch: the samples, what the verifier scored (decoded images, or the samples), rewards. */
export interface Scored {
  final: Tensor;
  scored: Tensor;
  images: Tensor | null;
  rewards: Float32Array;
  steps?: ArrayLike<number>;
  /** Log-weights of the rows for TiltedDraws (default r/α). */
  logWeights?: ArrayLike<number>;
}

export interface Pool {
  offer(b: Scored): Promise<void>;
  /** The K picks, best reward first; the pool gives them up (disposes the rest). */
  take(k: number): Kept[];
  dispose(): void;
}

async function keptRow(b: Scored, i: number, stream?: NativeStream): Promise<Kept> {
  using s = new TensorScope();
  const sample = await s.track(slice(b.final, i, i + 1, stream));
  const image = b.images ? await s.track(slice(b.images, i, i + 1, stream)) : undefined;
  return s.keep({ sample, reward: b.rewards[i], steps: b.steps?.[i], image });
}

function disposeKept(k: Kept): void {
  k.sample.dispose();
  k.image?.dispose();
}

/** Every distinct scored sample and its feature row (the verifier's features, else the scored sample). */
export class DiversePool implements Pool {
  private readonly rows: Array<Kept & { values: Float32Array }> = [];
  private readonly feats: Float32Array[] = [];
  private dim = 0;
  private readonly featurer: ReturnType<typeof featuresOf>;

  constructor(
    verifier: Verifier,
    private readonly lambda: number,
    private readonly stream?: NativeStream,
  ) {
    this.featurer = featuresOf(verifier);
  }

  /** Where the features come from: the verifier's name, or 'samples'. */
  get space(): string {
    return this.featurer?.name ?? 'samples';
  }

  async offer(b: Scored): Promise<void> {
    const n = b.rewards.length;
    const f = this.featurer
      ? await this.featurer.run(b.scored, this.stream)
      : ((await b.scored.toArray(this.stream)) as Float32Array);
    const values = (await b.final.toArray(this.stream)) as Float32Array;
    const per = values.length / n;
    this.dim = f.length / n;
    for (let i = 0; i < n; i++) {
      const v = values.subarray(i * per, (i + 1) * per);
      if (this.rows.some((r) => r.reward === b.rewards[i] && r.values.every((x, j) => Object.is(x, v[j])))) continue;
      this.rows.push({ ...(await keptRow(b, i, this.stream)), values: Float32Array.from(v) });
      this.feats.push(Float32Array.from(f.subarray(i * this.dim, (i + 1) * this.dim)));
    }
  }

  take(k: number): Kept[] {
    const all = new Float32Array(this.feats.length * this.dim);
    this.feats.forEach((f, i) => all.set(f, i * this.dim));
    const rewards = this.rows.map((r) => r.reward);
    const picked = mmrSelect(rewards, all, Math.max(1, this.dim), k, this.lambda);
    const chosen = new Set(picked);
    const out = picked.map((i) => this.rows[i]).sort((a, b) => b.reward - a.reward);
    this.rows.forEach((r, i) => chosen.has(i) || disposeKept(r));
    this.rows.length = 0;
    return out.map(({ values: _v, ...k }) => k);
  }

  dispose(): void {
    this.rows.forEach(disposeKept);
    this.rows.length = 0;
  }
}

/**
 * K independent draws from everything offered, each row with probability ∝ exp(logWeight): one
 * weighted reservoir per draw, so memory stays K rows however many are scored. The uniforms come
 * from the search's seed (the same seed, the same draws).
 */
export class TiltedDraws implements Pool {
  private logTotal = -Infinity;
  private readonly slots: Array<Kept | null>;
  private readonly uniform: () => number;

  constructor(
    private readonly alpha: number,
    k: number,
    seed: Seed,
    private readonly stream?: NativeStream,
  ) {
    this.slots = new Array<Kept | null>(k).fill(null);
    this.uniform = seededUniform(seed);
  }

  async offer(b: Scored): Promise<void> {
    for (let i = 0; i < b.rewards.length; i++) {
      const lw = b.logWeights ? b.logWeights[i] : b.rewards[i] / this.alpha;
      if (!(lw > -Infinity)) continue;
      this.logTotal = logAddExp(this.logTotal, lw);
      const p = Math.exp(lw - this.logTotal);
      for (let j = 0; j < this.slots.length; j++) {
        if (!(this.uniform() < p)) continue;
        const old = this.slots[j];
        this.slots[j] = await keptRow(b, i, this.stream);
        if (old) disposeKept(old);
      }
    }
  }

  take(_k: number): Kept[] {
    const out = this.slots.filter((s): s is Kept => s !== null).sort((a, b) => b.reward - a.reward);
    this.slots.fill(null);
    return out;
  }

  dispose(): void {
    this.slots.forEach((s) => s && disposeKept(s));
    this.slots.fill(null);
  }
}

export function logAddExp(a: number, b: number): number {
  if (a === -Infinity) return b;
  if (b === -Infinity) return a;
  const m = Math.max(a, b);
  return m + Math.log(Math.exp(a - m) + Math.exp(b - m));
}

/** Uniforms in [0, 1) from a seed: splitmix64 over the seed's 64 bits, 53-bit doubles. */
export function seededUniform(seed: Seed): () => number {
  const M = (1n << 64n) - 1n;
  let s = (BigInt.asUintN(64, BigInt(seed)) ^ 0x5851f42d4c957f2dn) & M;
  return () => {
    s = (s + 0x9e3779b97f4a7c15n) & M;
    let z = s;
    z = ((z ^ (z >> 30n)) * 0xbf58476d1ce4e5b9n) & M;
    z = ((z ^ (z >> 27n)) * 0x94d049bb133111ebn) & M;
    z ^= z >> 31n;
    return Number(z >> 11n) / 2 ** 53;
  };
}
