/**
 * The native kernels as async ops on tensors (see native/kernels/kernels.h for the exact maths).
 * Noise is a pure function of (seed, sample id, step, element): the same sample gets the same
 * noise whatever batch, thread count or device computed it. Ids default to the row index.
 */
import { DiffusionSearchError } from './errors';
import { native, type NativeStream, type NativeTensor } from './native';
import { isTensor, tensor } from './tensor';

export type Tensor = NativeTensor;
export type NoisePath = 'rectified_flow' | 'vp';
export type Seed = number | bigint;
/** A per-sample float: one number for every row, an array of one per row, or a float32 tensor. */
export type PerSample = number | Float32Array | readonly number[] | Tensor;
/** Sample ids (int64): an array, a BigInt64Array, an int64 tensor, or null for the row index. */
export type Ids = readonly number[] | BigInt64Array | Tensor | null | undefined;

interface NativeOps {
  randn(
    shape: number[],
    seed: Seed,
    ids: Tensor | null,
    step: number,
    options: { device?: string },
    stream?: NativeStream,
  ): Promise<Tensor>;
  uniform(
    shape: number[],
    seed: Seed,
    ids: Tensor | null,
    step: number,
    options: { device?: string },
    stream?: NativeStream,
  ): Promise<Tensor>;
  mutateGaussian(
    parents: Tensor,
    idx: Tensor,
    beta: number,
    seed: Seed,
    childIds: Tensor | null,
    step: number,
    stream?: NativeStream,
  ): Promise<Tensor>;
  mutateAdditive(
    parents: Tensor,
    idx: Tensor,
    s: Tensor,
    seed: Seed,
    childIds: Tensor | null,
    step: number,
    stream?: NativeStream,
  ): Promise<Tensor>;
  sphereNeighbours(
    x: Tensor,
    tau: number,
    seed: Seed,
    ids: Tensor | null,
    step: number,
    stream?: NativeStream,
  ): Promise<Tensor>;
  renoise(
    x: Tensor,
    path: NoisePath,
    from: Tensor,
    to: Tensor,
    seed: Seed,
    ids: Tensor | null,
    step: number,
    stream?: NativeStream,
  ): Promise<Tensor>;
  eulerStep(x: Tensor, v: Tensor, from: Tensor, to: Tensor, stream?: NativeStream): Promise<Tensor>;
  heunCombine(x: Tensor, v1: Tensor, v2: Tensor, from: Tensor, to: Tensor, stream?: NativeStream): Promise<Tensor>;
  rowCombine(x: Tensor, y: Tensor, coef: Float64Array, k: number, stream?: NativeStream): Promise<Tensor[]>;
  ddimStep(
    x0: Tensor,
    eps: Tensor,
    path: NoisePath,
    from: Tensor,
    to: Tensor,
    eta: number,
    seed: Seed,
    ids: Tensor | null,
    step: number,
    stream?: NativeStream,
  ): Promise<[Tensor, Tensor]>;
  topk(values: Tensor, k: number, stream?: NativeStream): Promise<[Tensor, Tensor]>;
  tournamentSelect(
    fitness: Tensor,
    nWinners: number,
    size: number,
    seed: Seed,
    step: number,
    stream?: NativeStream,
  ): Promise<Tensor>;
  resample(
    logW: Tensor,
    nOut: number,
    method: 'multinomial' | 'systematic',
    seed: Seed,
    step: number,
    stream?: NativeStream,
  ): Promise<{ indices: Tensor; ess: number }>;
}

const ops = (): NativeOps => native().ops as NativeOps;

/** The tensor argument `name`, checked before its shape or device is read (else a TypeError, not a coded error). */
function need(x: unknown, name: string): Tensor {
  if (!isTensor(x))
    throw new DiffusionSearchError(`${name} must be a tensor, got ${x === null ? 'null' : typeof x}`, 'ARGUMENT');
  return x;
}

/** Runs `body` with tensors made from plain arrays, and frees those temporaries after. */
async function withTemps<T>(body: (temp: (t: Tensor) => Tensor) => Promise<T>): Promise<T> {
  const temps: Tensor[] = [];
  try {
    return await body((t) => (temps.push(t), t));
  } finally {
    for (const t of temps) t.dispose();
  }
}

function perSample(v: PerSample, rows: number, device: string, temp: (t: Tensor) => Tensor): Tensor {
  if (isTensor(v)) return v;
  if (typeof v !== 'number' && !(v instanceof Float32Array) && !Array.isArray(v))
    throw new DiffusionSearchError(
      'a per-sample value must be a number, an array of numbers or a float32 tensor, got ' +
        `${v === null ? 'null' : typeof v}`,
      'ARGUMENT',
    );
  const data = typeof v === 'number' ? new Float32Array(rows).fill(v) : Float32Array.from(v);
  return temp(tensor(data, [data.length], { device }));
}

function ids(v: Ids, device: string, temp: (t: Tensor) => Tensor): Tensor | null {
  if (v === null || v === undefined) return null;
  if (isTensor(v)) return v;
  // BigInt() of a fraction or a string throws a RangeError/SyntaxError: name the argument instead.
  if (!(v instanceof BigInt64Array) && !(Array.isArray(v) && v.every((x) => Number.isSafeInteger(x))))
    throw new DiffusionSearchError(
      'ids must be integers (an array, a BigInt64Array or an int64 tensor), got ' +
        `${typeof v === 'string' ? `'${v}'` : String(v).slice(0, 80)}`,
      'ARGUMENT',
    );
  const data = v instanceof BigInt64Array ? v : BigInt64Array.from(v as readonly number[], (x) => BigInt(x));
  return temp(tensor(data, [data.length], { device }));
}

/** The parent of each child: required (ids() lets null mean "the row index", which has no meaning here). */
function parentIndex(idx: Ids, device: string, temp: (t: Tensor) => Tensor): Tensor {
  const index = ids(idx, device, temp);
  if (!index) throw new DiffusionSearchError('idx (the parent of each child) is required', 'ARGUMENT');
  return index;
}

export interface NoiseOptions {
  seed: Seed;
  /** Sample ids, one per row (default: the row index). */
  ids?: Ids;
  /** The step (generation, round) the noise belongs to. */
  step?: number;
  stream?: NativeStream;
}

/** ε(seed, ids[r], step, e) ~ N(0, 1) of shape [rows, ...]. */
export function randn(shape: number[], o: NoiseOptions & { device?: string }): Promise<Tensor> {
  const device = o.device ?? 'cpu';
  return withTemps((t) => ops().randn(shape, o.seed, ids(o.ids, device, t), o.step ?? 0, { device }, o.stream));
}

/** Uniforms in (0, 1] from the same counter-based stream as randn. */
export function uniform(shape: number[], o: NoiseOptions & { device?: string }): Promise<Tensor> {
  const device = o.device ?? 'cpu';
  return withTemps((t) => ops().uniform(shape, o.seed, ids(o.ids, device, t), o.step ?? 0, { device }, o.stream));
}

/** Op 1: child[k] = sqrt(1−β²)·parents[idx[k]] + β·ε — keeps N(0, I) noise N(0, I). */
export function mutateGaussian(parents: Tensor, idx: Ids, beta: number, o: NoiseOptions): Promise<Tensor> {
  return withTemps(async (t) => {
    const device = need(parents, 'parents').device;
    return ops().mutateGaussian(
      parents,
      parentIndex(idx, device, t),
      beta,
      o.seed,
      ids(o.ids, device, t),
      o.step ?? 0,
      o.stream,
    );
  });
}

/** Op 2: child[k] = parents[idx[k]] + s[k]·ε (s: the SDE noise std of that step). */
export function mutateAdditive(parents: Tensor, idx: Ids, s: PerSample, o: NoiseOptions): Promise<Tensor> {
  return withTemps(async (t) => {
    const index = parentIndex(idx, need(parents, 'parents').device, t);
    const rows = index.shape[0];
    return ops().mutateAdditive(
      parents,
      index,
      perSample(s, rows, parents.device, t),
      o.seed,
      ids(o.ids, parents.device, t),
      o.step ?? 0,
      o.stream,
    );
  });
}

/** Op 3: a neighbour of each row on its sphere at cosine τ (same norm). */
export function sphereNeighbours(x: Tensor, tau: number, o: NoiseOptions): Promise<Tensor> {
  return withTemps(async (t) =>
    ops().sphereNeighbours(x, tau, o.seed, ids(o.ids, need(x, 'x').device, t), o.step ?? 0, o.stream),
  );
}

/** Op 4: forward re-noising along `path` from σ_from to σ_to ≥ σ_from, per sample. */
export function renoise(
  x: Tensor,
  path: NoisePath,
  sigmaFrom: PerSample,
  sigmaTo: PerSample,
  o: NoiseOptions,
): Promise<Tensor> {
  return withTemps(async (t) => {
    const rows = need(x, 'x').shape[0];
    return ops().renoise(
      x,
      path,
      perSample(sigmaFrom, rows, x.device, t),
      perSample(sigmaTo, rows, x.device, t),
      o.seed,
      ids(o.ids, x.device, t),
      o.step ?? 0,
      o.stream,
    );
  });
}

/** Op 5a: x + (σ_to − σ_from)·v, per sample. */
export function eulerStep(
  x: Tensor,
  v: Tensor,
  sigmaFrom: PerSample,
  sigmaTo: PerSample,
  stream?: NativeStream,
): Promise<Tensor> {
  return withTemps(async (t) => {
    const rows = need(x, 'x').shape[0];
    return ops().eulerStep(
      x,
      v,
      perSample(sigmaFrom, rows, x.device, t),
      perSample(sigmaTo, rows, x.device, t),
      stream,
    );
  });
}

/** Op 5b: Heun's second stage, x + (σ_to − σ_from)·(v1 + v2)/2. */
export function heunCombine(
  x: Tensor,
  v1: Tensor,
  v2: Tensor,
  sigmaFrom: PerSample,
  sigmaTo: PerSample,
  stream?: NativeStream,
): Promise<Tensor> {
  return withTemps(async (t) => {
    const rows = need(x, 'x').shape[0];
    return ops().heunCombine(
      x,
      v1,
      v2,
      perSample(sigmaFrom, rows, x.device, t),
      perSample(sigmaTo, rows, x.device, t),
      stream,
    );
  });
}

/** Op 5c: the DDIM-η / SDE step from x̂0 and ε̂; returns the new state and the noise std injected. */
export async function ddimStep(
  x0: Tensor,
  eps: Tensor,
  path: NoisePath,
  sigmaFrom: PerSample,
  sigmaTo: PerSample,
  eta: number,
  o: NoiseOptions,
): Promise<{ x: Tensor; std: Tensor }> {
  const rows = need(x0, 'x0').shape[0];
  const [x, std] = await withTemps((t) =>
    ops().ddimStep(
      x0,
      eps,
      path,
      perSample(sigmaFrom, rows, x0.device, t),
      perSample(sigmaTo, rows, x0.device, t),
      eta,
      o.seed,
      ids(o.ids, x0.device, t),
      o.step ?? 0,
      o.stream,
    ),
  );
  return { x, std };
}

/** Coefficients (on x, on y) of one output row of rowCombine. */
export type Pair = readonly [number, number];

/** rowCombine's coef for `rows`: each row's k pairs, in order. */
export function rowCoefficients<T>(rows: readonly T[], pairs: (row: T, i: number) => readonly Pair[]): Float64Array {
  const k = rows.length ? pairs(rows[0], 0).length : 0;
  const coef = new Float64Array(rows.length * k * 2);
  rows.forEach((row, i) => pairs(row, i).forEach(([a, b], j) => coef.set([a, b], (i * k + j) * 2)));
  return coef;
}

/**
 * Op 5d: k ≤ 4 per-row linear combinations of x and y in one pass, out[j][r] = c·x[r] + d·y[r],
 * with (c, d) = coef[(r·k + j)·2 ..] (float64, applied in float32). A sampler step is linear in the
 * state and the model output per row, so x̂0, ε̂, the velocity and the next state come from one call.
 */
export function rowCombine(
  x: Tensor,
  y: Tensor,
  coef: Float64Array,
  k: number,
  stream?: NativeStream,
): Promise<Tensor[]> {
  need(x, 'x');
  need(y, 'y');
  if (!(coef instanceof Float64Array))
    throw new DiffusionSearchError('rowCombine: coef must be a Float64Array of rows × k × 2 numbers', 'ARGUMENT');
  return ops().rowCombine(x, y, coef, k, stream);
}

/** Op 6a: the top k of each segment ([L] or [S, L]), descending, ties to the lower index. */
export async function topk(
  values: Tensor,
  k: number,
  stream?: NativeStream,
): Promise<{ values: Tensor; indices: Tensor }> {
  const [v, i] = await ops().topk(values, k, stream);
  return { values: v, indices: i };
}

/** Op 6b: n tournament winners; each tournament draws max(1, round(fraction·P)) entrants. */
export async function tournamentSelect(
  fitness: Tensor,
  nWinners: number,
  o: { fraction?: number; size?: number; seed: Seed; step?: number; stream?: NativeStream },
): Promise<Tensor> {
  const P = need(fitness, 'fitness').shape[0];
  const size = o.size ?? Math.max(1, Math.round((o.fraction ?? 0.1) * P));
  return ops().tournamentSelect(fitness, nWinners, size, o.seed, o.step ?? 0, o.stream);
}

/** Op 6c: resampling indices from log-weights, with the effective sample size. */
export function resample(
  logW: Tensor,
  nOut: number,
  o: { method?: 'multinomial' | 'systematic'; seed: Seed; step?: number; stream?: NativeStream },
): Promise<{ indices: Tensor; ess: number }> {
  return ops().resample(logW, nOut, o.method ?? 'systematic', o.seed, o.step ?? 0, o.stream);
}
