/**
 * The queue's wire protocol, for clients in any language (docs/queue.md#protocol): the job's
 * name, its data's wrapper and keys, the job options a worker applies when the job carries none,
 * and how two submissions are compared. The JSON Schemas in schemas/ are built from ./schemas.
 */
import { DiffusionSearchError } from '../errors';
import { checkJsonDepth } from '../io/json';
import { REQUEST_KEYS } from '../request/fields';
import { resolveRequest } from '../request/resolve';
import type { ResolvedRequest } from '../request/types';
import type { JobData } from './common';

/** Every job of the queue has this name (BullMQ's job name). */
export const JOB_NAME = 'generate';

/** The keys of a job's data. */
export const JOB_DATA_KEYS = ['options', 'submittedAt', 'expectedSeconds'] as const;

/**
 * BullMQ gives a job with no `attempts` one try, no backoff, and keeps it forever: a job added by
 * a raw client would then fail at its first transient error and pile up in Redis. The worker
 * applies these when the job's options carry none (submitters may set their own).
 */
export const JOB_DEFAULTS = {
  attempts: 3,
  backoff: { type: 'exponential', delay: 2000 },
  keepSeconds: 7 * 86400,
} as const;

/** The job's data checked: the wrapper's keys and types (the options are checked by the resolver). */
export function checkJobData(d: unknown): JobData {
  if (typeof d !== 'object' || d === null || Array.isArray(d))
    throw new DiffusionSearchError(
      `a job's data must be a JSON object {"options": {…}, "submittedAt": <ms>}, got ${JSON.stringify(d)}`,
      'ARGUMENT',
    );
  checkJsonDepth(d, "the job's data");
  const o = d as Record<string, unknown>;
  const keys = Object.keys(o);
  const flat = keys.filter((k) => (REQUEST_KEYS as string[]).includes(k));
  if (!('options' in o) && flat.length)
    throw new DiffusionSearchError(
      `a job's data wraps the generate options: {"options": {${flat.map((k) => `"${k}": …`).join(', ')}}, ` +
        '"submittedAt": <ms>}, not a flat object (see docs/queue.md#protocol)',
      'ARGUMENT',
    );
  const unknown = keys.filter((k) => !(JOB_DATA_KEYS as readonly string[]).includes(k));
  if (unknown.length)
    throw new DiffusionSearchError(
      `unknown key${unknown.length > 1 ? 's' : ''} ${unknown.map((k) => `'${k}'`).join(', ')} in a job's data; ` +
        `it takes ${JOB_DATA_KEYS.join(', ')}`,
      'ARGUMENT',
    );
  if (typeof o.options !== 'object' || o.options === null || Array.isArray(o.options))
    throw new DiffusionSearchError(
      `a job's "options" must be an object of generate options, got ${JSON.stringify(o.options)}`,
      'ARGUMENT',
    );
  if (o.submittedAt !== undefined && !(typeof o.submittedAt === 'number' && Number.isFinite(o.submittedAt)))
    throw new DiffusionSearchError(
      `a job's "submittedAt" must be milliseconds since 1970 (a number), got ${JSON.stringify(o.submittedAt)}`,
      'ARGUMENT',
    );
  if (
    o.expectedSeconds !== undefined &&
    !(typeof o.expectedSeconds === 'number' && o.expectedSeconds > 0 && Number.isFinite(o.expectedSeconds))
  )
    throw new DiffusionSearchError(
      `a job's "expectedSeconds" must be a positive number, got ${JSON.stringify(o.expectedSeconds)}`,
      'ARGUMENT',
    );
  return o as unknown as JobData;
}

/**
 * Whether two jobs ask for the same run: their options resolved (defaults filled, one spelling),
 * so `{"prompt": "a"}` and `{"prompt": ["a"], "n": 1}` are the same job whoever wrote them.
 */
export function sameRequest(a: unknown, b: unknown): boolean {
  let ra: ResolvedRequest, rb: ResolvedRequest;
  try {
    ra = resolveRequest(a);
    rb = resolveRequest(b);
  } catch {
    return false;
  }
  return canonical(ra) === canonical(rb);
}

/** JSON with object keys sorted (key order is not meaning). */
export function canonical(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`;
  if (typeof v === 'object' && v !== null) {
    const keys = Object.keys(v)
      .filter((k) => (v as Record<string, unknown>)[k] !== undefined)
      .sort();
    return `{${keys.map((k) => `${JSON.stringify(k)}:${canonical((v as Record<string, unknown>)[k])}`).join(',')}}`;
  }
  return JSON.stringify(v);
}
