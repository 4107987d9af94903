/**
 * The main job as one call: load a model and verifiers, run a search per requested sample, and
 * return the best samples with a report. The CLI's `generate` writes what this returns.
 */
import { DiffusionSearchError } from './errors';
import { Denoiser } from './models/denoiser';
import { DEFAULT_MODEL, loadVerifier, resolveModel } from './models/registry';
import { makeSchedule, type ScheduleName } from './schedules';
import { TimePredictionModule, adaptiveSettings, type AdaptiveSolver } from './samplers/adaptive';
import type { SamplerName } from './samplers';
import { algorithms, type AlgorithmName } from './search';
import type { SearchProgress, SearchResult, TraceEntry } from './search/types';
import { Evaluator, type EvalReport } from './eval/metrics';
import type { Verifier } from './verifiers/verifier';
import { evaluatePrompts, type AttributeRules, type PromptEvalReport } from './eval/prompt-eval';
import { createStream, type Stream } from './stream';
import { tensor } from './tensor';
import { loadTextEncoder, registerPrompts } from './models/prompting';

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

/** Denoising steps when none are given: the same for `generate`, `sweep` and the CLI. */
export const DEFAULT_STEPS = 20;

export function resolveClass(cls: string | number | undefined, classes: string[] | undefined): number {
  if (cls === undefined) return 0;
  const names = classes ?? [];
  const asNum = typeof cls === 'number' ? cls : /^\d+$/.test(cls) ? Number(cls) : NaN;
  if (Number.isInteger(asNum) && asNum >= 0 && asNum < Math.max(1, names.length)) return asNum;
  const i = names.findIndex((c) => c.toLowerCase() === String(cls).toLowerCase());
  if (i >= 0) return i;
  throw new DiffusionSearchError(
    `unknown class '${cls}': use an index below ${Math.max(1, names.length)}${names.length ? ` or one of ${names.map((c) => `'${c}'`).join(', ')}` : ''}`,
    'ARGUMENT',
  );
}

export async function generate(
  o: GenerateOptions,
  control: { signal?: AbortSignal; onProgress?: (p: GenerateProgress) => void } = {},
): Promise<GenerateResult> {
  const started = performance.now();
  const algorithm = o.algorithm ?? 'evosearch';
  const algo = algorithms[algorithm];
  if (!algo) throw new DiffusionSearchError(`unknown algorithm '${algorithm}': use one of ${Object.keys(algorithms).join(', ')}`, 'ARGUMENT');
  const n = o.n ?? 1;
  if (!Number.isInteger(n) || n < 1) throw new DiffusionSearchError(`n must be a positive integer, got ${o.n}`, 'ARGUMENT');
  const keep = o.keep ?? 1;
  if (!Number.isInteger(keep) || keep < 1) throw new DiffusionSearchError(`keep must be a positive integer, got ${o.keep}`, 'ARGUMENT');
  const budget = o.budget ?? 500;
  if (!Number.isInteger(budget) || budget < 1) throw new DiffusionSearchError(`budget must be a positive integer NFE per sample, got ${o.budget}`, 'BUDGET');
  const seed = o.seed ?? 0;
  if (!Number.isSafeInteger(seed) || seed < 0) throw new DiffusionSearchError(`seed must be a non-negative integer, got ${o.seed}`, 'ARGUMENT');
  const modelName = o.model ?? DEFAULT_MODEL;
  const { file, shipped } = resolveModel(modelName);
  const denoiser = await Denoiser.load(file, { device: o.device, maxBatch: o.maxBatch });
  const prompts = o.prompt === undefined ? undefined : Array.isArray(o.prompt) ? o.prompt : [o.prompt];
  if (denoiser.conditions && !prompts)
    throw new DiffusionSearchError(`'${modelName}' is conditioned on text: pass a prompt (--prompt "...")`, 'ARGUMENT');
  if (!denoiser.conditions && (prompts || o.negativePrompt !== undefined))
    throw new DiffusionSearchError(`'${modelName}' is class-conditional: pass --class${denoiser.classes ? ` (one of ${denoiser.classes.join(', ')})` : ''}, not a prompt`, 'ARGUMENT');
  const cls = denoiser.conditions ? 0 : resolveClass(o.class, denoiser.classes);
  const verifierNames = o.verifier?.length ? o.verifier : shipped?.verifiers ?? [];
  if (!verifierNames.length) throw new DiffusionSearchError(`model '${modelName}' has no default verifier: pass --verifier`, 'ARGUMENT');
  const verifier = await loadVerifier(verifierNames, { device: o.device, maxBatch: o.maxBatch });
  const sampler = o.sampler ?? (algorithm === 'particles' || algorithm === 'beam' ? 'sde' : 'euler');
  const adaptive = o.schedule === 'adaptive';
  // Adaptive rollouts choose their own steps; intermediate levels (EvoSearch, paths) use a uniform schedule.
  const sigmas = makeSchedule(o.schedule === 'adaptive' || o.schedule === undefined ? 'uniform' : o.schedule, o.steps ?? DEFAULT_STEPS, { shift: o.shift });
  const predictor = adaptive ? await TimePredictionModule.load(resolveModel(o.tpm ?? 'tpm').file, { device: o.device }) : undefined;
  if (adaptive && sampler !== 'euler')
    throw new DiffusionSearchError(`the adaptive schedule steps with its module's rule (euler or ab2, --tpm-solver); --sampler ${sampler} does not apply (algorithm ${algorithm})`, 'ARGUMENT');
  const stream = createStream({ device: o.device });
  // One condition per prompt (or the class): its id goes where a class id goes.
  const encoder = prompts ? await loadTextEncoder(denoiser, { device: o.device }) : undefined;
  const registered = prompts ? await registerPrompts(denoiser, encoder!, prompts, { negative: o.negativePrompt, stream }) : undefined;
  const conditions = registered?.ids ?? [cls];
  const per = denoiser.sampleShape.reduce((a, b) => a * b, 1);
  const keptPrompts: string[] = [];
  const kept: Float32Array[] = [];
  const keptRewards: number[] = [];
  const keptSteps: number[] = [];
  const keptCounts: number[] = [];
  const results: GenerateResult['results'] = [];
  let complete = true;
  let nfeBefore = 0; // NFE the finished searches really used (adaptive rollouts use less than planned)
  const searches = conditions.length * n;
  let decoded: Float32Array | null = null;
  try {
    search: for (let j = 0; j < conditions.length; j++)
    for (let i = 0; i < n; i++) {
      const done = j * n + i;
      let r: SearchResult;
      try {
        r = await algo.run(
          {
            denoiser,
            verifier,
            cls: conditions[j],
            prompt: prompts?.[j],
            budget,
            sigmas,
            sampler,
            eta: o.eta,
            guidance: o.guidance ?? 1,
            // Each sample's search has its own seed, so sample i is the same whatever n is.
            seed: BigInt(seed) * 1_000_003n + BigInt(i),
            stream,
            adaptive: predictor ? { predictor, maxSteps: o.maxSteps, solver: o.tpmSolver } : undefined,
            keep,
            signal: control.signal,
            onProgress: (p) =>
              control.onProgress?.({ ...p, sample: done, samples: searches, totalNfe: nfeBefore + p.nfe, totalBudget: searches * budget }),
          },
          (o.algorithmOptions ?? {}) as never,
        );
      } catch (e) {
        if (e instanceof DiffusionSearchError && e.code === 'ABORTED' && results.length > 0) {
          complete = false;
          break search;
        }
        throw e;
      }
      for (const k of r.top) {
        if (prompts) keptPrompts.push(prompts[j]);
        kept.push((await k.sample.toArray(stream)) as Float32Array);
        keptRewards.push(k.reward);
        keptSteps.push(k.steps ?? r.steps ?? sigmas.length - 1);
        k.sample.dispose();
      }
      keptCounts.push(r.top.length);
      nfeBefore += r.nfe;
      const { sample: _s, top: _t, ...rest } = r;
      results.push(rest);
    }
    decoded = await decodeRows(denoiser, kept, stream);
  } finally {
    registered?.release();
    encoder?.dispose();
    await stream.close();
  }
  const done = results.length;
  const latentShape = [kept.length, ...denoiser.sampleShape];
  const latents = new Float32Array(kept.length * per);
  kept.forEach((k, i) => latents.set(k, i * per));
  const outShape = decoded ? [kept.length, ...denoiser.decoder!.imageShape] : latentShape;
  const outSamples = decoded ?? latents;
  let evalReport: EvalReport | null = null;
  const wantEval = o.eval ?? (shipped?.name === 'fashion-flow' || shipped?.name === 'fashion-t2i');
  let promptEval: PromptEvalReport | null = null;
  const rules = denoiser.card.attributes as AttributeRules | undefined;
  if (wantEval && done > 0 && !prompts) {
    const ev = await Evaluator.load();
    evalReport = await ev.evaluate(outSamples, outShape, new Array(kept.length).fill(cls), denoiser.classes);
  } else if (wantEval && done > 0 && rules && denoiser.classes) {
    // A text-to-image model judged against its prompts: the class they name and the attributes they state.
    promptEval = await evaluatePrompts(outSamples, outShape, keptPrompts, denoiser.classes, rules, await Evaluator.load());
  }
  const rewards = keptRewards;
  const report = {
    algorithm,
    model: modelName,
    model_file: file,
    class: prompts ? null : cls,
    class_name: prompts ? null : denoiser.classes?.[cls] ?? null,
    prompts: prompts ?? null,
    negative_prompt: o.negativePrompt ?? null,
    /** Words of each prompt the text encoder's vocabulary does not know (encoded as unknown). */
    unknown_words: registered?.unknown ?? null,
    budget,
    n: done,
    keep,
    /** Rows of samples.npy per search (K, or fewer when a search scored fewer distinct samples). */
    kept: keptCounts,
    complete,
    nfe_used: results.reduce((s, r) => s + r.nfe, 0),
    wall_seconds: (performance.now() - started) / 1000,
    search_seconds: results.reduce((s, r) => s + r.wallSeconds, 0),
    model_seconds: results.reduce((s, r) => s + r.modelSeconds, 0),
    verifier_seconds: results.reduce((s, r) => s + r.verifierSeconds, 0),
    /** Time in a latent model's decoder (not NFE: verifiers score decoded samples). */
    decoder_seconds: denoiser.decoder?.seconds ?? 0,
    rewards,
    verifier: verifier.name,
    steps: keptSteps,
    eval: evalReport,
    /** Text-to-image models with attribute rules: class and attribute accuracy against the prompts. */
    prompt_eval: promptEval,
    config: {
      model: modelName,
      class: prompts ? undefined : cls,
      prompt: prompts,
      negativePrompt: o.negativePrompt,
      algorithm,
      budget,
      n,
      keep,
      seed,
      verifier: verifierNames.map((v) => (typeof v === 'string' ? v : v.name)),
      steps: sigmas.length - 1,
      schedule: o.schedule ?? 'uniform',
      tpm: adaptive ? (o.tpm ?? 'tpm') : undefined,
      maxSteps: o.maxSteps,
      tpmSolver: predictor ? adaptiveSettings(predictor, { solver: o.tpmSolver }).solver : undefined,
      shift: o.shift,
      sampler,
      eta: o.eta,
      guidance: o.guidance ?? 1,
      device: o.device ?? 'cpu',
      algorithmOptions: o.algorithmOptions ?? {},
    },
    trace: results.map((r, i) => ({ sample: i, nfe: r.nfe, reward: r.reward, rounds: r.trace as TraceEntry[] })),
  };
  return {
    samples: outSamples,
    shape: outShape,
    latents: decoded ? { data: latents, shape: latentShape } : null,
    prompts: prompts ? keptPrompts : null,
    valueRange: (decoded ? denoiser.decoder!.spec.value_range : denoiser.card.value_range) ?? null,
    rewards,
    results,
    report,
    complete,
  };
}

/** A latent model's kept rows decoded to images (null for a pixel model). */
async function decodeRows(denoiser: Denoiser, rows: Float32Array[], stream: Stream): Promise<Float32Array | null> {
  if (!denoiser.decoder || rows.length === 0) return null;
  const per = rows[0].length;
  const all = new Float32Array(rows.length * per);
  rows.forEach((r, i) => all.set(r, i * per));
  const z = tensor(all, [rows.length, ...denoiser.sampleShape], { device: denoiser.device });
  try {
    const x = await denoiser.decoder.decode(z, stream);
    try {
      return Float32Array.from((await x.toArray(stream)) as Float32Array);
    } finally {
      x.dispose();
    }
  } finally {
    z.dispose();
  }
}
