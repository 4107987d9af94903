/**
 * The main job as one call: load a model and verifiers, run a search per requested sample, and
 * return the best samples with a report. The CLI's `generate` writes what this returns. It is a
 * call of a short-lived engine (src/engine): a service holds one engine instead, which keeps the
 * models loaded and batches the searches of every request together.
 */
import type { SearchProgress, SearchResult } from './search/types';
import type { AlgorithmName } from './search';
import type { ScheduleName } from './schedules';
import type { AdaptiveSolver } from './samplers/adaptive';
import type { SamplerName } from './samplers';
import type { Verifier } from './verifiers/verifier';
import { createEngine, DEFAULT_STEPS, resolveClass } from './engine/engine';

export { DEFAULT_STEPS, resolveClass };

export interface GenerateOptions {
  model?: string;
  /** Class name or index (default 0), for a class-conditional model. */
  class?: string | number;
  /**
   * Prompt(s) for a text-conditioned model (its card names a text encoder): n searches per
   * prompt, rows grouped by prompt. Encoded once per call.
   */
  prompt?: string | string[];
  /** The unconditional branch of guidance for every prompt (default: the model's null condition). */
  negativePrompt?: string;
  algorithm?: AlgorithmName;
  /** NFE per sample. */
  budget?: number;
  n?: number;
  seed?: number;
  /** Verifier names, files or URLs, or Verifier objects (FunctionVerifier, ...); several make an ensemble. */
  verifier?: Array<string | Verifier>;
  steps?: number;
  /** A fixed schedule, or 'adaptive': a Time Prediction Module picks each sample's steps. */
  schedule?: ScheduleName | 'adaptive';
  /** The Time Prediction Module of the adaptive schedule (shipped name or file; default 'tpm'). */
  tpm?: string;
  /** Most steps a sample may take on the adaptive schedule (default: the module's card). */
  maxSteps?: number;
  /** Step rule of the adaptive schedule, 'euler' or 'ab2' (default: the module's card). */
  tpmSolver?: AdaptiveSolver;
  shift?: number;
  sampler?: SamplerName;
  eta?: number;
  guidance?: number;
  device?: string;
  maxBatch?: number;
  /** Options of the algorithm (see the README's table). */
  algorithmOptions?: Record<string, unknown>;
  /** Keep the K best distinct samples of each search (default 1): `samples` holds n·K rows. */
  keep?: number;
  /** Judge with the eval/ classifier (default: when the model is fashion-flow). */
  eval?: boolean;
}

export interface GenerateProgress extends SearchProgress {
  sample: number;
  samples: number;
  totalNfe: number;
  totalBudget: number;
}

export interface GenerateResult {
  /**
   * The kept samples, search after search, best first within each: [Σ kept, ...shape]. For a
   * latent model these are decoded images; the latents are in `latents`.
   */
  samples: Float32Array;
  shape: number[];
  /** A latent model's latents of the same rows, [Σ kept, ...sampleShape]; null otherwise. */
  latents: { data: Float32Array; shape: number[] } | null;
  /** The prompt of each row (text-conditioned models), else null. */
  prompts: string[] | null;
  /** The range of `samples` (the card's, or its decoder's), for display; null when unknown. */
  valueRange: [number, number] | null;
  /** The reward of each row of `samples`. */
  rewards: number[];
  results: Array<Omit<SearchResult, 'sample' | 'top'>>;
  report: Record<string, unknown>;
  /** False when cancelled: the samples are those finished before. */
  complete: boolean;
}

export async function generate(
  o: GenerateOptions,
  control: { signal?: AbortSignal; onProgress?: (p: GenerateProgress) => void } = {},
): Promise<GenerateResult> {
  // No queue, no memory ceiling: everything a caller asks for runs, as it always did. Two
  // searches at a time: their forwards merge, and the first samples still finish early (Ctrl-C
  // keeps the finished ones; with more at once, a toy model's first search ends later).
  const engine = createEngine({ device: o.device, maxBatch: o.maxBatch, maxQueue: Infinity, maxActive: Infinity, memoryLimit: Infinity, searchesPerRequest: 2 });
  try {
    return await engine.generate(o, control);
  } finally {
    await engine.close();
  }
}
