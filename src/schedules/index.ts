/**
 * Noise-level schedules: a list of σ from 1 (pure noise) down to 0. A sampler takes one step per
 * consecutive pair. Steps may also carry a different σ per sample (see samplers).
 */
import { DiffusionSearchError } from '../errors';

export type ScheduleName = 'uniform' | 'shifted' | 'karras';

export interface ScheduleOptions {
  /** SD3/FLUX time shift (shifted): σ' = s·σ / (1 + (s − 1)·σ). */
  shift?: number;
  /** Karras: σ range and ρ. */
  sigmaMin?: number;
  sigmaMax?: number;
  rho?: number;
}

/** σ_i = 1 − i/steps, i = 0..steps. */
export function uniform(steps: number): number[] {
  checkSteps(steps);
  return Array.from({ length: steps + 1 }, (_, i) => 1 - i / steps);
}

/** The SD3/FLUX time shift of the uniform schedule (shift > 1 spends more steps at high noise). */
export function shifted(steps: number, shift = 3): number[] {
  if (!(shift > 0)) throw new DiffusionSearchError(`shift must be > 0, got ${shift}`, 'ARGUMENT');
  // σ = 1 stays exactly 1 (the map gives 1 + 1e-15 for some shifts): searches start from pure noise there.
  return uniform(steps).map((s) => (s === 1 ? 1 : (shift * s) / (1 + (shift - 1) * s)));
}

/** Karras/EDM spacing between σmax and σmin (ρ = 7), then a final step to 0. */
export function karras(steps: number, sigmaMin = 0.002, sigmaMax = 1, rho = 7): number[] {
  checkSteps(steps);
  if (!(sigmaMin > 0 && sigmaMax <= 1 && sigmaMin < sigmaMax))
    throw new DiffusionSearchError(
      `karras: need 0 < sigmaMin < sigmaMax <= 1, got ${sigmaMin}, ${sigmaMax}`,
      'ARGUMENT',
    );
  if (steps === 1) return [sigmaMax, 0];
  const lo = sigmaMin ** (1 / rho),
    hi = sigmaMax ** (1 / rho);
  const s = Array.from({ length: steps }, (_, i) => (hi + (i / (steps - 1)) * (lo - hi)) ** rho);
  return [...s, 0];
}

export function makeSchedule(name: ScheduleName, steps: number, o: ScheduleOptions = {}): number[] {
  switch (name) {
    case 'uniform':
      return uniform(steps);
    case 'shifted':
      return shifted(steps, o.shift);
    case 'karras':
      return karras(steps, o.sigmaMin, o.sigmaMax, o.rho);
  }
  throw new DiffusionSearchError(`unknown schedule '${name as string}': use uniform, shifted or karras`, 'ARGUMENT');
}

/**
 * Checks a schedule: at least one step, from σ = 1, non-increasing, within [0, 1], ending at 0.
 * Searches draw pure noise, which is the state at σ = 1 only: below it a state also holds a(σ)·x0.
 */
export function validateSchedule(sigmas: readonly number[]): readonly number[] {
  if (sigmas.length < 2)
    throw new DiffusionSearchError('a schedule needs at least two noise levels (one step)', 'ARGUMENT');
  if (sigmas[0] !== 1)
    throw new DiffusionSearchError(
      `schedule: σ[0] = ${sigmas[0]}, but a search starts from pure noise at σ = 1 (for karras, keep sigmaMax at 1)`,
      'ARGUMENT',
    );
  for (let i = 0; i < sigmas.length; i++) {
    const s = sigmas[i];
    if (!(s >= 0 && s <= 1)) throw new DiffusionSearchError(`schedule: σ[${i}] = ${s} is outside [0, 1]`, 'ARGUMENT');
    if (i > 0 && s > sigmas[i - 1])
      throw new DiffusionSearchError(`schedule: σ must not increase (σ[${i}] = ${s})`, 'ARGUMENT');
  }
  if (sigmas[sigmas.length - 1] !== 0)
    throw new DiffusionSearchError('schedule: the last noise level must be 0', 'ARGUMENT');
  return sigmas;
}

/**
 * Most steps a schedule may have: otherwise --steps 1e9 would build a billion-entry array before
 * any budget check (a hang, then out of memory).
 */
export const MAX_STEPS = 1_000_000;

function checkSteps(steps: number): void {
  if (!Number.isInteger(steps) || steps < 1 || steps > MAX_STEPS)
    throw new DiffusionSearchError(`steps must be a positive integer up to ${MAX_STEPS}, got ${steps}`, 'ARGUMENT');
}
