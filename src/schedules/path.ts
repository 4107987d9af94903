/** The noise paths x = a(σ)·x0 + σ·ε. */
import type { NoisePath } from '../ops';

export function pathCoefficients(path: NoisePath, sigma: number): { a: number; da: number } {
  if (path === 'rectified_flow') return { a: 1 - sigma, da: -1 };
  const a = Math.sqrt(Math.max(0, 1 - sigma * sigma));
  return { a, da: a > 0 ? -sigma / a : -1e6 };
}
