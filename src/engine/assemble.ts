/** The last stage of a request: kept rows into samples (a latent model's: the images scored), eval, the report. */
import type { RegisteredPrompts } from '../models/prompting';
import { DiffusionSearchError } from '../errors';
import { evaluatePrompts, type AttributeRules, type PromptEvalReport } from '../eval/prompt-eval';
import type { EvalReport } from '../eval/metrics';
import type { GenerateResult } from '../request/types';
import type { Stream } from '../stream';
import type { ModelCache } from './models';
import { fitsEval, reportDiversity } from './diversity';
import { buildReport } from './report';
import type { SearchAllResult } from './search-all';
import type { Hold, Loaded, Prepared } from './stages';

export interface AssembleInput {
  p: Prepared;
  l: Loaded;
  registered?: RegisteredPrompts;
  out: SearchAllResult;
  models: ModelCache;
  hold: Hold;
  stream: Stream;
  started: number;
}

export async function assemble(a: AssembleInput): Promise<GenerateResult> {
  const { p, out } = a;
  const { r, denoiser } = p;
  const kept = out.done.flatMap((d) => d.kept);
  const rewards = out.done.flatMap((d) => d.rewards);
  const steps = out.done.flatMap((d) => d.steps).map((s) => s ?? p.sigmas.length - 1);
  const prompts = r.prompts;
  const keptPrompts = prompts
    ? out.index.flatMap((k, i) => out.done[i].kept.map(() => prompts[Math.floor(k / r.n)]))
    : [];
  const per = denoiser.sampleShape.reduce((x, y) => x * y, 1);
  const decoded = denoiser.decoder ? scoredImages(out) : null;
  const latentShape = [kept.length, ...denoiser.sampleShape];
  const latents = new Float32Array(kept.length * per);
  kept.forEach((k, i) => latents.set(k, i * per));
  const shape = decoded ? [kept.length, ...denoiser.decoder!.imageShape] : latentShape;
  const samples = decoded ?? latents;
  const valueRange = (decoded ? denoiser.decoder!.spec.value_range : denoiser.card.value_range) ?? null;
  const evalFeatures = await evalFeaturesOf(a, samples, shape);
  const judged = await judge(a, samples, shape, keptPrompts, evalFeatures?.rows);
  const diversity = reportDiversity(
    samples,
    shape,
    out.done.map((d) => d.kept.length),
    evalFeatures,
  );
  const report = buildReport({
    p,
    l: a.l,
    registered: a.registered,
    out,
    shape,
    valueRange,
    rewards,
    steps,
    started: a.started,
    diversity,
    ...judged,
  });
  return {
    samples,
    shape,
    latents: decoded ? { data: latents, shape: latentShape } : null,
    prompts: prompts ? keptPrompts : null,
    valueRange,
    rewards,
    results: out.done.map((d) => d.rest),
    report,
    complete: out.complete,
  };
}

/** The eval model's features of the returned samples, once, for its report and the diversity (null: not judged). */
async function evalFeaturesOf(
  a: AssembleInput,
  samples: Float32Array,
  shape: number[],
): Promise<{ rows: Float32Array; space: string } | null> {
  if (!wantsEval(a) || a.out.done.length === 0 || !shape[0]) return null;
  const ev = await a.hold(a.models.evaluator());
  if (!fitsEval(ev, shape)) return null;
  return { rows: await ev.features(samples, shape), space: String(ev.module.card?.name ?? 'eval') };
}

/** The eval/ classifier's judgement: of a class-conditional request, or of a text-to-image one against its prompts. */
async function judge(
  a: AssembleInput,
  samples: Float32Array,
  shape: number[],
  keptPrompts: string[],
  feats: Float32Array | undefined,
): Promise<{ evalReport: EvalReport | null; promptEval: PromptEvalReport | null }> {
  const { r, denoiser, cls } = a.p;
  const want = wantsEval(a);
  const rules = denoiser.card.attributes as AttributeRules | undefined;
  if (!want || a.out.done.length === 0) return { evalReport: null, promptEval: null };
  if (!r.prompts) {
    const ev = await a.hold(a.models.evaluator());
    return {
      evalReport: await ev.evaluate(samples, shape, new Array(shape[0]).fill(cls), denoiser.classes, feats),
      promptEval: null,
    };
  }
  if (!rules || !denoiser.classes) return { evalReport: null, promptEval: null };
  const promptEval = await evaluatePrompts(
    samples,
    shape,
    keptPrompts,
    denoiser.classes,
    rules,
    await a.hold(a.models.evaluator()),
    feats,
  );
  return { evalReport: null, promptEval };
}

/** Whether the eval/ classifier judges the request (asked for, or by default for the fashion models). */
function wantsEval(a: AssembleInput): boolean {
  const { r, shipped } = a.p;
  return r.eval ?? ['fashion-flow', 'fashion-flow-small', 'fashion-t2i'].includes(shipped?.name ?? '');
}

/** A latent model's kept rows as the images their verifier scored, one array. */
function scoredImages(out: SearchAllResult): Float32Array {
  if (out.done.some((d) => d.images?.length !== d.kept.length))
    throw new DiffusionSearchError('internal: a kept latent came without the image its verifier scored', 'NATIVE');
  const rows = out.done.flatMap((d) => d.images!);
  const all = new Float32Array(rows.reduce((n, r) => n + r.length, 0));
  let at = 0;
  for (const r of rows) {
    all.set(r, at);
    at += r.length;
  }
  return all;
}
