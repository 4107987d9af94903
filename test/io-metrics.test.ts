import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { encodeNpy, readNpy, writeNpy } from '../src/io/npy';
import { encodePng, gridPng } from '../src/io/png';
import { frechetDistance, meanCov, sqrtPsd, symmetricEigen } from '../src/eval/linalg';
import { inceptionScore } from '../src/eval/metrics';
import { randn } from './helpers';

function randomSpd(n: number): Float64Array {
  const A = Float64Array.from(randn(n * n));
  const S = new Float64Array(n * n);
  for (let i = 0; i < n; i++)
    for (let j = 0; j < n; j++) for (let k = 0; k < n; k++) S[i * n + j] += (A[i * n + k] * A[j * n + k]) / n;
  for (let i = 0; i < n; i++) S[i * n + i] += 0.1;
  return S;
}

describe('npy', () => {
  it('round-trips float32 arrays of any rank, with a 64-byte aligned header', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ds-npy-'));
    for (const shape of [[7], [3, 2], [2, 1, 4, 3]]) {
      const n = shape.reduce((a, b) => a * b, 1);
      const data = randn(n);
      const file = path.join(dir, 'a.npy');
      writeNpy(file, data, shape);
      const raw = fs.readFileSync(file);
      expect((10 + raw.readUInt16LE(8)) % 64).toBe(0);
      expect(raw.toString('latin1', 10, 10 + raw.readUInt16LE(8))).toContain(
        `'shape': (${shape.length === 1 ? `${shape[0]},` : shape.join(', ')})`,
      );
      const back = readNpy(file);
      expect(back.shape).toEqual(shape);
      expect(Array.from(back.data)).toEqual(Array.from(data));
    }
    expect(() => encodeNpy(new Float32Array(3), [2, 2])).toThrow(/does not hold/);
  });
});

describe('png', () => {
  it('encodes valid PNG chunks whose pixels inflate back', () => {
    const px = Uint8Array.from({ length: 5 * 3 }, (_, i) => (i * 37) % 256);
    const png = encodePng(px, 5, 3, 1);
    expect(png.subarray(0, 8)).toEqual(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]));
    const idatLen = png.readUInt32BE(33);
    expect(png.toString('latin1', 37, 41)).toBe('IDAT');
    const raw = zlib.inflateSync(png.subarray(41, 41 + idatLen));
    for (let y = 0; y < 3; y++)
      expect(Array.from(raw.subarray(y * 6 + 1, y * 6 + 6))).toEqual(Array.from(px.subarray(y * 5, y * 5 + 5)));
  });

  it('lays out a grid at the requested scale', () => {
    const png = gridPng(new Float32Array(5 * 28 * 28).fill(0), [5, 1, 28, 28], [-1, 1], 4);
    expect(png.readUInt32BE(16)).toBe(3 * (28 * 4 + 1) + 1); // 3 columns
    expect(png.readUInt32BE(20)).toBe(2 * (28 * 4 + 1) + 1); // 2 rows
  });
});

describe('Fréchet distance and scores', () => {
  it('Jacobi eigen-decomposition reconstructs the matrix', () => {
    const n = 12,
      S = randomSpd(n);
    const { values, vectors: V } = symmetricEigen(S, n);
    for (let i = 0; i < n; i++)
      for (let j = 0; j < n; j++) {
        let r = 0;
        for (let k = 0; k < n; k++) r += V[i * n + k] * values[k] * V[j * n + k];
        expect(Math.abs(r - S[i * n + j])).toBeLessThan(1e-9);
      }
    const R = sqrtPsd(S, n);
    for (let i = 0; i < n; i++)
      for (let j = 0; j < n; j++) {
        let r = 0;
        for (let k = 0; k < n; k++) r += R[i * n + k] * R[k * n + j];
        expect(Math.abs(r - S[i * n + j])).toBeLessThan(1e-9);
      }
  });

  it('matches the closed form for diagonal covariances and is 0 between equal Gaussians', () => {
    const n = 6;
    const mu1 = Float64Array.from(randn(n)),
      mu2 = Float64Array.from(randn(n));
    const a = Array.from({ length: n }, () => 0.1 + Math.random()),
      b = Array.from({ length: n }, () => 0.1 + Math.random());
    const S1 = new Float64Array(n * n),
      S2 = new Float64Array(n * n);
    a.forEach((v, i) => (S1[i * n + i] = v));
    b.forEach((v, i) => (S2[i * n + i] = v));
    let want = 0;
    for (let i = 0; i < n; i++) want += (mu1[i] - mu2[i]) ** 2 + (Math.sqrt(a[i]) - Math.sqrt(b[i])) ** 2;
    expect(frechetDistance(mu1, S1, mu2, S2, n)).toBeCloseTo(want, 9);
    const S = randomSpd(n);
    expect(Math.abs(frechetDistance(mu1, S, mu1, S, n))).toBeLessThan(1e-8);
  });

  it('mean and covariance equal the float64 definitions', () => {
    const rows = 50,
      dim = 3,
      X = Float64Array.from(randn(rows * dim));
    const { mu, cov } = meanCov(X, rows, dim);
    for (let i = 0; i < dim; i++) {
      let m = 0;
      for (let r = 0; r < rows; r++) m += X[r * dim + i];
      expect(mu[i]).toBeCloseTo(m / rows, 12);
    }
    let c01 = 0;
    for (let r = 0; r < rows; r++) c01 += (X[r * dim] - mu[0]) * (X[r * dim + 1] - mu[1]);
    expect(cov[1]).toBeCloseTo(c01 / (rows - 1), 12);
  });

  it('Inception-style score: C for confident, balanced classes; 1 for identical predictions', () => {
    const C = 4,
      n = 8;
    const sharp = new Float64Array(n * C).fill(Math.log(1e-12));
    for (let i = 0; i < n; i++) sharp[i * C + (i % C)] = 0;
    expect(inceptionScore(sharp, n, C)).toBeCloseTo(C, 3);
    const flat = new Float64Array(n * C).fill(Math.log(1 / C));
    expect(inceptionScore(flat, n, C)).toBeCloseTo(1, 9);
  });
});
