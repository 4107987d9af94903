/**
 * The main job as one call: load a model and verifiers, run a search per requested sample, and
 * return the best samples with a report. The CLI's `generate` writes what this returns. It is a
 * call of a short-lived engine (src/engine): a service holds one engine instead, which keeps the
 * models loaded and batches the searches of every request together. The request's types,
 * defaults and checks live in src/request.
 */
import { createEngine } from './engine/engine';
import { DEFAULTS } from './request/defaults';
import { PRECISIONS, type Precision } from './precision';
import type { GenerateOptions, GenerateProgress, GenerateResult } from './request/types';

export type { GenerateOptions, GenerateProgress, GenerateResult } from './request/types';
export type { GenerateReport } from './request/report';
export { resolveClass } from './request/classes';

/** Denoising steps when none are given (DEFAULTS.steps). */
export const DEFAULT_STEPS = DEFAULTS.steps;

export async function generate(
  o: GenerateOptions,
  control: { signal?: AbortSignal; onProgress?: (p: GenerateProgress) => void } = {},
): Promise<GenerateResult> {
  // No queue, no memory ceiling: everything a caller asks for runs, as it always did. Two
  // searches at a time: their forwards merge, and the first samples still finish early (Ctrl-C
  // keeps the finished ones; with more at once, a toy model's first search ends later).
  const engine = createEngine({
    device: o.device,
    // A value the request refuses reaches resolveRequest, which names it in the caller's wording.
    precision: PRECISIONS.includes(o.precision as Precision) ? o.precision : undefined,
    maxBatch: o.maxBatch,
    maxQueue: Infinity,
    maxActive: Infinity,
    memoryLimit: Infinity,
    searchesPerRequest: 2,
  });
  try {
    return await engine.generate(o, control);
  } finally {
    await engine.close();
  }
}
