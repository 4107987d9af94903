/**
 * The request's own fields, in the schema format of ./schema (the algorithms' options are in
 * src/search/*.options.ts).
 */
import type { ErrorCode } from '../errors';
import { algorithms, type AlgorithmName } from '../search';
import { DEFAULTS, LIMITS } from './defaults';
import type { FieldSpec } from './schema';
import { PRECISIONS } from '../precision';
import type { GenerateOptions } from './types';

const d = (v: unknown) => String(v);

export const REQUEST_FIELDS: { readonly [K in keyof Required<GenerateOptions>]: FieldSpec & { code?: ErrorCode } } = {
  model: { type: 'string', default: DEFAULTS.model, description: 'shipped model name or TorchScript file' },
  class: {
    type: 'string',
    orInteger: true,
    default: '0',
    description: "class to condition on: a name or index from the model's card",
  },
  prompt: { type: 'strings', description: 'prompt(s) of a text-conditioned model: n searches each' },
  negativePrompt: {
    type: 'string',
    description: 'the unconditional branch of guidance (text-conditioned models; needs guidance > 1)',
  },
  algorithm: {
    type: 'enum',
    values: Object.keys(algorithms) as AlgorithmName[],
    default: DEFAULTS.algorithm,
    description: 'the search algorithm',
  },
  budget: { type: 'int', min: 1, code: 'BUDGET', default: d(DEFAULTS.budget), description: 'NFE per sample' },
  n: { type: 'int', min: 1, default: d(DEFAULTS.n), description: 'samples (one search each) per prompt' },
  keep: {
    type: 'int',
    min: 1,
    max: LIMITS.keep,
    default: d(DEFAULTS.keep),
    description: 'keep the k best distinct samples of each search',
  },
  diversity: {
    type: 'number',
    min: 0,
    default: d(DEFAULTS.diversity),
    description: 'λ of the diverse top-k: keep by reward − λ·similarity (greedy MMR; 0: by reward alone)',
  },
  alpha: {
    type: 'number',
    min: 0,
    exclusiveMin: true,
    default: 'unset: search for the best',
    description: 'target temperature: particles and best-of-n sample p·exp(r/α) instead of the best',
  },
  seed: {
    type: 'int',
    min: 0,
    max: Number.MAX_SAFE_INTEGER,
    default: d(DEFAULTS.seed),
    description: 'the same seed gives the same samples',
  },
  verifier: {
    type: 'strings',
    objects: true,
    default: "the model's",
    description: 'verifier names, files or URLs (several: a rank ensemble)',
  },
  steps: { type: 'int', min: 1, default: d(DEFAULTS.steps), description: 'denoising steps of the schedule' },
  schedule: {
    type: 'enum',
    values: ['uniform', 'shifted', 'karras', 'adaptive'],
    default: DEFAULTS.schedule,
    description: 'the noise schedule',
  },
  tpm: { type: 'string', default: DEFAULTS.tpm, description: 'the Time Prediction Module of the adaptive schedule' },
  maxSteps: {
    type: 'int',
    min: 1,
    default: "the module's card",
    description: 'most steps per sample on the adaptive schedule',
  },
  tpmSolver: {
    type: 'enum',
    values: ['euler', 'ab2'],
    default: "the module's card",
    description: 'step rule of the adaptive schedule',
  },
  shift: { type: 'number', default: '3', description: 'time shift of the shifted schedule' },
  sampler: {
    type: 'enum',
    values: ['euler', 'heun', 'sde'],
    default: 'euler (sde for particles and beam)',
    description: 'the sampler',
  },
  eta: { type: 'number', default: '1', description: 'η of the sde sampler' },
  guidance: { type: 'number', default: d(DEFAULTS.guidance), description: 'classifier-free guidance weight' },
  device: { type: 'string', default: DEFAULTS.device, description: 'cpu or cuda[:N]' },
  precision: {
    type: 'enum',
    values: [...PRECISIONS],
    default: DEFAULTS.precision,
    description: "the denoiser's forwards: fp32, or bf16 (CPU autocast; CPUs with AVX512_BF16 or AMX)",
  },
  maxBatch: { type: 'int', min: 1, default: '32 on CPU, 128 on CUDA', description: 'largest batch through a model' },
  algorithmOptions: { type: 'object', default: '{}', description: "the algorithm's options" },
  eval: { type: 'boolean', default: 'on for fashion models', description: 'judge with the eval/ classifier' },
  preview: {
    type: 'boolean',
    default: d(DEFAULTS.preview),
    description: 'progress events carry the current best x̂0 (a small PNG over HTTP), a few a second, no extra NFE',
  },
};

export const REQUEST_KEYS = Object.keys(REQUEST_FIELDS) as Array<keyof GenerateOptions>;
