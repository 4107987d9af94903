/**
 * The tilted target p* ∝ p·exp(r/α) (alpha): the particle potentials multiply to exp(λ·r_final)
 * along every path, exactly; and on gmm2d, whose p* is a closed-form Gaussian mixture, particles
 * and best-of-n with α return samples whose mode weights, mean reward and MMD to p* lie within
 * bounds taken from the spread of as many exact draws from p* (so the bound is what sampling
 * noise allows), while particles with the default λ = 10 (no α) fall outside them.
 */
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { generate } from '../src/generate';
import { loadModule } from '../src/module';
import { finalLogWeights, newWeights, reweight, type Potential } from '../src/search/particles';
import { mulberry32 } from './helpers';

describe('particle potentials for the tilted target', () => {
  it('every potential times the final correction is exp(λ·r_final) on each path; Ẑ of one particle is that', () => {
    const u = mulberry32((Math.random() * 2 ** 31) | 0);
    for (const potential of ['max', 'add', 'diff'] as Potential[]) {
      const K = 5,
        steps = 7,
        lambda = 0.5 + 3 * u();
      const w = newWeights(K);
      const paths = Array.from({ length: K }, () => [] as number[]);
      for (let t = 0; t < steps; t++) {
        const r = Array.from({ length: K }, () => 4 * u() - 2);
        r.forEach((v, p) => paths[p].push(v));
        reweight(w, r, potential, lambda);
      }
      // Σ log G_t along each path, from the definitions (max: best so far; add: running sum; diff: change).
      const logG = paths.map((rs) =>
        rs.reduce((s, _, t) => {
          const g =
            potential === 'max'
              ? Math.max(...rs.slice(0, t + 1))
              : potential === 'add'
                ? rs.slice(0, t + 1).reduce((a, b) => a + b, 0)
                : rs[t] - (t ? rs[t - 1] : 0);
          return s + lambda * g;
        }, 0),
      );
      logG.forEach((g, p) => expect(w.cum[p]).toBeCloseTo(g, 10));
      const rFinal = Array.from({ length: K }, () => 4 * u() - 2);
      const lw = finalLogWeights(w, rFinal, lambda);
      // No resampling happened: each particle's final weight is exp(λ·r_final) / K of the total, and the
      // run's Ẑ is the mean of exp(λ·r_final): the log-weights are λ·r_final − log K, exactly.
      rFinal.forEach((r, p) => expect(lw[p]).toBeCloseTo(lambda * r - Math.log(K), 9));
    }
  });
});

/** What the test reads of gmm2d's card: the prior mixture, the reward and the card's own target. */
interface GmmCard {
  prior: { weights: number[]; means: number[][]; stds: number[] };
  reward: { c: number[]; s: number };
  target: { weights: number[] };
}

interface Component {
  w: number;
  mu: [number, number];
  v: number;
}

/** p* from the card's prior and reward, in float64 (Gaussian × Gaussian tilt). */
function tiltedMixture(card: GmmCard, alpha: number): Component[] {
  const { weights, means, stds } = card.prior;
  const { c, s } = card.reward;
  const S2 = alpha * s * s;
  const logs = weights.map((w: number, k: number) => {
    const v = stds[k] ** 2;
    const d2 = (means[k][0] - c[0]) ** 2 + (means[k][1] - c[1]) ** 2;
    return Math.log(w) - Math.log(2 * Math.PI * (v + S2)) - d2 / (2 * (v + S2));
  });
  const top = Math.max(...logs);
  const z = logs.reduce((a: number, l: number) => a + Math.exp(l - top), 0);
  return weights.map((_: number, k: number) => {
    const v = stds[k] ** 2;
    const v2 = 1 / (1 / v + 1 / S2);
    return {
      w: Math.exp(logs[k] - top) / z,
      mu: [v2 * (means[k][0] / v + c[0] / S2), v2 * (means[k][1] / v + c[1] / S2)],
      v: v2,
    };
  });
}

const H = 1;
const d2 = (a: number[], b: number[]) => (a[0] - b[0]) ** 2 + (a[1] - b[1]) ** 2;
const eK = (mu: number[], v: number, y: number[]) => ((H * H) / (H * H + v)) * Math.exp(-d2(mu, y) / (2 * (H * H + v)));

/** Three statistics of a sample set against p*: TV of the mode weights, mean reward, unbiased MMD². */
function stats(p: Component[], xs: number[][], c: number[]): { tv: number; reward: number; mmd2: number } {
  const counts = p.map(() => 0);
  for (const x of xs) {
    const l = p.map((q) => Math.log(q.w + 1e-300) - Math.log(q.v) - d2(x, q.mu) / (2 * q.v));
    counts[l.indexOf(Math.max(...l))]++;
  }
  const tv = 0.5 * p.reduce((t, q, k) => t + Math.abs(counts[k] / xs.length - q.w), 0);
  const reward = xs.reduce((t, x) => t - d2(x, c) / 2, 0) / xs.length;
  const n = xs.length;
  let yy = 0,
    xy = 0,
    xx = 0;
  for (let i = 0; i < n; i++)
    for (let j = 0; j < n; j++) if (i !== j) yy += Math.exp(-d2(xs[i], xs[j]) / 2) / (n * (n - 1));
  for (const y of xs) for (const q of p) xy += (q.w * eK(q.mu, q.v, y)) / n;
  for (const a of p) for (const b of p) xx += a.w * b.w * eK(a.mu, a.v + b.v, b.mu);
  return { tv, reward, mmd2: yy - 2 * xy + xx };
}

function exactDraws(p: Component[], n: number, u: () => number): number[][] {
  return Array.from({ length: n }, () => {
    let r = u(),
      k = 0;
    while (k < p.length - 1 && r > p[k].w) (r -= p[k].w), k++;
    const rad = Math.sqrt(-2 * Math.log(1 - u())),
      th = 2 * Math.PI * u();
    return [p[k].mu[0] + Math.sqrt(p[k].v) * rad * Math.cos(th), p[k].mu[1] + Math.sqrt(p[k].v) * rad * Math.sin(th)];
  });
}

describe('gmm2d: samples of the tilted target against its closed form', () => {
  const alpha = 0.5,
    n = 64;
  let card: GmmCard;
  let p: Component[];
  /** Per statistic, the band mean ± 5 sd of 400 sets of n exact draws from p*. */
  let band: Record<'tv' | 'reward' | 'mmd2', [number, number]>;
  beforeAll(async () => {
    card = (await loadModule(path.join(__dirname, '..', 'models', 'gmm2d.pt'))).card as unknown as GmmCard;
    p = tiltedMixture(card, alpha);
    const u = mulberry32((Math.random() * 2 ** 31) | 0);
    const sets = Array.from({ length: 400 }, () => stats(p, exactDraws(p, n, u), card.reward.c));
    band = Object.fromEntries(
      (['tv', 'reward', 'mmd2'] as const).map((k) => {
        const xs = sets.map((s) => s[k]);
        const m = xs.reduce((a, b) => a + b, 0) / xs.length;
        const sd = Math.sqrt(xs.reduce((a, b) => a + (b - m) ** 2, 0) / (xs.length - 1));
        return [k, [m - 5 * sd, m + 5 * sd]];
      }),
    ) as typeof band;
  });

  it("the closed form agrees with the card's own target weights at α = 0.5", () => {
    p.forEach((q, k) => expect(q.w).toBeCloseTo(card.target.weights[k], 9));
  });

  const run = async (fields: Record<string, unknown>) => {
    const r = await generate({ model: 'gmm2d', budget: 2000, n, seed: 3, ...fields });
    const xs = Array.from({ length: n }, (_, i) => [r.samples[2 * i], r.samples[2 * i + 1]]);
    return stats(p, xs, card.reward.c);
  };
  const inside = (s: ReturnType<typeof stats>) =>
    (['tv', 'reward', 'mmd2'] as const).filter((k) => s[k] >= band[k][0] && s[k] <= band[k][1]);

  it('particles with α sample p* (TV of mode weights, mean reward, MMD² within exact-draw bands)', async () => {
    const s = await run({ algorithm: 'particles', alpha });
    expect(inside(s), JSON.stringify({ s, band })).toEqual(['tv', 'reward', 'mmd2']);
  });

  it('particles with α over many small runs (pooled by their normalising constants) sample p*', async () => {
    const s = await run({ algorithm: 'particles', alpha, algorithmOptions: { particles: 10 } });
    expect(inside(s), JSON.stringify({ s, band })).toEqual(['tv', 'reward', 'mmd2']);
  });

  it('best-of-n with α (importance resampling) samples p* too', async () => {
    const s = await run({ algorithm: 'best-of-n', alpha });
    expect(inside(s), JSON.stringify({ s, band })).toEqual(['tv', 'reward', 'mmd2']);
  });

  it('particles without α (λ = 10) over-optimise: the same check fails', async () => {
    const s = await run({ algorithm: 'particles' });
    expect(inside(s).length, JSON.stringify({ s, band })).toBeLessThan(3);
    expect(s.reward).toBeGreaterThan(band.reward[1]);
  });
});
