/**
 * Prompts for a model conditioned on text: encoded once per request with the text encoder its
 * card names, one condition registered per prompt (searches of that prompt share its id), the
 * negative prompt as the unconditional row of guidance, and — for a card whose unconditional
 * branch is the empty prompt ("unconditional": { "prompt": "" }) — that prompt as the null condition.
 */
import { DiffusionSearchError } from '../errors';
import type { NativeStream, NativeTensor } from '../native';
import { slice } from '../tensor-ops';
import { TensorScope } from '../tensor-scope';
import { NULL_CONDITION } from './conditions';
import type { Denoiser } from './denoiser';
import { modelFileBeside } from './shipped';
import { TextEncoder } from './text-encoder';

export interface RegisteredPrompts {
  /** The condition id of each prompt, for SearchConfig.cls. */
  ids: number[];
  /** Words of each prompt the vocabulary does not know. */
  unknown: string[][];
  release(): void;
}

/** The text encoder a denoiser's card names (a shipped name, a path, or a file beside the model). */
export async function loadTextEncoder(denoiser: Denoiser, o: { device?: string } = {}): Promise<TextEncoder> {
  const name = denoiser.card.text_encoder;
  if (typeof name !== 'string' || !name)
    throw new DiffusionSearchError(
      `'${denoiser.name}' takes condition tensors (${denoiser.conditionSpecs?.map((s) => s.name).join(', ')}) but ` +
        'its card names no "text_encoder": pass them through the library',
      'MODEL_CARD',
    );
  using s = new TensorScope();
  const enc = s.track(await TextEncoder.load(modelFileBeside(name, denoiser.module.path), o));
  const names = denoiser.conditionSpecs!.map((c) => c.name);
  if (enc.card.outputs.join() !== names.join())
    throw new DiffusionSearchError(
      `text encoder '${enc.name}' outputs [${enc.card.outputs}], but '${denoiser.name}' takes [${names}]`,
      'MODEL_CARD',
    );
  return s.keep(enc);
}

export async function registerPrompts(
  denoiser: Denoiser,
  encoder: TextEncoder,
  prompts: string[],
  o: { negative?: string; stream?: NativeStream } = {},
): Promise<RegisteredPrompts> {
  if (prompts.length === 0) throw new DiffusionSearchError('no prompt given', 'ARGUMENT');
  prompts.forEach((p, i) => {
    if (typeof p !== 'string' || !p.trim()) throw new DiffusionSearchError(`prompt ${i + 1} is empty`, 'ARGUMENT');
  });
  const emptyIsNull = (denoiser.card.unconditional as { prompt?: unknown } | undefined)?.prompt;
  const extra = [
    ...(o.negative !== undefined ? [o.negative] : []),
    ...(typeof emptyIsNull === 'string' && !denoiser.conditions!.has(NULL_CONDITION) ? [emptyIsNull] : []),
  ];
  using s = new TensorScope(); // the encoded batch; each prompt's rows are sliced out for the table
  const all = s.track(await encoder.encode([...prompts, ...extra], o.stream));
  const ids: number[] = [];
  const rowOf = async (i: number) => {
    const out: Record<string, NativeTensor> = {};
    for (const [k, t] of Object.entries(all)) out[k] = await slice(t, i, i + 1, o.stream);
    return out;
  };
  try {
    let next = prompts.length;
    const negative = o.negative !== undefined ? next++ : -1;
    if (typeof emptyIsNull === 'string' && !denoiser.conditions!.has(NULL_CONDITION))
      denoiser.conditions!.register(await rowOf(next++), NULL_CONDITION);
    for (let i = 0; i < prompts.length; i++)
      ids.push(denoiser.registerCondition(await rowOf(i), negative >= 0 ? await rowOf(negative) : undefined));
  } catch (e) {
    ids.forEach((id) => denoiser.releaseCondition(id));
    throw e;
  }
  return {
    ids,
    unknown: prompts.map((p) => encoder.tokenize(p).unknown),
    release: () => ids.forEach((id) => denoiser.releaseCondition(id)),
  };
}
