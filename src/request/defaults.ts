/**
 * Every default of a request, in one place: the CLI, generate(), the engine, serve and the queue
 * read these and nothing else.
 *
 * n is 1 everywhere (the CLI said 4, the library 1): a request asks for as many samples as it
 * names, and a bare `generate` is the cheapest run, not four times it.
 */
export const DEFAULTS = {
  model: 'fashion-flow',
  algorithm: 'evosearch',
  /** NFE per sample. */
  budget: 500,
  n: 1,
  keep: 1,
  seed: 0,
  steps: 20,
  schedule: 'uniform',
  tpm: 'tpm',
  guidance: 1,
  device: 'cpu',
  precision: 'fp32',
  /** λ of the diverse top-k (0: the top-k by reward). */
  diversity: 0,
  preview: false,
} as const;

/** Previews a request may get: one per PREVIEW_MS on average (each of c searches at once: one per c × PREVIEW_MS). */
export const PREVIEW_MS = 250;

/** Frames per second of a video's animation when its card names none. */
export const VIDEO_FPS = 8;

/**
 * Most rows per forward of a model, per device: on a CPU the cost per row stops falling at a few
 * tens of rows (bench/RESULTS.md), so 32 loses nothing and keeps a small request's forwards short
 * beside big ones; on CUDA larger batches still pay.
 */
export function defaultMaxBatch(device: string): number {
  return device.startsWith('cuda') ? 128 : 32;
}

/**
 * Every model's calls on CPU (denoisers, verifiers, text encoders, time predictors, the eval model;
 * not latent decoders, see models/decoder.ts): those of fewer rows than `belowRows` run its frozen,
 * inference-optimised copy on at most `threads` intra-op threads (oneDNN convolutions, which
 * libtorch itself picks only from 16 rows: several times faster below, no faster above, and a few
 * rows on one thread faster than on two — the curves of bench/optimize.js in bench/RESULTS.md; in
 * bf16, whose convolutions are oneDNN's too, only single rows), kept only when each method's first
 * output is within `tolerance` (max |Δ| ÷ max |y|) of the module's. `batchMinRows`: the fewest rows
 * the engine's batcher cuts a call to when the copy serves small calls (per-row cost flat from a
 * few rows on); 16 without it. `chunkRows`: a call of at least twice this many rows on more than one
 * thread runs as row chunks side by side, one thread each (one forward on two threads costs more).
 */
export const OPTIMIZED_FORWARDS = {
  belowRows: 16,
  belowRowsBf16: 2,
  tolerance: 1e-4,
  threads: 1,
  batchMinRows: 4,
  chunkRows: 8,
} as const;

/**
 * The engine's step pool (src/engine/step-pool.ts): Euler segments of at least `minSteps` steps
 * run there, one step for every search's rows at a time. A shorter segment (particles' and beam's
 * single steps) would mostly wait for the pool's running step to join, and leave the next one
 * half empty; its calls go through the batcher alone.
 */
export const STEP_POOL = { minSteps: 4 } as const;

/** Most searches (n × prompts) and kept samples per search in one request. */
export const LIMITS = { searches: 1 << 20, keep: 4096 } as const;
