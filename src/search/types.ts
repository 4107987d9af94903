/** What every search algorithm takes and returns. */
import type { NativeStream, NativeTensor } from '../native';
import type { Denoiser, NfeMeter } from '../models/denoiser';
import type { SamplerName } from '../samplers';
import type { Verifier } from '../verifiers/verifier';
import type { Seed } from '../ops';
import type { AdaptiveSolver, TimePredictor } from '../samplers/adaptive';

export interface SearchProgress {
  algorithm: string;
  nfe: number;
  budget: number;
  best: number;
  elapsedSeconds: number;
  /** Generation / round / step index. */
  round: number;
  /** The current best x̂0 (config.previewGate): the best sample scored, else the best prediction scored. */
  preview?: SearchPreview;
}

/** A copy of one x̂0 the search scored (a latent model's: the decoded image), for display. */
export interface SearchPreview {
  data: Float32Array;
  /** One sample's shape (no batch dimension). */
  shape: number[];
  reward: number;
  /** The values' range (the card's, or its decoder's); null when unknown. */
  valueRange: [number, number] | null;
}

export interface SearchConfig {
  denoiser: Denoiser;
  verifier: Verifier;
  /**
   * What to condition on: a class index, or for a model conditioned on named tensors the id of a
   * condition registered with the denoiser (Denoiser.registerCondition; generate() does it for prompts).
   */
  cls: number;
  /** The prompt behind the condition, handed to verifiers (prompt-aware rewards). */
  prompt?: string;
  /** NFE budget for this search (one best sample). */
  budget: number;
  /** Denoising schedule (σ from 1 to 0) used by rollouts. */
  sigmas: readonly number[];
  sampler?: SamplerName;
  guidance?: number;
  /** η of the sde sampler. */
  eta?: number;
  seed?: Seed;
  stream?: NativeStream;
  signal?: AbortSignal;
  onProgress?: (p: SearchProgress) => void;
  /**
   * Asked at a progress event when the best x̂0 changed since the last preview: true attaches a
   * copy of it (SearchProgress.preview). No extra NFE: it is the x̂0 the search already scored.
   */
  previewGate?: () => boolean;
  /** How many of the best distinct samples to return in `top` (default 1). */
  keep?: number;
  /**
   * λ ≥ 0 of the diverse top-k (default 0): `top` is picked by greedy MMR (./mmr) over every
   * distinct sample scored, in the verifier's feature space (its features method) or the samples'.
   */
  diversity?: number;
  /**
   * Target temperature α > 0 (particles, best-of-n): `top` holds K draws from p·exp(r/α), best
   * reward first, instead of the K best (./tilt).
   */
  alpha?: number;
  /** Treat NaN/∞ verifier scores as −∞ instead of failing. */
  nanAsNegInf?: boolean;
  /**
   * A latent model: keep beside each of `top`'s latents the decoded image its verifier scored
   * (`top[i].image`, to dispose with it), so a caller needs no second decode, whose batch size
   * would change the last bits.
   */
  keepImages?: boolean;
  /**
   * Adaptive schedule (TPDM): rollouts to σ = 0 follow the steps a Time Prediction Module
   * chooses per sample (with its solver); intermediate levels still come from `sigmas`, stepped by
   * Euler (another sampler is ARGUMENT). The first rollouts are planned at the module's maximum of
   * steps, later ones at the most it took so far, capped at what the budget leaves; each sample is
   * charged the steps it really took. Particles and beam refuse it (they step every row at one σ).
   */
  adaptive?: { predictor: TimePredictor; sigmaMin?: number; maxSteps?: number; solver?: AdaptiveSolver };
  /**
   * Where Euler segments along `sigmas` run with other searches' rows, one step for all of them at
   * a time (the engine's, with batching on; src/engine/step-pool.ts). Without it a search steps alone.
   */
  stepPool?: StepPool;
}

/** Rows of one search taken from sigmas[from] to sigmas[to] by Euler, in a StepPool. */
export interface EulerSegment {
  denoiser: Denoiser;
  guidance: number;
  /** The search's stream: its request's lane. */
  stream?: NativeStream;
  x: NativeTensor;
  sigmas: readonly number[];
  from: number;
  to: number;
  /** The schedule index whose x̂0 is returned as x0Mid (-1: none). */
  midAt: number;
  cond: number;
  meter: NfeMeter;
  /** Throws when the search is cancelled (checked before each step). */
  check: () => void;
}

/** The state at sigmas[to], the x̂0 of the last step that is not the mid one, and the mid x̂0. */
export interface SegmentResult {
  x: NativeTensor;
  x0: NativeTensor | null;
  x0Mid: NativeTensor | null;
}

export interface StepPool {
  euler(segment: EulerSegment): Promise<SegmentResult>;
}

export interface TraceEntry {
  round: number;
  nfe: number;
  /** Noise level the round worked at (where meaningful). */
  sigma?: number;
  population?: number;
  best: number;
  mean: number;
  [key: string]: unknown;
}

export interface SearchResult {
  algorithm: string;
  /** The best sample found, [1, ...sampleShape]. */
  sample: NativeTensor;
  reward: number;
  /**
   * The K best distinct samples scored (K = config.keep), best first; top[0] is `sample`. Fewer
   * than K when the search scored fewer distinct samples. Dispose each (or `sample` and the rest),
   * and each `image` (config.keepImages).
   */
  top: Array<{ sample: NativeTensor; reward: number; steps?: number; image?: NativeTensor }>;
  /** Every final reward the verifier gave during the search. */
  rewards: number[];
  nfe: number;
  budget: number;
  wallSeconds: number;
  modelSeconds: number;
  verifierSeconds: number;
  trace: TraceEntry[];
  /** Steps each returned sample took (adaptive schedules). */
  steps?: number;
}
