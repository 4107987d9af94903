/**
 * The feature space a verifier provides for the diverse top-k: its module's features(x0) -> [N, D]
 * (the classifier, realism, detail and CLIP verifiers have one), the first such member of an
 * ensemble, or a JS verifier's own `features`. None: null (the caller falls back to the samples).
 */
import type { TorchModule } from '../module';
import type { NativeStream, NativeTensor } from '../native';
import { chunked } from './torchscript';
import type { Verifier } from './verifier';

/** A verifier that maps samples to feature rows [N, D] (row-major, N·D values). */
export interface FeatureVerifier extends Verifier {
  features(x0: NativeTensor, stream?: NativeStream): Promise<Float32Array>;
}

type Featurer = (x0: NativeTensor, stream?: NativeStream) => Promise<Float32Array>;

export function featuresOf(v: Verifier): { name: string; run: Featurer } | null {
  const own = (v as Partial<FeatureVerifier>).features;
  if (typeof own === 'function') return { name: v.name, run: (x, s) => own.call(v, x, s) };
  const m = (v as { module?: TorchModule }).module;
  if (m && typeof m.hasMethod === 'function' && m.hasMethod('features')) {
    const maxBatch = (v as { maxBatch?: number }).maxBatch ?? 256;
    return { name: v.name, run: async (x, s) => concat(await chunked(m, 'features', x, null, maxBatch, s)) };
  }
  for (const member of (v as { verifiers?: Verifier[] }).verifiers ?? []) {
    const f = featuresOf(member);
    if (f) return f;
  }
  return null;
}

function concat(parts: Float32Array[]): Float32Array {
  const out = new Float32Array(parts.reduce((s, p) => s + p.length, 0));
  let o = 0;
  for (const p of parts) out.set(p, o), (o += p.length);
  return out;
}
