/**
 * A text encoder: a TorchScript module `forward(tokens int64[N, L]) -> (tensors...)` whose card
 * holds a word vocabulary and the tokenizer rule, so prompts are tokenized here in TypeScript:
 * lower-case, split on whitespace, keep [a-z/-], unknown words -> unk_id, pad with pad_id to
 * max_len (longer prompts are cut, and say so). Its outputs are named by the card's `outputs`:
 * the condition tensors of a denoiser that declares the same names.
 */
import { DiffusionSearchError } from '../errors';
import { loadModule, type TorchModule } from '../module';
import { inferenceLoad } from './inference-load';
import type { NativeStream, NativeTensor } from '../native';
import { isTensor, tensor } from '../tensor';
import { TensorScope, type Owned } from '../tensor-scope';

export interface TextEncoderCard {
  name: string;
  vocab: string[];
  max_len: number;
  pad_id: number;
  unk_id: number;
  outputs: string[];
}

export interface Tokenized {
  ids: BigInt64Array;
  /** Words of the prompt that are not in the vocabulary (encoded as unk_id). */
  unknown: string[];
  /** Words cut because the prompt is longer than max_len. */
  truncated: string[];
}

export class TextEncoder {
  readonly card: TextEncoderCard;
  private readonly index: Map<string, number>;

  constructor(readonly module: TorchModule) {
    this.card = checkCard(module.card, module.path);
    this.index = new Map(this.card.vocab.map((w, i) => [w, i]));
  }

  static async load(nameOrPath: string, o: { device?: string } = {}): Promise<TextEncoder> {
    return new TextEncoder(await loadModule(nameOrPath, inferenceLoad(o.device)));
  }

  get name(): string {
    return this.card.name;
  }

  /** The card's tokenizer rule; the ids padded to max_len. */
  tokenize(prompt: string): Tokenized {
    if (typeof prompt !== 'string')
      throw new DiffusionSearchError(`a prompt must be a string, got ${typeof prompt}`, 'ARGUMENT');
    const words = promptWords(prompt);
    const { max_len: L, pad_id, unk_id } = this.card;
    const ids = new BigInt64Array(L).fill(BigInt(pad_id));
    const unknown: string[] = [];
    words.slice(0, L).forEach((w, i) => {
      const id = this.index.get(w);
      if (id === undefined) unknown.push(w);
      ids[i] = BigInt(id ?? unk_id);
    });
    return { ids, unknown, truncated: words.slice(L) };
  }

  /** The encoder's named outputs for a batch of prompts: each [N, ...]. */
  async encode(prompts: string[], stream?: NativeStream): Promise<Record<string, NativeTensor>> {
    if (prompts.length === 0) throw new DiffusionSearchError('encode: no prompts', 'ARGUMENT');
    const L = this.card.max_len;
    const all = new BigInt64Array(prompts.length * L);
    prompts.forEach((p, i) => all.set(this.tokenize(p).ids, i * L));
    using s = new TensorScope();
    const tokens = s.track(tensor(all, [prompts.length, L], { device: this.module.device }));
    const out = await this.module.call('forward', [tokens], stream);
    const list = s.track((Array.isArray(out) ? out : [out]) as Owned[]);
    const names = this.card.outputs;
    if (list.length !== names.length || !list.every((t) => isTensor(t) && t.shape[0] === prompts.length))
      throw new DiffusionSearchError(
        `text encoder '${this.name}' returned ${list.length} value(s); its card names ${names.length} outputs ` +
          `[${names}], each with ${prompts.length} rows`,
        'SHAPE',
      );
    return Object.fromEntries(names.map((n, i) => [n, s.keep(list[i]) as NativeTensor]));
  }

  dispose(): void {
    this.module.dispose();
  }
}

/** The words of a prompt by the tokenizer rule (lower-case, split on whitespace, keep [a-z/-]). */
export function promptWords(prompt: string): string[] {
  return prompt
    .toLowerCase()
    .split(/\s+/)
    .map((w) => w.replace(/[^a-z/-]/g, ''))
    .filter((w) => w.length > 0);
}

function checkCard(json: Record<string, unknown> | null, file: string): TextEncoderCard {
  const fail = (what: string): never => {
    throw new DiffusionSearchError(`text encoder card of '${file}': ${what}`, 'MODEL_CARD');
  };
  if (!json) return fail('the archive has no model.json');
  const c = json as Partial<TextEncoderCard>;
  if (typeof c.name !== 'string') fail('needs a "name"');
  if (!Array.isArray(c.vocab) || !c.vocab.every((w) => typeof w === 'string'))
    fail('"vocab" must be an array of words');
  if (!Number.isInteger(c.max_len) || c.max_len! < 1) fail('"max_len" must be a positive integer');
  for (const k of ['pad_id', 'unk_id'] as const)
    if (!Number.isInteger(c[k]) || c[k]! < 0 || c[k]! >= c.vocab!.length) fail(`"${k}" must be an index into "vocab"`);
  if (!Array.isArray(c.outputs) || c.outputs.length === 0 || !c.outputs.every((o) => typeof o === 'string'))
    fail('"outputs" must name the tensors forward returns, e.g. ["text", "text_mask"]');
  return c as TextEncoderCard;
}
