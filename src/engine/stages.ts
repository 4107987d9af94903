/**
 * The stages of a request between the resolver and the search: what the loaded denoiser says
 * about the request (prepare), its memory estimate, and the models it needs beside the denoiser
 * (load). Engine.run calls them in order.
 */
import { DiffusionSearchError } from '../errors';
import type { Denoiser } from '../models/denoiser';
import { registerPrompts, type RegisteredPrompts } from '../models/prompting';
import type { ShippedModel } from '../models/shipped';
import { resolveClass } from '../request/classes';
import { REQUEST_FIELDS } from '../request/fields';
import { flagOf } from '../request/schema';
import type { GenerateOptions, ResolvedRequest } from '../request/types';
import type { TimePredictionModule } from '../samplers/adaptive';
import { makeSchedule } from '../schedules';
import type { Stream } from '../stream';
import { EnsembleVerifier } from '../verifiers/ensemble';
import type { Verifier } from '../verifiers/verifier';
import type { Held, ModelCache } from './models';

export interface Prepared {
  r: ResolvedRequest;
  file: string;
  shipped?: ShippedModel;
  denoiser: Denoiser;
  /** The class index (0 for a text-conditioned model). */
  cls: number;
  verifierNames: Array<string | Verifier>;
  sigmas: number[];
  adaptive: boolean;
}

export interface Loaded {
  verifier: Verifier;
  predictor?: TimePredictionModule;
  /** The condition of each prompt, or [cls]. */
  conditions: number[];
}

/**
 * A request option as every entrance spells it (`--tpm-solver / "tpmSolver"`): a request reaches
 * the engine as options whichever entrance it came through, so the engine cannot tell which.
 */
const both = (key: keyof GenerateOptions) => `--${flagOf(key, REQUEST_FIELDS[key])} / "${key}"`;

const ARG = 'ARGUMENT';

/** Takes a model for the request (released when it ends). */
export type Hold = <T>(p: Promise<Held<T>>) => Promise<T>;

/** The request checked against its model: prompt or class, verifiers, schedule. */
export function prepare(
  r: ResolvedRequest,
  denoiser: Denoiser,
  file: string,
  shipped: ShippedModel | undefined,
): Prepared {
  if (denoiser.conditions && !r.prompts)
    throw new DiffusionSearchError(`'${r.model}' is conditioned on text: pass a prompt (${both('prompt')})`, ARG);
  if (!denoiser.conditions && (r.prompts || r.negativePrompt !== undefined)) {
    const one = denoiser.classes ? ` (one of ${denoiser.classes.join(', ')})` : '';
    throw new DiffusionSearchError(`'${r.model}' is class-conditional: pass ${both('class')}${one}, not a prompt`, ARG);
  }
  const cls = denoiser.conditions ? 0 : resolveClass(r.class, denoiser.classes);
  const verifierNames = r.verifier.length ? r.verifier : (shipped?.verifiers ?? []);
  if (!verifierNames.length)
    throw new DiffusionSearchError(`model '${r.model}' has no default verifier: pass one (${both('verifier')})`, ARG);
  const adaptive = r.schedule === 'adaptive';
  const sigmas = makeSchedule(adaptive ? 'uniform' : (r.schedule as Exclude<typeof r.schedule, 'adaptive'>), r.steps, {
    shift: r.shift,
  });
  return { r, file, shipped, denoiser, cls, verifierNames, sigmas, adaptive };
}

/**
 * What a request holds while it runs, estimated: each running search's rows (≈ budget/steps per
 * model call, doubled under guidance) × the sample size × 8 (states, predictions, noise, copies),
 * plus every kept sample. Model activations are not counted: the batcher bounds them at maxBatch
 * rows per forward, whatever the load.
 */
export function estimateRequestBytes(o: {
  sampleNumel: number;
  searches: number;
  concurrent: number;
  budget: number;
  steps: number;
  keep: number;
  guided: boolean;
}): number {
  const sample = o.sampleNumel * 4;
  const rows = Math.min(o.budget, Math.max(1, Math.ceil(o.budget / Math.max(1, o.steps)))) * (o.guided ? 2 : 1);
  return Math.min(o.concurrent, o.searches) * (rows * sample * 8 + o.keep * sample) + o.searches * o.keep * sample;
}

/** The estimate of a prepared request. */
export function requestBytes(p: Prepared, concurrent: number): number {
  const sampleNumel = p.denoiser.sampleShape.reduce((a, b) => a * b, 1);
  const { searches, budget, keep, guidance } = p.r;
  return estimateRequestBytes({
    sampleNumel,
    searches,
    concurrent,
    budget,
    steps: p.sigmas.length - 1,
    keep,
    guided: guidance !== 1,
  });
}

/**
 * The verifiers (an ensemble for several), the Time Prediction Module of an adaptive schedule and
 * the prompts' conditions. `register` serialises prompt registration per denoiser; `onRegistered`
 * gets the registration at once, so the caller releases it even if a later step fails.
 */
export async function load(
  p: Prepared,
  models: ModelCache,
  hold: Hold,
  register: <T>(d: Denoiser, f: () => Promise<T>) => Promise<T>,
  onRegistered: (reg: RegisteredPrompts) => void,
  stream: Stream,
): Promise<Loaded> {
  const { r, denoiser } = p;
  const parts = await Promise.all(p.verifierNames.map((v) => hold(models.verifier(v, r.maxBatch as number))));
  const verifier: Verifier = parts.length === 1 ? parts[0] : new EnsembleVerifier(parts);
  const predictor = p.adaptive ? await hold(models.tpm(r.tpm)) : undefined;
  if (p.adaptive && r.sampler !== 'euler')
    throw new DiffusionSearchError(
      `the adaptive schedule steps with its module's rule (euler or ab2: ${both('tpmSolver')}); sampler ` +
        `'${r.sampler}' does not apply (algorithm ${r.algorithm}): ` +
        `use sampler euler (${both('sampler')}) or a fixed schedule`,
      ARG,
    );
  if (!r.prompts) return { verifier, predictor, conditions: [p.cls] };
  const prompts = r.prompts;
  const encoder = await hold(models.textEncoder(denoiser, p.file));
  const registered = await register(denoiser, () =>
    registerPrompts(denoiser, encoder, prompts, { negative: r.negativePrompt, stream }),
  );
  onRegistered(registered);
  return { verifier, predictor, conditions: registered.ids };
}
