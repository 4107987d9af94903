/**
 * Remote verifiers (http(s) graders) from the CLI: the HttpVerifier settings as flags shared by
 * `generate`, `serve` and `worker`, and the origins a service lets requests call. Headers come
 * from a file or the environment, never argv (argv is visible to every user of the machine).
 */
import type { Command } from 'commander';
import { DiffusionSearchError } from '../errors';
import { readFlagFile } from '../io/flag-file';
import type { HttpVerifierOptions } from '../verifiers/http';

/** The environment variable that may hold the headers (JSON object or `Name: value` lines). */
export const HEADERS_ENV = 'DS_VERIFIER_HEADERS';

/** Registers the settings' flags on `cmd`; read them back with remoteVerifierOptions. */
export function addRemoteVerifierFlags(cmd: Command): Command {
  return cmd
    .option('--verifier-timeout <s>', 'remote verifier: seconds one request may take before it is retried (default 60)')
    .option('--verifier-retries <n>', 'remote verifier: retries after 5xx, timeouts and connection errors (default 3)')
    .option(
      '--verifier-backoff <s>',
      'remote verifier: seconds before the first retry, doubling each retry (default 0.25)',
    )
    .option('--verifier-rows <n>', 'remote verifier: most rows per request (default: --max-batch)')
    .option('--verifier-concurrency <n>', 'remote verifier: most requests in flight per batch (default 4)')
    .option(
      '--verifier-headers-file <file>',
      'remote verifier: request headers, a JSON object or "Name: value" lines ' +
        `(or in $${HEADERS_ENV}); never on the command line`,
    );
}

/** The parsed flags (commander's camelCase keys) as HttpVerifier options; undefined keys keep its defaults. */
export function remoteVerifierOptions(
  f: Record<string, unknown>,
  env: NodeJS.ProcessEnv = process.env,
): HttpVerifierOptions {
  return {
    timeoutMs: millis('verifier-timeout', f.verifierTimeout, 1),
    retries: count('verifier-retries', f.verifierRetries, 0),
    backoffMs: millis('verifier-backoff', f.verifierBackoff, 0),
    maxRows: count('verifier-rows', f.verifierRows, 1),
    concurrency: count('verifier-concurrency', f.verifierConcurrency, 1),
    headers: readHeaders(f.verifierHeadersFile as string | undefined, env),
  };
}

function millis(flag: string, v: unknown, min: number): number | undefined {
  if (v === undefined) return undefined;
  const s = Number(v);
  const ms = Math.round(s * 1000);
  if (!Number.isFinite(s) || ms < min || ms > 2 ** 31 - 1)
    throw new DiffusionSearchError(
      `--${flag} must be seconds (e.g. 10 or 0.5), at least ${min / 1000}, got '${v}'`,
      'ARGUMENT',
    );
  return ms;
}

function count(flag: string, v: unknown, min: number): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < min || n > 2 ** 31 - 1)
    throw new DiffusionSearchError(`--${flag} must be an integer of at least ${min}, got '${v}'`, 'ARGUMENT');
  return n;
}

/** Headers from --verifier-headers-file, else $DS_VERIFIER_HEADERS, else none. */
export function readHeaders(
  file: string | undefined,
  env: NodeJS.ProcessEnv = process.env,
): Record<string, string> | undefined {
  if (file !== undefined) {
    const text = readFlagFile('--verifier-headers-file', file, 'give a readable file');
    return parseHeaders(text, `--verifier-headers-file '${file}'`);
  }
  const text = env[HEADERS_ENV];
  return text?.trim() ? parseHeaders(text, `$${HEADERS_ENV}`) : undefined;
}

/** A JSON object of strings, or `Name: value` lines (blank lines and # comments skipped). */
export function parseHeaders(text: string, where: string): Record<string, string> {
  const bad = (why: string) =>
    new DiffusionSearchError(
      `${where}: ${why}; write a JSON object {"Name": "value"} or "Name: value" lines`,
      'ARGUMENT',
    );
  const out: Record<string, string> = {};
  if (text.trim().startsWith('{')) {
    let o: unknown;
    try {
      o = JSON.parse(text);
    } catch (e) {
      throw bad(`invalid JSON (${(e as Error).message})`);
    }
    for (const [k, v] of Object.entries(o as Record<string, unknown>)) {
      if (typeof v !== 'string') throw bad(`header '${k}' is not a string`);
      out[checkName(k, bad)] = checkValue(k, v, bad);
    }
    return out;
  }
  for (const line of text.split(/\r?\n/)) {
    if (!line.trim() || line.trim().startsWith('#')) continue;
    const i = line.indexOf(':');
    if (i <= 0) throw bad(`line '${line.slice(0, 40)}' has no "Name:"`);
    const k = line.slice(0, i).trim();
    out[checkName(k, bad)] = checkValue(k, line.slice(i + 1).trim(), bad);
  }
  return out;
}

function checkName(k: string, bad: (why: string) => Error): string {
  if (!/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(k)) throw bad(`'${k.slice(0, 40)}' is not a header name`);
  return k;
}

function checkValue(k: string, v: string, bad: (why: string) => Error): string {
  // A line break in a value would let the file inject another header or a body.
  if (/[\r\n\0]/.test(v)) throw bad(`header '${k}' has a line break or NUL in its value`);
  return v;
}

/**
 * `--allow-remote-verifiers <origins>`: comma-separated origins (scheme://host[:port]) or '*'.
 * A bare flag is refused: read as "any URL", it would let a request make the service call
 * anything it can reach; '*' says so on purpose.
 */
export function parseAllowedOrigins(v: unknown, flag = '--allow-remote-verifiers'): string[] | undefined {
  if (v === undefined || v === false) return undefined;
  const need =
    `${flag} needs the origins requests may call, comma-separated (e.g. https://grader.internal:8443), ` +
    "or '*' for any URL this service can reach";
  if (v === true || !String(v).trim()) throw new DiffusionSearchError(need, 'ARGUMENT');
  const parts = String(v)
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  if (parts.includes('*')) {
    if (parts.length > 1) throw new DiffusionSearchError(`${flag}: '*' allows every origin; give it alone`, 'ARGUMENT');
    return ['*'];
  }
  return parts.map((p) => normalizeOrigin(p, flag));
}

/** 'https://Grader:443/' → 'https://grader'; refused when it is more than an origin. */
export function normalizeOrigin(p: string, flag: string): string {
  let u: URL;
  try {
    u = new URL(p);
  } catch {
    throw new DiffusionSearchError(
      `${flag}: '${p}' is not an origin; write scheme://host[:port], e.g. https://grader.internal:8443`,
      'ARGUMENT',
    );
  }
  if (
    (u.protocol !== 'http:' && u.protocol !== 'https:') ||
    u.username ||
    u.password ||
    u.search ||
    u.hash ||
    u.pathname !== '/'
  )
    throw new DiffusionSearchError(
      `${flag}: '${p}' is not an http(s) origin; ` +
        'write scheme://host[:port] with no path, e.g. https://grader.internal:8443',
      'ARGUMENT',
    );
  return u.origin;
}

/** Registers `--allow-remote-verifiers [origins]` (parseAllowedOrigins refuses a bare flag, naming the fix). */
export function addAllowRemoteFlag(cmd: Command, what = 'requests'): Command {
  return cmd.option(
    '--allow-remote-verifiers [origins]',
    `let ${what} name http(s) verifier URLs at these origins, comma-separated (e.g. https://grader:8443); '*': any`,
  );
}
