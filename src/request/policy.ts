/**
 * What a service lets a request name (serve and the queue worker share it): models only shipped
 * or inside its models directory (TorchScript loading runs code, so a request never names an
 * arbitrary path: no absolute paths, no '..', no symlink out), remote verifier URLs only at the
 * allowed origins (the service would otherwise call anything it can reach for a request), and at
 * most so many NFE per request.
 */
import fs from 'node:fs';
import path from 'node:path';
import { DiffusionSearchError } from '../errors';
import { shipped } from '../models/shipped';
import { packageRoot } from '../native';
import type { ResolvedRequest } from './types';

export interface PolicyOptions {
  /** Directory whose .pt files requests may name (besides the shipped models). */
  modelsDir?: string;
  /**
   * Origins (scheme://host[:port]) whose http(s) verifier URLs requests may name; ['*'] or true:
   * any URL (default none).
   */
  allowRemoteVerifiers?: boolean | readonly string[];
  /** Most NFE one request may ask for: n × budget × prompts. */
  maxRequestNfe: number;
  /** Who enforces it, for messages ('server', 'worker'). */
  who: string;
}

export interface RequestPolicy {
  /** The models directory's real path, or null. */
  readonly modelsDir: string | null;
  /** Allowed origins, normalized; '*' alone: any. Empty: none. */
  readonly remoteOrigins: readonly string[];
  readonly maxRequestNfe: number;
  readonly who: string;
}

export function createPolicy(o: PolicyOptions): RequestPolicy {
  const a = o.allowRemoteVerifiers;
  const remoteOrigins = a === true ? ['*'] : !a ? [] : a.includes('*') ? ['*'] : a.map(originOf);
  return {
    modelsDir: o.modelsDir ? realDir(o.modelsDir) : null,
    remoteOrigins,
    maxRequestNfe: o.maxRequestNfe,
    who: o.who,
  };
}

function originOf(s: string): string {
  try {
    return new URL(s).origin;
  } catch (e) {
    throw new DiffusionSearchError(
      `allowed verifier origin '${s}' is not a URL: write scheme://host[:port]`,
      'ARGUMENT',
      { cause: e },
    );
  }
}

/** The URL, when its origin is allowed; ARGUMENT naming the allowed origins otherwise. */
function remoteVerifier(p: RequestPolicy, v: string): string {
  if (p.remoteOrigins.length === 0)
    throw new DiffusionSearchError(
      `remote verifiers are not allowed on this ${p.who} (${v}); start it with --allow-remote-verifiers <origins>`,
      'ARGUMENT',
    );
  if (p.remoteOrigins[0] === '*') return v;
  let origin: string;
  try {
    origin = new URL(v).origin;
  } catch (e) {
    throw new DiffusionSearchError(`verifier URL '${v}' is not a valid URL`, 'ARGUMENT', { cause: e });
  }
  if (!p.remoteOrigins.includes(origin))
    throw new DiffusionSearchError(
      `verifier origin ${origin} is not allowed on this ${p.who} (allowed: ${p.remoteOrigins.join(', ')}); name a ` +
        'verifier there, or add the origin to --allow-remote-verifiers',
      'ARGUMENT',
    );
  return v;
}

/**
 * The request with its models as shipped names or real paths inside the models directory; ARGUMENT /
 * BUDGET otherwise.
 */
export function applyPolicy(r: ResolvedRequest, p: RequestPolicy): ResolvedRequest {
  const nfe = r.searches * r.budget;
  if (nfe > p.maxRequestNfe)
    throw new DiffusionSearchError(
      `n × budget${(r.prompts?.length ?? 1) > 1 ? ' × prompts' : ''} = ${nfe} NFE is over this ${p.who}'s limit of ` +
        `${p.maxRequestNfe} per request`,
      'BUDGET',
    );
  const verifier = r.verifier.map((v) => {
    if (typeof v === 'string' && /^https?:\/\//.test(v)) return remoteVerifier(p, v);
    return v === 'self' ? 'self' : modelPath(p, v, 'verifier');
  });
  return { ...r, model: modelPath(p, r.model, 'model'), tpm: modelPath(p, r.tpm, 'tpm'), verifier };
}

/** A shipped name, or a file name inside the models directory (as an absolute real path). */
export function modelPath(p: RequestPolicy, v: unknown, what: string): string {
  if (typeof v !== 'string' || !v) throw new DiffusionSearchError(`${what} must be a model name`, 'ARGUMENT');
  if (shipped.some((m) => m.name === v)) return v;
  const refuse = (why: string) =>
    new DiffusionSearchError(
      `${what} '${v}' ${why}: name a shipped model ` +
        `(${shipped.map((m) => m.name).join(', ')})${p.modelsDir ? ' or a .pt file in the models directory' : ''}`,
      'ARGUMENT',
    );
  if (!p.modelsDir) throw refuse(`is not a shipped model (this ${p.who} has no models directory)`);
  if (path.isAbsolute(v) || v.split(/[\\/]/).includes('..') || v.includes('\0'))
    throw refuse('is not a plain name inside the models directory');
  const file = path.join(p.modelsDir, v);
  let real: string;
  try {
    real = fs.realpathSync(file);
  } catch {
    throw refuse('is not in the models directory');
  }
  if (!real.startsWith(p.modelsDir + path.sep) || !fs.statSync(real).isFile())
    throw refuse('leaves the models directory');
  return real;
}

/**
 * A result as a service's client sees it: the server's paths (the models directory, the shipped
 * models' files) replaced by model names in every string, so nothing of its file system leaks.
 */
export function withModelNames<T>(value: T, p: RequestPolicy): T {
  // Paths as strings only: no file-system call on every answer and every metrics scrape.
  const swaps: Array<[string, string]> = shipped.map((m) => [path.join(packageRoot, m.file), m.name]);
  if (p.modelsDir) swaps.push([p.modelsDir + path.sep, '']);
  const fix = (s: string) => swaps.reduce((t, [from, to]) => t.split(from).join(to), s);
  const walk = (v: unknown): unknown =>
    typeof v === 'string'
      ? fix(v)
      : Array.isArray(v)
        ? v.map(walk)
        : v && typeof v === 'object' && !ArrayBuffer.isView(v)
          ? Object.fromEntries(Object.entries(v).map(([k, x]) => [k, walk(x)]))
          : v;
  return walk(value) as T;
}

/** The models directory's real path; ARGUMENT naming it when it is missing or not a directory. */
function realDir(dir: string): string {
  try {
    const real = fs.realpathSync(dir);
    if (fs.statSync(real).isDirectory()) return real;
  } catch (e) {
    throw new DiffusionSearchError(`models directory '${dir}' cannot be read: ${(e as Error).message}`, 'ARGUMENT', {
      cause: e,
    });
  }
  throw new DiffusionSearchError(`models directory '${dir}' is not a directory`, 'ARGUMENT');
}
