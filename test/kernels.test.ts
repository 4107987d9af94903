import { describe, expect, it } from 'vitest';
import * as ops from '../src/ops';
import { setNumThreads } from '../src/stream';
import { tensor } from '../src/tensor';
import { philox, refNormal, refTournament, refUniform } from './philox';
import { expectCode, randn as jsRandn } from './helpers';

// Any 64-bit seed (the product alone could pass 2^64: 4099 × 2^52 > 2^64, a 1-in-1400 flake).
const freshSeed = () => BigInt.asUintN(64, BigInt(Math.floor(Math.random() * 2 ** 52)) * 4099n + 17n);
const arr = async (t: ops.Tensor) => (await t.toArray()) as Float32Array;
const close = (got: number, want: number, tol: number) => Math.abs(got - want) <= tol * (1 + Math.abs(want));

function expectAll(got: ArrayLike<number>, want: ArrayLike<number>, tol: number, what: string) {
  expect(got.length).toBe(want.length);
  let bad = -1;
  for (let i = 0; i < want.length; i++)
    if (!close(got[i], want[i], tol)) {
      bad = i;
      break;
    }
  if (bad >= 0) throw new Error(`${what}: element ${bad}: got ${got[bad]}, want ${want[bad]}`);
}

/** Reference noise ε(seed, id, step, e) for a [rows, dim] layout. */
function refNoise(seed: bigint, ids: number[], step: number, dim: number): Float64Array {
  const out = new Float64Array(ids.length * dim);
  ids.forEach((id, r) => {
    for (let e = 0; e < dim; e++) out[r * dim + e] = refNormal(seed, id, step, e);
  });
  return out;
}

describe('Philox noise', () => {
  it('matches the Philox4x32-10 known-answer vectors', async () => {
    expect(philox([0, 0, 0, 0], [0, 0])).toEqual([0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8]);
    expect(philox([0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff], [0xffffffff, 0xffffffff])).toEqual([
      0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd,
    ]);
    // seed 0, id 0, step 0: the four uniforms of counter 0 are the KAT words' top 24 bits.
    const u = await arr(await ops.uniform([1, 4], { seed: 0 }));
    expectAll(
      u,
      [0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8].map((r) => ((r >>> 8) + 1) * 2 ** -24),
      0,
      'uniform KAT',
    );
  });

  it('uniforms and normals equal an independent float64 reference for fresh seeds, ids, steps', async () => {
    for (const [rows, dim] of [
      [3, 1],
      [2, 7],
      [4, 33],
      [1, 1000],
    ]) {
      const seed = freshSeed();
      const ids = Array.from({ length: rows }, () => Math.floor(Math.random() * 1e9));
      const step = Math.floor(Math.random() * 1000);
      const u = await arr(await ops.uniform([rows, dim], { seed, ids, step }));
      const z = await arr(await ops.randn([rows, dim], { seed, ids, step }));
      const want = refNoise(seed, ids, step, dim);
      for (let r = 0; r < rows; r++)
        for (let e = 0; e < dim; e++) expect(u[r * dim + e]).toBe(refUniform(seed, ids[r], step, e));
      expectAll(z, want, 1e-5, 'randn');
    }
  });

  it('is N(0,1): mean, variance and Kolmogorov–Smirnov on 2^20 draws', async () => {
    const z = await arr(await ops.randn([1024, 1024], { seed: freshSeed() }));
    const n = z.length;
    let m = 0,
      v = 0;
    for (const x of z) m += x;
    m /= n;
    for (const x of z) v += (x - m) ** 2;
    v /= n - 1;
    expect(Math.abs(m)).toBeLessThan(5 / Math.sqrt(n));
    expect(Math.abs(v - 1)).toBeLessThan(5 * Math.sqrt(2 / n));
    const sorted = Float64Array.from(z).sort();
    const phi = (x: number) => 0.5 * (1 + erf(x / Math.SQRT2));
    let d = 0;
    for (let i = 0; i < n; i += 1) {
      const f = phi(sorted[i]);
      d = Math.max(d, Math.abs(f - i / n), Math.abs((i + 1) / n - f));
    }
    expect(d * Math.sqrt(n)).toBeLessThan(1.95); // KS critical value at α = 0.001
  });

  it('streams of different ids and steps are uncorrelated', async () => {
    const dim = 1 << 16;
    const z = await arr(await ops.randn([3, dim], { seed: 5, ids: [0, 1, 2] }));
    const w = await arr(await ops.randn([1, dim], { seed: 5, ids: [0], step: 1 }));
    const corr = (a: Float32Array, b: Float32Array) => {
      let s = 0;
      for (let i = 0; i < a.length; i++) s += a[i] * b[i];
      return s / a.length;
    };
    const row = (i: number) => z.subarray(i * dim, (i + 1) * dim);
    for (const [a, b] of [
      [row(0), row(1)],
      [row(1), row(2)],
      [row(0), w],
    ] as const)
      expect(Math.abs(corr(a, b))).toBeLessThan(5 / Math.sqrt(dim));
  });

  it('a sample gets the same noise whatever its batch, position or thread count', async () => {
    const dim = 5000,
      seed = freshSeed();
    const alone = await arr(await ops.randn([1, dim], { seed, ids: [42], step: 3 }));
    const inBatch = await arr(await ops.randn([3, dim], { seed, ids: [7, 42, 9], step: 3 }));
    expect(Array.from(inBatch.subarray(dim, 2 * dim))).toEqual(Array.from(alone));
    setNumThreads(1);
    const one = await arr(await ops.randn([4, 70000], { seed }));
    setNumThreads(2);
    const two = await arr(await ops.randn([4, 70000], { seed }));
    expect(Buffer.from(one.buffer).equals(Buffer.from(two.buffer))).toBe(true);
  });
});

describe('mutations', () => {
  it('op 1 mutateGaussian equals sqrt(1-β²)·parent[idx] + β·ε for every element', async () => {
    for (const [P, K, dim] of [
      [1, 1, 1],
      [5, 9, 17],
      [8, 3, 784],
    ]) {
      const parents = jsRandn(P * dim);
      const idx = Array.from({ length: K }, () => Math.floor(Math.random() * P));
      const ids = Array.from({ length: K }, (_, k) => 1000 + k);
      const beta = Math.random(),
        seed = freshSeed(),
        step = 2;
      const out = await arr(await ops.mutateGaussian(tensor(parents, [P, dim]), idx, beta, { seed, ids, step }));
      const eps = refNoise(seed, ids, step, dim);
      const want = new Float64Array(K * dim);
      for (let k = 0; k < K; k++)
        for (let e = 0; e < dim; e++)
          want[k * dim + e] = Math.sqrt(1 - beta * beta) * parents[idx[k] * dim + e] + beta * eps[k * dim + e];
      expectAll(out, want, 2e-5, 'mutateGaussian');
    }
  });

  it('op 1 keeps N(0,1) statistics from N(0,1) parents', async () => {
    const P = 16,
      dim = 1 << 14,
      K = 32;
    const parents = await ops.randn([P, dim], { seed: freshSeed() });
    const idx = Array.from({ length: K }, (_, k) => k % P);
    const out = await arr(
      await ops.mutateGaussian(parents, idx, 0.2, { seed: freshSeed(), ids: idx.map((k) => k + 100) }),
    );
    let m = 0,
      v = 0;
    for (const x of out) m += x;
    m /= out.length;
    for (const x of out) v += (x - m) ** 2;
    v /= out.length;
    expect(Math.abs(m)).toBeLessThan(0.01);
    expect(Math.abs(v - 1)).toBeLessThan(0.01);
  });

  it('op 2 mutateAdditive equals parent[idx] + s·ε', async () => {
    const P = 4,
      K = 6,
      dim = 50;
    const parents = jsRandn(P * dim);
    const idx = [3, 0, 0, 2, 1, 3];
    const s = Array.from({ length: K }, () => Math.random() * 2);
    const seed = freshSeed();
    const out = await arr(await ops.mutateAdditive(tensor(parents, [P, 5, 10]), idx, s, { seed, step: 9 }));
    const eps = refNoise(
      seed,
      idx.map((_, k) => k),
      9,
      dim,
    );
    const want = new Float64Array(K * dim);
    for (let k = 0; k < K; k++)
      for (let e = 0; e < dim; e++)
        want[k * dim + e] = parents[idx[k] * dim + e] + Math.fround(s[k]) * eps[k * dim + e];
    expectAll(out, want, 2e-5, 'mutateAdditive');
  });

  it('op 3 sphereNeighbours: exact cosine τ and norm, and the float64 formula', async () => {
    for (const [B, dim] of [
      [1, 2],
      [3, 100],
      [5, 784],
    ]) {
      const x = jsRandn(B * dim).map((v) => v * 3);
      const tau = Math.random() * 2 - 1,
        seed = freshSeed();
      const ids = Array.from({ length: B }, (_, b) => 50 + b);
      const out = await arr(await ops.sphereNeighbours(tensor(x, [B, dim]), tau, { seed, ids }));
      const v = refNoise(seed, ids, 0, dim);
      for (let b = 0; b < B; b++) {
        const xr = x.subarray(b * dim, (b + 1) * dim),
          o = out.subarray(b * dim, (b + 1) * dim),
          vr = v.subarray(b * dim, (b + 1) * dim);
        const nx = Math.hypot(...xr),
          no = Math.hypot(...o);
        let dot = 0,
          vu = 0;
        for (let e = 0; e < dim; e++) {
          dot += xr[e] * o[e];
          vu += (vr[e] * xr[e]) / nx;
        }
        // The kernel sums dim float32 products: its cosine is exact to a few ulps × √dim (a 784-long
        // row once came out 1.007e-5 off τ, past a flat 1e-5).
        const tol = Math.max(1e-5, 16 * Math.sqrt(dim) * 2 ** -24);
        expect(Math.abs(no - nx) / nx).toBeLessThan(tol);
        expect(Math.abs(dot / (nx * no) - tau)).toBeLessThan(tol);
        const w = Float64Array.from(vr, (ve, e) => ve - (vu * xr[e]) / nx);
        const nw = Math.hypot(...w);
        const want = Float64Array.from(xr, (xe, e) => nx * ((tau * xe) / nx + (Math.sqrt(1 - tau * tau) * w[e]) / nw));
        expectAll(o, want, 1e-4, 'sphereNeighbours');
      }
    }
  });
});

describe('noise-path ops', () => {
  for (const path of ['rectified_flow', 'vp'] as const) {
    const a = (s: number) => (path === 'rectified_flow' ? 1 - s : Math.sqrt(1 - s * s));

    it(`op 4 renoise (${path}) equals (a_t/a_f)·x + sqrt(σ_t² − (a_t/a_f)²σ_f²)·ε`, async () => {
      const B = 6,
        dim = 40,
        seed = freshSeed();
      const x = jsRandn(B * dim);
      const from = Array.from({ length: B }, () => Math.fround(Math.random() * 0.8));
      const to = from.map((f) => Math.fround(f + Math.random() * (0.99 - f)));
      const out = await arr(await ops.renoise(tensor(x, [B, dim]), path, from, to, { seed, step: 4 }));
      const eps = refNoise(
        seed,
        from.map((_, b) => b),
        4,
        dim,
      );
      for (let b = 0; b < B; b++) {
        const r = a(to[b]) / a(from[b]);
        const s = Math.sqrt(Math.max(0, to[b] ** 2 - r * r * from[b] ** 2));
        for (let e = 0; e < dim; e++) {
          const want = r * x[b * dim + e] + s * eps[b * dim + e];
          if (!close(out[b * dim + e], want, 2e-5))
            throw new Error(`renoise ${b},${e}: ${out[b * dim + e]} vs ${want}`);
        }
      }
    });

    it(`op 5 ddimStep (${path}) equals a_t·x̂0 + sqrt(σ_t² − s²)·ε̂ + s·z and returns s`, async () => {
      const B = 5,
        dim = 30,
        seed = freshSeed();
      const x0 = jsRandn(B * dim),
        eps = jsRandn(B * dim);
      const from = Array.from({ length: B }, () => Math.fround(0.2 + Math.random() * 0.8));
      const to = from.map((f) => Math.fround(f * Math.random()));
      for (const eta of [0, 0.5, 1]) {
        const { x, std } = await ops.ddimStep(tensor(x0, [B, dim]), tensor(eps, [B, dim]), path, from, to, eta, {
          seed,
          step: 1,
        });
        const out = await arr(x),
          s = await arr(std);
        const z = refNoise(
          seed,
          from.map((_, b) => b),
          1,
          dim,
        );
        for (let b = 0; b < B; b++) {
          const ratio = (a(from[b]) * to[b]) / (a(to[b]) * from[b]);
          const sw = eta * to[b] * Math.sqrt(Math.max(0, 1 - ratio * ratio));
          expect(close(s[b], sw, 1e-5)).toBe(true);
          for (let e = 0; e < dim; e++) {
            const want =
              a(to[b]) * x0[b * dim + e] +
              Math.sqrt(Math.max(0, to[b] ** 2 - sw * sw)) * eps[b * dim + e] +
              sw * z[b * dim + e];
            if (!close(out[b * dim + e], want, 3e-5))
              throw new Error(`ddim η=${eta} ${b},${e}: ${out[b * dim + e]} vs ${want}`);
          }
        }
      }
    });
  }

  it('op 5 eulerStep and heunCombine equal the float64 formulas with per-sample σ', async () => {
    const B = 7,
      dim = 13;
    const x = jsRandn(B * dim),
      v1 = jsRandn(B * dim),
      v2 = jsRandn(B * dim);
    const from = Array.from({ length: B }, () => Math.fround(Math.random()));
    const to = from.map((f) => Math.fround(f * Math.random()));
    const e = await arr(await ops.eulerStep(tensor(x, [B, dim]), tensor(v1, [B, dim]), from, to));
    const h = await arr(
      await ops.heunCombine(tensor(x, [B, dim]), tensor(v1, [B, dim]), tensor(v2, [B, dim]), from, to),
    );
    const we = new Float64Array(B * dim),
      wh = new Float64Array(B * dim);
    for (let b = 0; b < B; b++)
      for (let i = 0; i < dim; i++) {
        const j = b * dim + i,
          dt = to[b] - from[b];
        we[j] = x[j] + dt * v1[j];
        wh[j] = x[j] + 0.5 * dt * (v1[j] + v2[j]);
      }
    expectAll(e, we, 1e-5, 'euler');
    expectAll(h, wh, 1e-5, 'heun');
  });
});

describe('op 5d rowCombine', () => {
  it('gives k = 1..4 per-row combinations c·x + d·y equal to the float64 formula, in one call', async () => {
    const B = 6,
      dim = 37;
    const x = jsRandn(B * dim),
      y = jsRandn(B * dim);
    for (let k = 1; k <= 4; k++) {
      const coef = Float64Array.from({ length: B * k * 2 }, () => (Math.random() - 0.5) * 6);
      const outs = await ops.rowCombine(tensor(x, [B, dim]), tensor(y, [B, dim]), coef, k);
      expect(outs).toHaveLength(k);
      for (let j = 0; j < k; j++) {
        expect(outs[j].shape).toEqual([B, dim]);
        const want = new Float64Array(B * dim);
        for (let b = 0; b < B; b++) {
          const [c, d] = [Math.fround(coef[(b * k + j) * 2]), Math.fround(coef[(b * k + j) * 2 + 1])];
          for (let i = 0; i < dim; i++) want[b * dim + i] = c * x[b * dim + i] + d * y[b * dim + i];
        }
        expectAll(await arr(outs[j]), want, 1e-6, `rowCombine k=${k} output ${j}`);
        outs[j].dispose();
      }
    }
  });

  it('refuses a bad k, a coef of the wrong length or kind, and non-finite coefficients', async () => {
    const x = tensor(jsRandn(8), [2, 4]);
    await expectCode(() => ops.rowCombine(x, x, new Float64Array(4), 0), 'ARGUMENT');
    await expectCode(() => ops.rowCombine(x, x, new Float64Array(20), 5), 'ARGUMENT');
    await expectCode(() => ops.rowCombine(x, x, new Float64Array(3), 1), 'SHAPE');
    await expectCode(() => ops.rowCombine(x, x, new Float32Array(4) as never, 1), 'ARGUMENT');
    await expectCode(() => ops.rowCombine(x, x, Float64Array.from([1, Number.NaN, 0, 1]), 1), 'ARGUMENT');
    await expectCode(() => ops.rowCombine(x, tensor(jsRandn(4), [1, 4]), new Float64Array(4), 1), 'SHAPE');
  });
});

describe('selection', () => {
  it('op 6 topk over segments equals a sort (ties → lower index, NaN last)', async () => {
    for (const [S, L, k] of [
      [1, 1, 1],
      [3, 10, 4],
      [5, 1000, 17],
      [2, 64, 64],
    ]) {
      const v = jsRandn(S * L).map((x) => Math.round(x * 4) / 4); // many ties
      v[0] = NaN;
      const r = await ops.topk(tensor(v, [S, L]), k);
      const vals = await arr(r.values),
        idx = (await r.indices.toArray()) as BigInt64Array;
      for (let s = 0; s < S; s++) {
        const order = Array.from({ length: L }, (_, i) => i).sort((a, b) => {
          const va = Number.isNaN(v[s * L + a]) ? -Infinity : v[s * L + a],
            vb = Number.isNaN(v[s * L + b]) ? -Infinity : v[s * L + b];
          return vb - va || a - b;
        });
        for (let j = 0; j < k; j++) {
          expect(Number(idx[s * k + j])).toBe(order[j]);
          expect(Object.is(vals[s * k + j], v[s * L + order[j]])).toBe(true);
        }
      }
    }
  });

  it('op 6 tournament selection equals the reference draw', async () => {
    const P = 37,
      fit = jsRandn(P),
      seed = freshSeed();
    const out = (await (
      await ops.tournamentSelect(tensor(fit, [P]), 50, { size: 5, seed, step: 3 })
    ).toArray()) as BigInt64Array;
    for (let t = 0; t < 50; t++) expect(Number(out[t])).toBe(refTournament(fit, t, 5, seed, 3));
  });

  it('op 6 multinomial resampling frequencies match the weights (chi-square)', async () => {
    const w = [0.05, 0.1, 0.15, 0.2, 0.5];
    const n = 200_000;
    const r = await ops.resample(tensor(Float32Array.from(w, Math.log), [5]), n, {
      method: 'multinomial',
      seed: freshSeed(),
    });
    const idx = (await r.indices.toArray()) as BigInt64Array;
    const counts = new Array(5).fill(0);
    for (const i of idx) counts[Number(i)]++;
    const chi2 = counts.reduce((s, c, i) => s + (c - n * w[i]) ** 2 / (n * w[i]), 0);
    expect(chi2).toBeLessThan(18.47); // χ²(4) at p = 0.001
    const ess = 1 / w.reduce((s, x) => s + x * x, 0);
    expect(Math.abs(r.ess - ess)).toBeLessThan(1e-4);
  });

  it('op 6 systematic resampling gives each index floor or ceil of n·w', async () => {
    const logW = jsRandn(20);
    const n = 1000;
    const r = await ops.resample(tensor(logW, [20]), n, { method: 'systematic', seed: freshSeed() });
    const idx = (await r.indices.toArray()) as BigInt64Array;
    const m = Math.max(...logW);
    const w = Array.from(logW, (x) => Math.exp(x - m));
    const total = w.reduce((a, b) => a + b, 0);
    const counts = new Array(20).fill(0);
    for (const i of idx) counts[Number(i)]++;
    counts.forEach((c, i) => expect(Math.abs(c - (n * w[i]) / total)).toBeLessThan(1 + 1e-6));
    for (let i = 1; i < n; i++) expect(idx[i] >= idx[i - 1]).toBe(true);
  });
});

describe('op argument errors', () => {
  it('are typed and leave the process alive', async () => {
    const p = tensor(jsRandn(8), [2, 4]);
    await expectCode(() => ops.mutateGaussian(p, [0, 2], 0.2, { seed: 1 }), 'ARGUMENT');
    await expectCode(() => ops.mutateGaussian(p, [0], 1.5, { seed: 1 }), 'ARGUMENT');
    await expectCode(() => ops.mutateGaussian(p, [0], 0.2, { seed: -1 }), 'ARGUMENT');
    await expectCode(() => ops.topk(p, 5), 'ARGUMENT');
    await expectCode(() => ops.eulerStep(p, tensor(jsRandn(6), [2, 3]), 1, 0), 'SHAPE');
    await expectCode(() => ops.eulerStep(p, p, [1, 0, 0], 0), 'SHAPE');
    await expectCode(() => ops.renoise(p, 'rectified_flow', 0.5, 0.2, { seed: 1 }), 'ARGUMENT');
    await expectCode(() => ops.renoise(p, 'linear' as never, 0.2, 0.5, { seed: 1 }), 'ARGUMENT');
    await expectCode(() => ops.eulerStep(tensor(new Int32Array(8), [2, 4]), p, 1, 0), 'ARGUMENT');
    await expectCode(() => ops.resample(tensor(new Float32Array(0), [0]), 3, { seed: 1 }), 'SHAPE');
    const ok = await arr(await ops.eulerStep(p, p, 1, 0));
    expect(ok.length).toBe(8);
  });
});

function erf(x: number): number {
  // Abramowitz–Stegun 7.1.26 is too coarse for KS at n = 2^20; use the series/continued fraction.
  const t = Math.abs(x);
  if (t < 3) {
    let sum = t,
      term = t;
    for (let n = 1; n < 200; n++) {
      term *= (-t * t) / n;
      const add = term / (2 * n + 1);
      sum += add;
      if (Math.abs(add) < 1e-17) break;
    }
    return Math.sign(x) * (2 / Math.sqrt(Math.PI)) * sum;
  }
  // erfc continued fraction for large |x|
  let f = 0;
  for (let n = 60; n >= 1; n--) f = n / 2 / (t + f);
  const erfc = Math.exp(-t * t) / Math.sqrt(Math.PI) / (t + f);
  return Math.sign(x) * (1 - erfc);
}
