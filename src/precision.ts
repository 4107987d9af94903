/**
 * The precision of a model's forwards: fp32, or bf16 by libtorch's CPU autocast (matrix products
 * and convolutions in bfloat16, normalisations and reductions in float32; outputs come back as
 * float32). bf16 runs only where the CPU computes it natively (AVX512_BF16 or AMX): elsewhere
 * oneDNN emulates it, slower than fp32, so it is refused rather than run.
 */
import { DiffusionSearchError } from './errors';
import { native } from './native';

export const PRECISIONS = ['fp32', 'bf16'] as const;
export type Precision = (typeof PRECISIONS)[number];

/** Why this machine cannot run `precision` on `device`, or null when it can. */
export function precisionRefusal(precision: Precision, device = 'cpu'): string | null {
  if (precision === 'fp32') return null;
  if (!device.startsWith('cpu')) return `precision 'bf16' runs on CPU only (CPU autocast); this model is on ${device}`;
  const cpu = native().info().cpu;
  if (cpu?.avx512bf16 || cpu?.amxbf16) return null;
  return (
    "precision 'bf16' needs a CPU with AVX512_BF16 or AMX (it would be emulated, slower than fp32); " +
    `this one has neither${cpu ? '' : ' (or the native addon predates the check: rebuild it)'}; use fp32`
  );
}

/** Throws ARGUMENT for an unknown precision, DEVICE naming the cause when `precision` cannot run here. */
export function checkPrecision(precision: Precision, device = 'cpu'): void {
  if (!PRECISIONS.includes(precision))
    throw new DiffusionSearchError(`precision must be one of ${PRECISIONS.join(', ')}, got '${precision}'`, 'ARGUMENT');
  const why = precisionRefusal(precision, device);
  if (why) throw new DiffusionSearchError(why, 'DEVICE');
}
