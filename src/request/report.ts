/**
 * The report of a request: one interface, written as report.json by the CLI, returned as
 * `report` by POST /v1/generate and by a queue job. Field names are snake_case everywhere.
 */
import type { EvalReport } from '../eval/metrics';
import type { PromptEvalReport } from '../eval/prompt-eval';
import type { Diversity } from '../eval/diversity';
import type { TraceEntry } from '../search/types';
import type { ModuleOptimization } from '../module-variant';

/** The request as it ran (defaults filled): `--config` of this reproduces the run. */
export interface ReportConfig {
  model: string;
  class?: number;
  prompt?: string[];
  negativePrompt?: string;
  algorithm: string;
  budget: number;
  n: number;
  keep: number;
  diversity: number;
  alpha?: number;
  seed: number;
  verifier: string[];
  steps: number;
  schedule: string;
  tpm?: string;
  maxSteps?: number;
  tpmSolver?: string;
  shift?: number;
  sampler: string;
  eta?: number;
  guidance: number;
  device: string;
  precision: string;
  /** The algorithm's options as checked against its schema (only those given). */
  algorithmOptions: Record<string, unknown>;
}

/** Where and how a queue job ran (queue results only). */
export interface QueueReport {
  job: string;
  queue: string;
  worker: string;
  attempt: number;
  queued_ms: number;
  run_ms: number;
  expected_seconds: number | null;
  lock_ms: number;
  loop_delay_max_ms: number;
  loop_delay_p99_ms: number;
}

export interface GenerateReport {
  algorithm: string;
  /** The model as named in the request, and the file it loaded. */
  model: string;
  model_file: string;
  /** Class index and name (class-conditional models), else null. */
  class: number | null;
  class_name: string | null;
  prompts: string[] | null;
  negative_prompt: string | null;
  /** Words of each prompt the text encoder's vocabulary does not know (encoded as unknown). */
  unknown_words: string[][] | null;
  /** NFE per sample. */
  budget: number;
  /** Searches finished (fewer than asked after a cancellation). */
  n: number;
  keep: number;
  /** Rows of samples.npy per search (K, or fewer when a search scored fewer distinct samples). */
  kept: number[];
  complete: boolean;
  /** Shape of the samples ([rows, ...sample shape]; decoded images for a latent model). */
  shape: number[];
  /** Range of the samples' values (the card's, or its decoder's); null when unknown. */
  value_range: [number, number] | null;
  /** Video samples ([rows, T, C, H, W]): frames per second of their animations (the card's); else null. */
  fps: number | null;
  nfe_used: number;
  wall_seconds: number;
  search_seconds: number;
  model_seconds: number;
  verifier_seconds: number;
  /** Time in a latent model's decoder (not NFE: verifiers score decoded samples). */
  decoder_seconds: number;
  /** Reward of each row of the samples. */
  rewards: number[];
  verifier: string;
  /** Denoising steps each row took. */
  steps: number[];
  /**
   * Diversity of all returned samples: mean pairwise cosine distance and Vendi score, in the eval
   * model's feature space where it judges the request ('fashion-eval'), else the samples' ('samples').
   */
  diversity: Diversity | null;
  /** The eval/ classifier's judgement (fashion-flow), else null. */
  eval: EvalReport | null;
  /** Text-to-image models with attribute rules: class and attribute accuracy against the prompts. */
  prompt_eval: PromptEvalReport | null;
  config: ReportConfig;
  /** The denoiser's forwards: their precision, and its optimised copy for small calls (null: none). */
  forward: { precision: string; optimization: ModuleOptimization | null };
  /** Per search (`sample`: its index; gaps after a cancellation): NFE, best reward, the rounds. */
  trace: Array<{ sample: number; nfe: number; reward: number; diversity: Diversity | null; rounds: TraceEntry[] }>;
  /** Queue jobs only. */
  queue?: QueueReport;
  /** The CLI's report.json only: the files written beside it. */
  files?: ReportFiles;
}

/** Files the CLI writes beside report.json, by name in that directory. */
export interface ReportFiles {
  samples: string;
  /** A latent model's latents, else null. */
  latents: string | null;
  grid: string;
  /** Video: one animation per row of samples, in order; else empty. */
  animations: string[];
}
