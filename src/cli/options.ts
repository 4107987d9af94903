/** Reading CLI options: a --config JSON file under the flags, with checks that name the flag. */
import fs from 'node:fs';
import { DiffusionSearchError } from '../errors';
import type { Command } from 'commander';
import { checkJsonDepth } from '../io/json';
import { didYouMean } from '../request/suggest';
import { PRECISIONS, type Precision } from '../precision';

export function readConfig(file: string | undefined): Record<string, unknown> {
  if (!file) return {};
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw new DiffusionSearchError(`cannot read --config '${file}': ${(e as Error).message}`, 'ARGUMENT', { cause: e });
  }
  try {
    const c = JSON.parse(text) as unknown;
    if (typeof c !== 'object' || c === null || Array.isArray(c)) throw new Error('not a JSON object');
    checkJsonDepth(c, `--config '${file}'`);
    return c as Record<string, unknown>;
  } catch (e) {
    if (e instanceof DiffusionSearchError) throw e;
    throw new DiffusionSearchError(`--config '${file}' is not a JSON object: ${(e as Error).message}`, 'ARGUMENT', {
      cause: e,
    });
  }
}

/**
 * An integer flag in [min, max]; the default max (2^31 − 1) keeps counts such as --n 1e20 from
 * reaching array sizes.
 */
export function int(flag: string, v: unknown, min = 0, max = 2 ** 31 - 1): number | undefined {
  if (v === undefined) return undefined;
  const n = typeof v === 'number' ? v : Number(v);
  if (!Number.isInteger(n) || n < min || n > max)
    throw new DiffusionSearchError(`--${flag} must be an integer from ${min} to ${max}, got '${v}'`, 'ARGUMENT');
  return n;
}

/** --precision of an engine (serve, worker): fp32 or bf16. */
export function precisionFlag(v: unknown): Precision | undefined {
  if (v === undefined) return undefined;
  if ((PRECISIONS as readonly unknown[]).includes(v)) return v as Precision;
  throw new DiffusionSearchError(`--precision must be one of ${PRECISIONS.join(', ')}, got '${v}'`, 'ARGUMENT');
}

export function num(flag: string, v: unknown): number | undefined {
  if (v === undefined) return undefined;
  const n = typeof v === 'number' ? v : Number(v);
  if (!Number.isFinite(n)) throw new DiffusionSearchError(`--${flag} must be a number, got '${v}'`, 'ARGUMENT');
  return n;
}

export function intList(flag: string, v: unknown): number[] | undefined {
  if (v === undefined) return undefined;
  const parts = Array.isArray(v) ? v : String(v).split(',');
  return parts.map((p) => int(flag, typeof p === 'string' ? p.trim() : p)!);
}

export function oneOf<T extends string>(flag: string, v: unknown, allowed: readonly T[]): T | undefined {
  if (v === undefined) return undefined;
  if (!allowed.includes(v as T))
    throw new DiffusionSearchError(`--${flag} must be one of ${allowed.join(', ')}, got '${v}'`, 'ARGUMENT');
  return v as T;
}

/** A --config key that is no option of `cmd` (nor algorithmOptions) is ARGUMENT naming the nearest one. */
export function checkConfigKeys(file: Record<string, unknown>, cmd: Command, name: string): void {
  const known = [...cmd.options.map((o) => o.attributeName()), 'algorithmOptions'];
  const unknown = Object.keys(file).filter((k) => !known.includes(k));
  if (unknown.length)
    throw new DiffusionSearchError(
      `--config '${name}': unknown key ${unknown.map((k) => `'${k}'${didYouMean(k, known)}`).join(', ')}`,
      'ARGUMENT',
    );
}
