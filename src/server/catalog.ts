/**
 * What a client needs to build a request form, from the same sources the API checks against:
 * GET /v1/schema (the request's fields and every algorithm's options, with CLI flags, defaults
 * and descriptions) and GET /v1/models/<name> (one denoiser's card: its classes or its text
 * encoder's vocabulary, shapes, value range, and a toy model's prior and tilted target for plotting).
 */
import type { Engine } from '../engine/engine';
import { resolveModel } from '../models/shipped';
import { DEFAULTS } from '../request/defaults';
import { REQUEST_FIELDS } from '../request/fields';
import { modelPath, type RequestPolicy } from '../request/policy';
import { flagOf, type FieldSpec } from '../request/schema';
import { algorithms } from '../search';

const withFlags = (specs: Record<string, FieldSpec>) =>
  Object.fromEntries(Object.entries(specs).map(([k, s]) => [k, { ...s, flag: flagOf(k, s) }]));

export function schemaJson() {
  return {
    fields: withFlags(REQUEST_FIELDS as Record<string, FieldSpec>),
    algorithms: Object.fromEntries(
      Object.entries(algorithms).map(([name, a]) => [name, { source: a.source, options: withFlags(a.options) }]),
    ),
    defaults: DEFAULTS,
  };
}

/** One denoiser's card as a form needs it (the model stays loaded in the engine's cache). */
export async function modelInfo(engine: Engine, policy: RequestPolicy, name: string) {
  const { file, shipped } = resolveModel(modelPath(policy, name, 'model'));
  const held = await engine.models.denoiser(file);
  try {
    const d = held.value;
    const card = d.card;
    const text = typeof card.text_encoder === 'string' && !!d.conditionSpecs;
    return {
      name,
      sample_shape: d.sampleShape,
      image_shape: d.decoder?.imageShape ?? d.sampleShape,
      value_range: (d.decoder ? d.decoder.spec.value_range : card.value_range) ?? null,
      classes: text ? null : (d.classes ?? null),
      vocab: text ? await vocabulary(engine, d, file) : null,
      verifiers: shipped?.verifiers ?? [],
      prior: card.prior ?? null,
      target: card.target ?? null,
      reward: card.reward ?? null,
    };
  } finally {
    held.release();
  }
}

async function vocabulary(engine: Engine, d: Parameters<Engine['models']['textEncoder']>[0], file: string) {
  const enc = await engine.models.textEncoder(d, file);
  try {
    return enc.value.card.vocab.filter((_w, i) => i !== enc.value.card.pad_id && i !== enc.value.card.unk_id);
  } finally {
    enc.release();
  }
}
