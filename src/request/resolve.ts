/**
 * resolveRequest: the one check of a request, whichever entrance it came through. Top-level keys
 * and every algorithm option are checked against their schemas (./fields, src/search/*.options.ts);
 * an unknown key is ARGUMENT naming the nearest valid one; defaults come from ./defaults; a
 * serving policy (./policy) restricts models, verifiers and NFE.
 */
import { DiffusionSearchError } from '../errors';
import { algorithms, type AlgorithmName } from '../search';
import { alphaRefusal } from '../search/tilt';
import type { Verifier } from '../verifiers/verifier';
import { DEFAULTS, LIMITS } from './defaults';
import { REQUEST_FIELDS, REQUEST_KEYS } from './fields';
import { applyPolicy, type RequestPolicy } from './policy';
import { checkValue, flagOf, optionName, type Entrance, type OptionSpec } from './schema';
import { didYouMean } from './suggest';
import type { GenerateOptions, ResolvedRequest } from './types';

export interface ResolveOptions {
  /** How messages name options: 'cli' (flags) or 'json' (keys; the default). */
  entrance?: Entrance;
}

/** The request checked, defaults filled; ARGUMENT (BUDGET for the budget) naming the option and the fix otherwise. */
export function resolveRequest(
  options: unknown,
  policy?: RequestPolicy | null,
  ro: ResolveOptions = {},
): ResolvedRequest {
  const entrance = ro.entrance ?? 'json';
  if (typeof options !== 'object' || options === null || Array.isArray(options))
    throw new DiffusionSearchError(
      `a request must be an object of generate options, got ${JSON.stringify(options)}`,
      'ARGUMENT',
    );
  const o = checkFields(options as Record<string, unknown>, entrance);
  const algorithm = o.algorithm ?? (DEFAULTS.algorithm as AlgorithmName);
  const prompts = o.prompt === undefined ? undefined : Array.isArray(o.prompt) ? o.prompt : [o.prompt];
  const n = o.n ?? DEFAULTS.n;
  const searches = (prompts?.length ?? 1) * n;
  if (searches > LIMITS.searches)
    throw new DiffusionSearchError(
      `${name(entrance, 'n')}${prompts ? ' × prompts' : ''} = ${searches} searches is over the limit of ` +
        `${LIMITS.searches} per request`,
      'ARGUMENT',
    );
  const guidance = o.guidance ?? DEFAULTS.guidance;
  // Guidance 1 never evaluates the unconditional branch: a negative prompt there would change nothing.
  if (o.negativePrompt !== undefined && guidance === 1)
    throw new DiffusionSearchError(
      `a negative prompt only acts under classifier-free guidance: set ${name(entrance, 'guidance')} above 1 (e.g. ` +
        '3), or drop the negative prompt',
      'ARGUMENT',
    );
  const resolved: ResolvedRequest = {
    ...o,
    model: o.model ?? DEFAULTS.model,
    prompts,
    algorithm,
    algorithmOptions: checkAlgorithmOptions(algorithm, o.algorithmOptions ?? {}, entrance),
    budget: o.budget ?? DEFAULTS.budget,
    n,
    keep: o.keep ?? DEFAULTS.keep,
    diversity: o.diversity ?? DEFAULTS.diversity,
    seed: o.seed ?? DEFAULTS.seed,
    verifier:
      o.verifier === undefined ? [] : Array.isArray(o.verifier) ? o.verifier : [o.verifier as string | Verifier],
    steps: o.steps ?? DEFAULTS.steps,
    schedule: o.schedule ?? (DEFAULTS.schedule as 'uniform'),
    tpm: o.tpm ?? DEFAULTS.tpm,
    sampler: o.sampler ?? (algorithm === 'particles' || algorithm === 'beam' ? 'sde' : 'euler'),
    guidance,
    searches,
  };
  delete (resolved as { prompt?: unknown }).prompt;
  checkTarget(resolved, entrance);
  return policy ? applyPolicy(resolved, policy) : resolved;
}

const name = (entrance: Entrance, key: keyof GenerateOptions) => optionName(entrance, key, REQUEST_FIELDS[key]);

/** alpha only where the algorithm samples the tilted target, not beside particles' lambda (λ = 1/α) or diversity. */
function checkTarget(r: ResolvedRequest, entrance: Entrance): void {
  if (r.alpha === undefined) return;
  const why = alphaRefusal(r.algorithm);
  if (why) throw new DiffusionSearchError(`${name(entrance, 'alpha')}: ${why}`, 'ARGUMENT');
  if (r.algorithmOptions.lambda !== undefined) {
    const lambda = entrance === 'cli' ? '--lambda' : 'algorithmOptions.lambda';
    throw new DiffusionSearchError(
      `give ${name(entrance, 'alpha')} or ${lambda}, not both: with α particles use λ = 1/α`,
      'ARGUMENT',
    );
  }
  if (r.diversity > 0)
    throw new DiffusionSearchError(
      `${name(entrance, 'alpha')} and ${name(entrance, 'diversity')} do not go together: α draws samples from ` +
        'the tilted target, diversity picks them; drop one',
      'ARGUMENT',
    );
}

/** Known keys only, each value of its field's type (undefined values count as absent). */
function checkFields(o: Record<string, unknown>, entrance: Entrance): GenerateOptions {
  const unknown = Object.keys(o).filter((k) => !(REQUEST_KEYS as string[]).includes(k));
  if (unknown.length) {
    const named = unknown.map(
      (k) => `${entrance === 'cli' ? `--config key '${k}'` : `'${k}'`}${didYouMean(k, REQUEST_KEYS)}`,
    );
    throw new DiffusionSearchError(`unknown option ${named.join(', ')}; known: ${REQUEST_KEYS.join(', ')}`, 'ARGUMENT');
  }
  const out: Record<string, unknown> = {};
  for (const key of REQUEST_KEYS) {
    const v = o[key];
    if (v === undefined) continue;
    if (key === 'algorithm' && entrance === 'json' && !(typeof v === 'string' && v in algorithms)) {
      const names = Object.keys(algorithms);
      throw new DiffusionSearchError(
        `unknown algorithm ${JSON.stringify(v)}${typeof v === 'string' ? didYouMean(v, names) : ''}: use one of ` +
          `${names.join(', ')}`,
        'ARGUMENT',
      );
    }
    const spec = REQUEST_FIELDS[key];
    try {
      out[key] = checkValue(spec, v, name(entrance, key), entrance);
    } catch (e) {
      if (spec.code && e instanceof DiffusionSearchError) throw new DiffusionSearchError(e.message, spec.code);
      throw e;
    }
  }
  return out as GenerateOptions;
}

/** Names the algorithms (other than `algorithm`) that take `key`. */
function ownersOf(key: string, algorithm: string): string[] {
  return Object.entries(algorithms)
    .filter(([a, def]) => a !== algorithm && key in def.options)
    .map(([a]) => a);
}

/**
 * The algorithm's options checked against its schema. A key of another algorithm, or a typo, is
 * ARGUMENT: a search silently run without an option the user set is a different search.
 */
export function checkAlgorithmOptions(
  algorithm: AlgorithmName,
  given: Record<string, unknown>,
  entrance: Entrance,
): Record<string, unknown> {
  const schema: Record<string, OptionSpec> = algorithms[algorithm].options;
  const keys = Object.keys(schema);
  const specOf = (k: string) =>
    schema[k] ??
    Object.values(algorithms)
      .map((a) => (a.options as Record<string, OptionSpec>)[k])
      .find(Boolean);
  const label = (k: string) => {
    const spec = specOf(k);
    return entrance !== 'cli' ? `algorithmOptions.${k}` : spec ? `--${flagOf(k, spec)}` : `'${k}'`;
  };
  const takes = keys.length ? `${algorithm} takes ${keys.map(label).join(', ')}` : `${algorithm} takes none`;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(given)) {
    if (v === undefined) continue;
    if (!(k in schema)) {
      const owners = ownersOf(k, algorithm);
      const why = owners.length
        ? ` is an option of ${owners.join(' and ')}, not of ${algorithm}`
        : ` is not an option of ${algorithm}${didYouMean(k, keys, (s) => label(s))}`;
      throw new DiffusionSearchError(`${label(k)}${why}; ${takes}`, 'ARGUMENT');
    }
    out[k] = checkValue(schema[k], v, label(k), entrance);
  }
  return out;
}

/** A resolved request as generate options again (what a service hands its engine after applying its policy). */
export function asOptions(r: ResolvedRequest): GenerateOptions {
  const { prompts, searches: _s, ...rest } = r;
  return { ...rest, prompt: prompts };
}
