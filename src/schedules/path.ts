/**
 * The noise paths x = a(σ)·x0 + σ·ε.
 *   rectified_flow  a = 1 − σ
 *   vp              a = √(1 − σ²), i.e. σ = sin θ, a = cos θ
 * The ODE samplers step in the path's own time t, chosen so that dx/dt is bounded on all of
 * σ ∈ [0, 1]: t = σ for rectified flow, t = θ = arcsin σ for vp. In σ itself, vp's slope
 * da/dσ = −σ/a is infinite at σ = 1, where every sampler starts.
 */
import type { NoisePath } from '../ops';

/** a(σ) and da/dσ (infinite for vp at σ = 1: the samplers use pathTime / pathVelocity instead). */
export function pathCoefficients(path: NoisePath, sigma: number): { a: number; da: number } {
  if (path === 'rectified_flow') return { a: 1 - sigma, da: -1 };
  const a = Math.sqrt(Math.max(0, 1 - sigma * sigma));
  return { a, da: a > 0 ? -sigma / a : -Infinity };
}

/** The time the samplers step in: σ for rectified flow, θ = arcsin σ ∈ [0, π/2] for vp. */
export function pathTime(path: NoisePath, sigma: number): number {
  return path === 'rectified_flow' ? sigma : Math.asin(Math.min(1, Math.max(0, sigma)));
}

/**
 * dx/dt = cx0·x0 + ceps·ε along the path, in the path's time t: rectified flow (−1, 1), i.e.
 * v = ε − x0; vp (−σ, a), i.e. v = a·ε − σ·x0 (the "v" of v-prediction). Both are bounded.
 */
export function pathVelocity(path: NoisePath, sigma: number): { cx0: number; ceps: number } {
  if (path === 'rectified_flow') return { cx0: -1, ceps: 1 };
  return { cx0: -sigma, ceps: pathCoefficients(path, sigma).a };
}

/** The σ where a(σ) = a: the inverse of a(σ). */
export function sigmaAtAlpha(path: NoisePath, a: number): number {
  return path === 'rectified_flow' ? 1 - a : Math.sqrt(Math.max(0, 1 - a * a));
}
