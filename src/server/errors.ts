/**
 * Every status the server sends, mapped in this one place (docs/engine-and-serve.md lists them):
 * an HttpError carries its own; a library error's code picks one; anything else is 500.
 */
import type http from 'node:http';
import { DiffusionSearchError, type ErrorCode } from '../errors';

/** Seconds a client should wait before retrying a 429 or 503. */
export const RETRY_AFTER_S = 1;

/** An error with its HTTP status and headers (405's Allow, 401's WWW-Authenticate). */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

const BY_CODE: Partial<Record<ErrorCode, number>> = {
  BUSY: 429,
  // Cancelled by the server (shutdown deadline): nothing wrong with the request, retry elsewhere.
  ABORTED: 503,
  // A verifier failed (a remote one unreachable or answering badly, or non-finite scores): the
  // server's upstream, not the request.
  VERIFIER: 502,
  NATIVE: 500,
  NATIVE_LOAD: 500,
  STREAM_CLOSED: 503,
};

export interface ErrorAnswer {
  status: number;
  headers: Record<string, string>;
  error: { code: string; message: string };
}

export function errorAnswer(e: unknown): ErrorAnswer {
  if (e instanceof HttpError)
    return withRetry({ status: e.status, headers: e.headers, error: { code: e.code, message: e.message } });
  if (e instanceof DiffusionSearchError) {
    const shuttingDown = e.code === 'BUSY' && /shutting down/.test(e.message);
    const status = shuttingDown ? 503 : (BY_CODE[e.code] ?? 400);
    return withRetry({ status, headers: {}, error: { code: e.code, message: e.message } });
  }
  return { status: 500, headers: {}, error: { code: 'INTERNAL', message: e instanceof Error ? e.message : String(e) } };
}

function withRetry(a: ErrorAnswer): ErrorAnswer {
  if (a.status === 429 || a.status === 503) a.headers = { 'retry-after': String(RETRY_AFTER_S), ...a.headers };
  return a;
}

export function json(
  res: http.ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    ...headers,
    'content-type': 'application/json',
    'content-length': String(Buffer.byteLength(text)),
  });
  res.end(res.req.method === 'HEAD' ? undefined : text);
}

/** The error as JSON with its status; returns the status and code (for the request counter). */
export function sendError(res: http.ServerResponse, e: unknown): ErrorAnswer {
  const a = errorAnswer(e);
  json(res, a.status, { error: a.error }, a.headers);
  return a;
}
