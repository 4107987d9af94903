import path from 'node:path';
import { DiffusionSearchError, type ErrorCode } from '../src/errors';
import type { NativeTensor } from '../src/native';
import { tensor } from '../src/tensor';

export const fixtures = path.join(__dirname, 'fixtures');
export const fixture = (name: string) => path.join(fixtures, name);

/** mulberry32: seeded uniforms in [0, 1). */
export function mulberry32(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Seeded float32 normals (mulberry32 + Box–Muller): fresh inputs per seed, reproducible on failure. */
export function randn(n: number, seed = (Math.random() * 2 ** 31) | 0): Float32Array {
  const m = mulberry32(seed);
  const u = () => (m() * 4294967296 + 1) / 4294967297; // in (0, 1]: log(u) stays finite
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = Math.sqrt(-2 * Math.log(u())) * Math.cos(2 * Math.PI * u());
  return out;
}

/** Asserts `run` fails with a DiffusionSearchError of `code`; returns it for further checks. */
export async function expectCode(run: () => unknown, code: ErrorCode): Promise<DiffusionSearchError> {
  try {
    await run();
  } catch (e) {
    if (!(e instanceof DiffusionSearchError))
      throw new Error(`expected DiffusionSearchError ${code}, got ${String(e)}`);
    if (e.code !== code) throw new Error(`expected code ${code}, got ${e.code}: ${e.message}`);
    return e;
  }
  throw new Error(`expected a ${code} error, but nothing was thrown`);
}

/**
 * EvoSearch's intermediate-state mutation into level L, restated for tests: the SDE std `s` of the
 * rectified-flow step sigmas[L−1] → sigmas[L] (at most σ), and `shift` = √(σ² − s²) − σ along ε̂.
 */
export function sdeMutation(sigmas: number[], L: number, sigma: number): { s: number; shift: number } {
  const [from, to] = [sigmas[L - 1], sigmas[L]];
  const ratio = ((1 - from) * to) / ((1 - to) * from);
  const s = Math.min(to * Math.sqrt(1 - ratio * ratio), sigma);
  return { s, shift: Math.sqrt(sigma * sigma - s * s) - sigma };
}

/** fashion-flow's forward inputs for `rows` fresh random rows: x [rows, 1, 28, 28], σ ∈ [0, 1), class. */
export function flowInputs(rows: number): NativeTensor[] {
  return [
    tensor(randn(rows * 784), [rows, 1, 28, 28]),
    tensor(
      Float32Array.from({ length: rows }, () => Math.random()),
      [rows],
    ),
    tensor(
      BigInt64Array.from({ length: rows }, () => BigInt(Math.floor(Math.random() * 10))),
      [rows],
    ),
  ];
}
