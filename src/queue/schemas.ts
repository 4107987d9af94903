/**
 * JSON Schemas (draft 2020-12) of a job's data and of a finished job's result, for clients in any
 * language. Built from the request's field specs and each algorithm's option schema, so they list
 * what the resolver takes; schemas/queue-job.schema.json and schemas/queue-result.schema.json are
 * these, written out (test/queue-protocol.test.ts keeps them equal). After changing a field or an
 * algorithm's options, write them again: `npx tsc -p . && node -e "require('./lib/queue/schemas').writeSchemas()"`.
 */
import fs from 'node:fs';
import path from 'node:path';
import { DEFAULTS } from '../request/defaults';
import { REQUEST_FIELDS } from '../request/fields';
import type { FieldSpec } from '../request/schema';
import { algorithms } from '../search';

type Json = Record<string, unknown>;
const MAX_INT = 2 ** 31 - 1;
const DRAFT = 'https://json-schema.org/draft/2020-12/schema';

/** One field spec as JSON Schema (values as JSON carries them: numbers, not strings). */
export function fieldSchema(spec: FieldSpec): Json {
  const d = { description: spec.description + (spec.default !== undefined ? ` (default: ${spec.default})` : '') };
  const str = { type: 'string', minLength: 1 };
  switch (spec.type) {
    case 'string':
      return spec.orInteger ? { ...d, anyOf: [str, { type: 'integer', minimum: 0 }] } : { ...d, ...str };
    case 'strings':
      return { ...d, anyOf: [str, { type: 'array', items: str }] };
    case 'object':
      return { ...d, type: 'object' };
    case 'boolean':
      return { ...d, type: 'boolean' };
    case 'enum':
      return { ...d, enum: [...spec.values] };
    case 'int':
      return { ...d, type: 'integer', minimum: spec.min ?? 0, maximum: spec.max ?? MAX_INT };
    case 'int-list':
      return {
        ...d,
        type: 'array',
        minItems: 1,
        items: { type: 'integer', minimum: spec.min ?? 0, maximum: spec.max ?? MAX_INT },
      };
    case 'number': {
      const lo =
        spec.min === undefined ? {} : spec.exclusiveMin ? { exclusiveMinimum: spec.min } : { minimum: spec.min };
      const hi =
        spec.max === undefined ? {} : spec.exclusiveMax ? { exclusiveMaximum: spec.max } : { maximum: spec.max };
      return { ...d, type: 'number', ...lo, ...hi };
    }
  }
}

const objectOf = (specs: Record<string, FieldSpec>): Json => ({
  type: 'object',
  additionalProperties: false,
  properties: Object.fromEntries(Object.entries(specs).map(([k, s]) => [k, fieldSchema(s)])),
});

/** algorithmOptions follows the algorithm named (or the default one when none is). */
function algorithmRules(): Json[] {
  return Object.entries(algorithms).map(([name, a]) => {
    const named = { required: ['algorithm'], properties: { algorithm: { const: name } } };
    const when = name === DEFAULTS.algorithm ? { anyOf: [named, { not: { required: ['algorithm'] } }] } : named;
    // biome-ignore lint/suspicious/noThenProperty: JSON Schema's if/then, not a promise
    return { if: when, then: { properties: { algorithmOptions: objectOf(a.options as Record<string, FieldSpec>) } } };
  });
}

export function jobSchema(): Json {
  const options = { ...objectOf(REQUEST_FIELDS as Record<string, FieldSpec>), allOf: algorithmRules() };
  return {
    $schema: DRAFT,
    title: "diffusion-search queue job data (BullMQ job 'generate')",
    type: 'object',
    additionalProperties: false,
    required: ['options'],
    properties: {
      options: {
        description: 'generate options, as POST /v1/generate takes them (docs/library.md#request-options)',
        ...options,
      },
      submittedAt: { description: 'when it was submitted, ms since 1970 (for queued_ms)', type: 'number' },
      expectedSeconds: {
        description: "the job's expected length in seconds: sets its lock",
        type: 'number',
        exclusiveMinimum: 0,
      },
    },
  };
}

const floats = {
  description: 'base64 of the float32 values, little-endian, C order (dtype, shape)',
  type: ['string', 'null'],
  contentEncoding: 'base64',
};
const shape = { type: 'array', items: { type: 'integer', minimum: 0 } };

export function resultSchema(): Json {
  const props: Json = {
    v: { description: 'layout version', const: 2 },
    where: {
      description: "redis: the arrays are here; dir: in 'path' (samples.npy, latents.npy, report.json)",
      enum: ['redis', 'dir'],
    },
    path: { type: ['string', 'null'] },
    bytes: { description: 'bytes of samples and latents', type: 'integer', minimum: 0 },
    dtype: { const: 'float32' },
    shape: { ...shape, description: 'of samples: [n × keep, …the sample shape]' },
    samples: floats,
    rewards: { type: 'array', items: { type: 'number' } },
    prompts: { type: ['array', 'null'], items: { type: 'string' } },
    value_range: { type: ['array', 'null'], items: { type: 'number' }, minItems: 2, maxItems: 2 },
    latents: {
      anyOf: [{ type: 'null' }, { type: 'object', required: ['shape', 'data'], properties: { shape, data: floats } }],
    },
    complete: { type: 'boolean' },
    report: {
      description: 'the report, as report.json and POST /v1/generate carry it',
      type: 'object',
      required: ['nfe_used'],
      properties: { nfe_used: { type: 'integer', minimum: 0 } },
    },
  };
  return {
    $schema: DRAFT,
    title: "diffusion-search queue result (a completed job's return value)",
    type: 'object',
    required: Object.keys(props),
    properties: props,
  };
}

/** Writes both schemas into `dir` (the package's schemas/ by default). */
export function writeSchemas(dir = path.join(__dirname, '..', '..', 'schemas')): void {
  const write = (name: string, schema: Json) =>
    fs.writeFileSync(path.join(dir, name), `${JSON.stringify(schema, null, 2)}\n`);
  write('queue-job.schema.json', jobSchema());
  write('queue-result.schema.json', resultSchema());
}
