/**
 * Bearer tokens: read from a file or $DS_TOKEN (never argv, which every user of the machine can
 * read), compared in constant time on digests (equal lengths, so the length leaks nothing).
 */
import crypto from 'node:crypto';
import type http from 'node:http';
import { DiffusionSearchError } from '../errors';
import { readFlagFile } from '../io/flag-file';
import { HttpError } from './errors';

export const TOKEN_ENV = 'DS_TOKEN';
/** The cookie the page's sign-in (/?token=) sets: browsers send it with the page's own calls. */
export const TOKEN_COOKIE = 'ds_token';
const REALM = 'Bearer realm="diffusion-search"';

/** The token of --token-file, else $DS_TOKEN, else null; a file that cannot serve is ARGUMENT naming the fix. */
export function readToken(file: string | undefined, env: NodeJS.ProcessEnv = process.env): string | null {
  if (file === undefined) {
    const t = env[TOKEN_ENV]?.trim();
    return t ? t : null;
  }
  const text = readFlagFile('--token-file', file, 'give a readable file holding the token');
  const token = text.trim();
  if (!token)
    throw new DiffusionSearchError(`--token-file '${file}' is empty: write the token in it (one line)`, 'ARGUMENT');
  if (/\s/.test(token))
    throw new DiffusionSearchError(`--token-file '${file}' holds more than one word: write only the token`, 'ARGUMENT');
  return token;
}

const digest = (s: string) => crypto.createHash('sha256').update(s).digest();

/** The page's cookie, if the request has one. */
function cookieToken(header: string | undefined): string | null {
  const m = header ? new RegExp(`(?:^|;\\s*)${TOKEN_COOKIE}=([^;]*)`).exec(header) : null;
  if (!m) return null;
  try {
    return decodeURIComponent(m[1]);
  } catch {
    return m[1];
  }
}

/** Checks requests' `Authorization: Bearer <token>`. */
export class BearerAuth {
  private readonly want: Buffer;

  constructor(token: string) {
    this.want = digest(token);
  }

  /** Throws 401 unless the request carries the token (a bearer header, or the page's cookie). */
  check(req: http.IncomingMessage, missing = 'this server needs a bearer token: send "Authorization: Bearer <token>"') {
    const h = req.headers.authorization;
    const m = h ? /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(h) : null;
    const token = m?.[1] ?? cookieToken(req.headers.cookie);
    if (token === null) throw this.refuse(null, missing);
    this.checkToken(token, "the bearer token is not this server's: send the token of its --token-file or $DS_TOKEN");
  }

  /** Throws 401 with `message` unless `token` is this server's. */
  checkToken(token: string, message: string): void {
    if (!crypto.timingSafeEqual(digest(token), this.want)) throw this.refuse('invalid_token', message);
  }

  /** RFC 6750: no error code when no credentials came. */
  private refuse(error: string | null, message: string): HttpError {
    return new HttpError(401, 'UNAUTHORIZED', message, {
      'www-authenticate': error ? `${REALM}, error="${error}"` : REALM,
    });
  }
}
