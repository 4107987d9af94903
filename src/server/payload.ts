/** A result as JSON: samples and latents as base64 float32 (little-endian), the report. */
import type { GenerateResult } from '../request/types';

export function payload(r: GenerateResult) {
  const b64 = (a: Float32Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength).toString('base64');
  return {
    complete: r.complete,
    shape: r.shape,
    dtype: 'float32',
    samples: b64(r.samples),
    rewards: r.rewards,
    prompts: r.prompts,
    value_range: r.valueRange,
    latents: r.latents ? { shape: r.latents.shape, data: b64(r.latents.data) } : null,
    report: r.report,
  };
}
