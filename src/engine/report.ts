/** Builds a request's GenerateReport (src/request/report) from what its stages produced. */
import type { EvalReport } from '../eval/metrics';
import type { PromptEvalReport } from '../eval/prompt-eval';
import type { RegisteredPrompts } from '../models/prompting';
import { isVideoShape } from '../io/frames';
import { VIDEO_FPS } from '../request/defaults';
import type { GenerateReport, ReportConfig } from '../request/report';
import { adaptiveSettings } from '../samplers/adaptive';
import type { TraceEntry } from '../search/types';
import type { ReportDiversity } from './diversity';
import type { SearchAllResult } from './search-all';
import type { Loaded, Prepared } from './stages';

export interface ReportParts {
  p: Prepared;
  l: Loaded;
  registered?: RegisteredPrompts;
  out: SearchAllResult;
  shape: number[];
  valueRange: [number, number] | null;
  rewards: number[];
  steps: number[];
  evalReport: EvalReport | null;
  promptEval: PromptEvalReport | null;
  diversity: ReportDiversity;
  started: number;
}

export function buildReport(a: ReportParts): GenerateReport {
  const { p, out } = a;
  const { r, denoiser } = p;
  const results = out.done.map((d) => d.rest);
  const sum = (f: (x: (typeof results)[number]) => number) => results.reduce((s, x) => s + f(x), 0);
  return {
    algorithm: r.algorithm,
    model: r.model,
    model_file: p.file,
    class: r.prompts ? null : p.cls,
    class_name: r.prompts ? null : (denoiser.classes?.[p.cls] ?? null),
    prompts: r.prompts ?? null,
    negative_prompt: r.negativePrompt ?? null,
    unknown_words: a.registered?.unknown ?? null,
    budget: r.budget,
    n: results.length,
    keep: r.keep,
    kept: out.done.map((d) => d.kept.length),
    complete: out.complete,
    shape: a.shape,
    value_range: a.valueRange,
    fps: videoFps(a.shape, p),
    nfe_used: sum((x) => x.nfe),
    wall_seconds: (performance.now() - a.started) / 1000,
    search_seconds: sum((x) => x.wallSeconds),
    model_seconds: sum((x) => x.modelSeconds),
    verifier_seconds: sum((x) => x.verifierSeconds),
    decoder_seconds: denoiser.decoder?.seconds ?? 0,
    rewards: a.rewards,
    verifier: a.l.verifier.name,
    steps: a.steps,
    diversity: a.diversity.all,
    eval: a.evalReport,
    prompt_eval: a.promptEval,
    config: configOf(a.p, a.l),
    forward: { precision: denoiser.module.precision, optimization: denoiser.module.optimization },
    trace: results.map((x, i) => ({
      sample: out.index[i],
      nfe: x.nfe,
      reward: x.reward,
      diversity: a.diversity.perSearch[i],
      rounds: x.trace as TraceEntry[],
    })),
  };
}

/** Frames per second of video samples: the decoder's or the denoiser's card, else VIDEO_FPS; null for images. */
function videoFps(shape: number[], p: Prepared): number | null {
  if (!isVideoShape(shape)) return null;
  return p.denoiser.decoder?.spec.fps ?? p.denoiser.card.fps ?? VIDEO_FPS;
}

/** The request as it ran: `--config` of it reproduces the run. */
function configOf(p: Prepared, l: Loaded): ReportConfig {
  const { r } = p;
  return {
    model: r.model,
    class: r.prompts ? undefined : p.cls,
    prompt: r.prompts,
    negativePrompt: r.negativePrompt,
    algorithm: r.algorithm,
    budget: r.budget,
    n: r.n,
    keep: r.keep,
    diversity: r.diversity,
    alpha: r.alpha,
    seed: r.seed,
    verifier: p.verifierNames.map((v) => (typeof v === 'string' ? v : v.name)),
    steps: p.sigmas.length - 1,
    schedule: r.schedule,
    tpm: p.adaptive ? r.tpm : undefined,
    maxSteps: r.maxSteps,
    tpmSolver: l.predictor ? adaptiveSettings(l.predictor, { solver: r.tpmSolver }).solver : undefined,
    shift: r.shift,
    sampler: r.sampler,
    eta: r.eta,
    guidance: r.guidance,
    device: r.device ?? 'cpu',
    precision: p.denoiser.module.precision,
    algorithmOptions: r.algorithmOptions,
  };
}
