/**
 * Samplers, one short function per step rule (as k-diffusion's): each takes a batch x at
 * per-sample σ_from and returns it at σ_to. Any prediction type works: the denoiser gives x̂0 and ε̂.
 *   euler: x + (t_to − t_from)·v, with v = dx/dt = a'(t)·x̂0 + σ'(t)·ε̂ on x = a·x0 + σ·ε, in the
 *          path's time t (rectified flow t = σ, v = ε̂ − x̂0; vp t = arcsin σ, v = a·ε̂ − σ·x̂0:
 *          bounded at σ = 1, where dx/dσ is not; see schedules/path.ts)
 *   heun:  Euler, then the trapezoid of the two slopes (Euler again when σ_to = 0)
 *   sde:   the DDIM-η step (η = 0 deterministic DDIM, η = 1 the posterior / ancestral step)
 */
import type { NativeStream, NativeTensor } from '../native';
import * as ops from '../ops';
import type { Pair } from '../ops';
import { TensorScope } from '../tensor-scope';
import type { Denoiser, NfeMeter } from '../models/denoiser';
import { pathTime, pathVelocity } from '../schedules/path';
import { DiffusionSearchError } from '../errors';

type Tensor = NativeTensor;
export type SamplerName = 'euler' | 'heun' | 'sde';

export interface StepContext {
  denoiser: Denoiser;
  cond: ArrayLike<number>;
  guidance: number;
  meter: NfeMeter;
  stream?: NativeStream;
  /** For the stochastic sampler: η, the seed, the ids of the rows and the step counter. */
  eta?: number;
  seed?: ops.Seed;
  ids?: ArrayLike<number>;
  step?: number;
}

export interface StepResult {
  x: Tensor;
  /** x̂0 predicted at σ_from (for verifiers that score intermediate states). */
  x0: Tensor;
  /** The noise std injected per sample (sde only; zeros otherwise). */
  std?: Float32Array;
}

/** NFE of one step of `rows` samples. */
export function stepCost(
  sampler: SamplerName,
  rows: number,
  to: ArrayLike<number>,
  cost: (n: number) => number,
): number {
  if (sampler !== 'heun') return cost(rows);
  let second = 0;
  for (let i = 0; i < rows; i++) if (to[i] > 0) second++;
  return cost(rows) + cost(second);
}

/**
 * The model output at x (per-row σ) and, per row, the coefficients (on x, on the output) of x̂0 and
 * of dx/dt in the path's time: v = c_x0·x̂0 + c_ε·ε̂ is linear in both, as x̂0 and ε̂ are.
 */
async function slopeRows(ctx: StepContext, x: Tensor, sigma: ArrayLike<number>) {
  const { out, rows } = await ctx.denoiser.predictLinear(x, sigma, ctx.cond, ctx.guidance, ctx.meter, ctx.stream);
  const lin = rows.map(({ x0, eps }, i) => {
    const c = pathVelocity(ctx.denoiser.path, sigma[i]);
    const v: Pair = [c.cx0 * x0[0] + c.ceps * eps[0], c.cx0 * x0[1] + c.ceps * eps[1]];
    return { x0, v };
  });
  return { out, lin };
}

/** dx/dt at x (per-row σ) in the path's time, and the x̂0 it came from. */
async function slope(ctx: StepContext, x: Tensor, sigma: ArrayLike<number>) {
  using s = new TensorScope();
  const { out, lin } = s.track(await slopeRows(ctx, x, sigma));
  const [x0, v] = await ops.rowCombine(
    x,
    out,
    ops.rowCoefficients(lin, (r) => [r.x0, r.v]),
    2,
    ctx.stream,
  );
  return { v, x0 };
}

/** Per-row times of the path (the native Euler / Heun kernels step x + (t_to − t_from)·v). */
const times = (ctx: StepContext, sigma: ArrayLike<number>) => Array.from(sigma, (s) => pathTime(ctx.denoiser.path, s));

/** x + (t_to − t_from)·v, folded with x̂0 into one rowCombine of x and the model output. */
export async function eulerStep(
  ctx: StepContext,
  x: Tensor,
  from: ArrayLike<number>,
  to: ArrayLike<number>,
): Promise<StepResult> {
  using s = new TensorScope();
  const { out, lin } = s.track(await slopeRows(ctx, x, from));
  const [tFrom, tTo] = [times(ctx, from), times(ctx, to)];
  const coef = ops.rowCoefficients(lin, ({ x0, v }, i) => {
    const dt = tTo[i] - tFrom[i];
    return [x0, [1 + dt * v[0], dt * v[1]]];
  });
  const [x0, next] = await ops.rowCombine(x, out, coef, 2, ctx.stream);
  return { x: next, x0 };
}

export async function heunStep(
  ctx: StepContext,
  x: Tensor,
  from: ArrayLike<number>,
  to: ArrayLike<number>,
): Promise<StepResult> {
  using s = new TensorScope();
  const { v: v1, x0 } = s.track(await slope(ctx, x, from));
  const euler = await s.track(ops.eulerStep(x, v1, times(ctx, from), times(ctx, to), ctx.stream));
  const rows = Array.from(to)
    .map((t, i) => (t > 0 ? i : -1))
    .filter((i) => i >= 0);
  if (rows.length === 0) return s.keep({ x: euler, x0 });
  if (rows.length !== x.shape[0])
    // Mixed batch: the rows that reach 0 keep their Euler step (Heun needs the slope at σ_to > 0).
    throw new DiffusionSearchError(
      'heun: a batch must reach σ = 0 together (use euler or sde for ragged schedules)',
      'ARGUMENT',
    );
  const { v: v2 } = s.track(await slope(ctx, euler, to));
  const next = await ops.heunCombine(x, v1, v2, times(ctx, from), times(ctx, to), ctx.stream);
  return { x: next, x0: s.keep(x0) };
}

export async function sdeStep(
  ctx: StepContext,
  x: Tensor,
  from: ArrayLike<number>,
  to: ArrayLike<number>,
): Promise<StepResult> {
  using s = new TensorScope();
  const { x0, eps } = s.track(await ctx.denoiser.predict(x, from, ctx.cond, ctx.guidance, ctx.meter, ctx.stream));
  const { x: next, std } = s.track(
    await ops.ddimStep(x0, eps, ctx.denoiser.path, Array.from(from), Array.from(to), ctx.eta ?? 1, {
      seed: ctx.seed ?? 0,
      ids: ctx.ids ? Array.from(ctx.ids) : undefined,
      step: ctx.step ?? 0,
      stream: ctx.stream,
    }),
  );
  const stds = (await std.toArray(ctx.stream)) as Float32Array;
  return { ...s.keep({ x: next, x0 }), std: stds };
}

export const steppers = { euler: eulerStep, heun: heunStep, sde: sdeStep } as const;

export function stepper(name: SamplerName) {
  const f = steppers[name];
  if (!f) throw new DiffusionSearchError(`unknown sampler '${name}': use euler, heun or sde`, 'ARGUMENT');
  return f;
}
