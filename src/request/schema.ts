/**
 * One format for every option a request takes (the request's own fields and each algorithm's,
 * exported beside the algorithm as `<algorithm>.options.ts`), one check and one message template.
 * Messages name the option as the user wrote it: a flag (`--elites`) for the CLI, a JSON key
 * (`algorithmOptions.elites`) for the library, HTTP and the queue.
 */
import { DiffusionSearchError } from '../errors';
import { didYouMean } from './suggest';

/** Where a request came in: CLI flags (strings, named --flag) or JSON / JS values (named by key). */
export type Entrance = 'cli' | 'json';

interface Base {
  /** One line for --help and the docs. */
  description: string;
  /** The default, as the docs say it ('0.2', 'fitted to the budget'). */
  default?: string;
  /** The CLI flag without its dashes (default: the key in kebab case). */
  flag?: string;
}
export interface IntSpec extends Base {
  type: 'int';
  min?: number;
  max?: number;
}
export interface NumberSpec extends Base {
  type: 'number';
  min?: number;
  max?: number;
  exclusiveMin?: boolean;
  exclusiveMax?: boolean;
}
export interface BooleanSpec extends Base {
  type: 'boolean';
}
export interface EnumSpec<T extends string = string> extends Base {
  type: 'enum';
  values: readonly T[];
}
export interface IntListSpec extends Base {
  type: 'int-list';
  min?: number;
  max?: number;
}
/** Request fields only: a string (or a non-negative integer too: a class index). */
export interface StringSpec extends Base {
  type: 'string';
  orInteger?: boolean;
}
/** Request fields only: a string or a list of them (library callers may put objects with `score` in it: verifiers). */
export interface StringsSpec extends Base {
  type: 'strings';
  objects?: boolean;
}
/** Request fields only: a JSON object (algorithmOptions, checked against the algorithm's schema). */
export interface ObjectSpec extends Base {
  type: 'object';
}
export type OptionSpec = IntSpec | NumberSpec | BooleanSpec | EnumSpec | IntListSpec;
export type FieldSpec = OptionSpec | StringSpec | StringsSpec | ObjectSpec;

type SpecFor<T> = [T] extends [number[]]
  ? IntListSpec
  : [T] extends [boolean]
    ? BooleanSpec
    : [T] extends [number]
      ? IntSpec | NumberSpec
      : [T] extends [string]
        ? EnumSpec<T>
        : never;

/** A schema for an options interface O: one spec per key of O, of a type that fits the key's. */
export type OptionSchema<O> = { readonly [K in keyof Required<O>]: SpecFor<Exclude<O[K], undefined>> };

const MAX_INT = 2 ** 31 - 1;

export const kebab = (key: string) => key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
export const flagOf = (key: string, spec: FieldSpec) => spec.flag ?? kebab(key);

/** How a message names an option: `--flag` at the CLI, its JSON path elsewhere. */
export function optionName(entrance: Entrance, key: string, spec: FieldSpec, prefix = ''): string {
  return entrance === 'cli' ? `--${flagOf(key, spec)}` : `${prefix}${key}`;
}

/** What the option accepts, in words ("an integer from 1 to 100"). */
export function accepts(spec: FieldSpec): string {
  switch (spec.type) {
    case 'string':
      return spec.orInteger ? 'a name or a non-negative integer index' : 'a non-empty string';
    case 'strings':
      return spec.objects ? 'a string, or a list of strings or verifier objects' : 'a string or a list of strings';
    case 'object':
      return 'a JSON object';
    case 'int':
      return `an integer from ${spec.min ?? 0} to ${spec.max ?? MAX_INT}`;
    case 'int-list':
      return `a list of integers from ${spec.min ?? 0} to ${spec.max ?? MAX_INT}`;
    case 'boolean':
      return 'true or false';
    case 'enum':
      return `one of ${spec.values.join(', ')}`;
    case 'number': {
      const lo = spec.min === undefined ? '' : `${spec.exclusiveMin ? '>' : '≥'} ${spec.min}`;
      const hi = spec.max === undefined ? '' : `${spec.exclusiveMax ? '<' : '≤'} ${spec.max}`;
      return `a number${lo || hi ? ` ${[lo, hi].filter(Boolean).join(' and ')}` : ''}`;
    }
  }
}

/** A value as the user wrote it: quoted for the CLI; JSON elsewhere, so a string "2" shows as a string. */
export function shown(entrance: Entrance, v: unknown): string {
  if (entrance === 'cli') return `'${Array.isArray(v) ? v.join(',') : String(v)}'`;
  const j = JSON.stringify(v) ?? String(v);
  return typeof v === 'string' && /^-?[\d.e+]+$/i.test(v) ? `${j} (a string)` : j;
}

function fail(name: string, spec: FieldSpec, v: unknown, entrance: Entrance, hint = ''): never {
  throw new DiffusionSearchError(`${name} must be ${accepts(spec)}, got ${shown(entrance, v)}${hint}`, 'ARGUMENT');
}

/** A CLI value (a string) or a JSON value as a number; undefined when it is not one. */
function toNumber(v: unknown, entrance: Entrance): number | undefined {
  if (typeof v === 'number') return v;
  if (entrance === 'cli' && typeof v === 'string' && v.trim() !== '') return Number(v);
  return undefined;
}

function inRange(n: number, spec: IntSpec | NumberSpec | IntListSpec): boolean {
  if (spec.type !== 'number') return Number.isInteger(n) && n >= (spec.min ?? 0) && n <= (spec.max ?? MAX_INT);
  if (!Number.isFinite(n)) return false;
  if (spec.min !== undefined && (spec.exclusiveMin ? n <= spec.min : n < spec.min)) return false;
  return !(spec.max !== undefined && (spec.exclusiveMax ? n >= spec.max : n > spec.max));
}

/** The one check: `v` as the spec's type, or ARGUMENT naming the option, what it takes, and a near value. */
export function checkValue(spec: FieldSpec, v: unknown, name: string, entrance: Entrance): unknown {
  switch (spec.type) {
    case 'string':
      if (typeof v === 'string' && v.length > 0) return v;
      if (spec.orInteger && typeof v === 'number' && Number.isInteger(v) && v >= 0) return v;
      return fail(name, spec, v, entrance);
    case 'strings': {
      const ok = (x: unknown) => (typeof x === 'string' && x.length > 0) || (!!spec.objects && isScorer(x));
      if (typeof v === 'string' && v.length > 0) return v;
      if (Array.isArray(v) && v.every(ok)) return v;
      return fail(name, spec, v, entrance);
    }
    case 'object':
      if (typeof v === 'object' && v !== null && !Array.isArray(v)) return v;
      return fail(name, spec, v, entrance);
    case 'int':
    case 'number': {
      const n = toNumber(v, entrance);
      if (n === undefined || !inRange(n, spec)) fail(name, spec, v, entrance);
      return n;
    }
    case 'int-list': {
      const parts = Array.isArray(v)
        ? v
        : entrance === 'cli' && typeof v === 'string'
          ? v.split(',').map((p) => p.trim())
          : null;
      if (!parts || parts.length === 0) fail(name, spec, v, entrance);
      return parts.map((p) => {
        const n = toNumber(p, entrance);
        if (n === undefined || !inRange(n, spec)) fail(name, spec, v, entrance);
        return n;
      });
    }
    case 'boolean':
      if (typeof v === 'boolean') return v;
      if (entrance === 'cli' && (v === 'true' || v === 'false')) return v === 'true';
      return fail(name, spec, v, entrance);
    case 'enum':
      if (typeof v === 'string' && spec.values.includes(v)) return v;
      return fail(name, spec, v, entrance, typeof v === 'string' ? didYouMean(v, spec.values) : '');
  }
}

/** A Verifier object a library caller passed (anything with a `score` function). */
export function isScorer(x: unknown): boolean {
  return typeof x === 'object' && x !== null && typeof (x as { score?: unknown }).score === 'function';
}
