/** The request every entrance takes (CLI flags, generate(), POST /v1/generate, queue jobs), and what it returns. */
import type { SearchProgress, SearchResult } from '../search/types';
import type { AlgorithmName } from '../search';
import type { ScheduleName } from '../schedules';
import type { AdaptiveSolver } from '../samplers/adaptive';
import type { SamplerName } from '../samplers';
import type { Verifier } from '../verifiers/verifier';
import type { Precision } from '../precision';
import type { GenerateReport } from './report';

/** Defaults: ./defaults (DEFAULTS); each field's check and description: ./fields. */
export interface GenerateOptions {
  model?: string;
  /** Class name or index (default 0), for a class-conditional model. */
  class?: string | number;
  /**
   * Prompt(s) for a text-conditioned model (its card names a text encoder): n searches per
   * prompt, rows grouped by prompt. Encoded once per call.
   */
  prompt?: string | string[];
  /**
   * The unconditional branch of guidance for every prompt (default: the model's null condition); needs
   * guidance > 1.
   */
  negativePrompt?: string;
  algorithm?: AlgorithmName;
  /** NFE per sample. */
  budget?: number;
  /** Searches (samples) per prompt (default 1). */
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
  /** The denoiser's forwards: 'fp32' (default) or 'bf16' (src/precision.ts); an engine runs one. */
  precision?: Precision;
  maxBatch?: number;
  /** Options of the algorithm: its schema (src/search/<algorithm>.options.ts) lists them; others are refused. */
  algorithmOptions?: Record<string, unknown>;
  /** Keep the K best distinct samples of each search (default 1): `samples` holds n·K rows. */
  keep?: number;
  /**
   * λ ≥ 0 of the diverse top-k (default 0): the K kept samples are chosen by greedy MMR over every
   * distinct sample the search scored, reward (standardised) minus λ × the most cosine similarity
   * to one already kept, in the verifier's feature space (its features method; else the samples).
   */
  diversity?: number;
  /**
   * Target temperature α > 0: particles and best-of-n return draws from p·exp(r/α) (the
   * reward-tilted target) instead of the best sample; other algorithms refuse it.
   */
  alpha?: number;
  /** Judge with the eval/ classifier (default: when the model is fashion-flow). */
  eval?: boolean;
  /** Progress events carry the current best x̂0 (GenerateProgress.preview), a few a second (default false). */
  preview?: boolean;
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
  report: GenerateReport;
  /** False when cancelled: the samples are those finished before. */
  complete: boolean;
}

/** A request after resolveRequest: checked, defaults filled, the algorithm's options checked against its schema. */
export interface ResolvedRequest {
  model: string;
  class?: string | number;
  /** The prompts, as a list (undefined: a class-conditional request). */
  prompts?: string[];
  negativePrompt?: string;
  algorithm: AlgorithmName;
  algorithmOptions: Record<string, unknown>;
  budget: number;
  n: number;
  keep: number;
  diversity: number;
  alpha?: number;
  seed: number;
  /** Empty: the model's default verifiers. */
  verifier: Array<string | Verifier>;
  steps: number;
  schedule: ScheduleName | 'adaptive';
  tpm: string;
  maxSteps?: number;
  tpmSolver?: AdaptiveSolver;
  shift?: number;
  sampler: SamplerName;
  eta?: number;
  guidance: number;
  device?: string;
  /** The denoiser's forwards: 'fp32' (default) or 'bf16' (src/precision.ts); an engine runs one. */
  precision?: Precision;
  maxBatch?: number;
  eval?: boolean;
  preview?: boolean;
  /** Searches the request runs: n per prompt. */
  searches: number;
}
