/**
 * Request bodies: JSON only (other content types are 415 naming what is accepted), at most
 * `max` bytes whether declared or chunked (413 as JSON: the rest of the body is read and dropped,
 * so the client gets the answer instead of a reset).
 */
import type http from 'node:http';
import { HttpError } from './errors';

export const ACCEPTED_TYPES = 'application/json (or no Content-Type)';

/** JSON types: application/json and application/*+json; a missing type is taken as JSON (curl -d sends form). */
function checkType(req: http.IncomingMessage): void {
  const raw = req.headers['content-type'];
  if (raw === undefined) return;
  const type = raw.split(';')[0].trim().toLowerCase();
  if (type === 'application/json' || /^application\/[\w.+-]+\+json$/.test(type)) return;
  throw new HttpError(
    415,
    'UNSUPPORTED_MEDIA_TYPE',
    `Content-Type '${raw}' is not accepted: send the options as JSON with Content-Type: ${ACCEPTED_TYPES}`,
  );
}

export function readJsonBody(req: http.IncomingMessage, max: number): Promise<unknown> {
  return new Promise((resolve, reject) => {
    // Refusals answer at once and never destroy the request: node:http reads and drops the rest
    // of the body after the answer, so the client reads a 413 rather than a connection reset.
    checkType(req);
    const declared = Number(req.headers['content-length'] ?? 0);
    if (declared > max) throw tooLarge(`request body of ${declared} bytes`, max);
    const parts: Buffer[] = [];
    let size = 0;
    const onData = (d: Buffer) => {
      size += d.length;
      if (size <= max) return void parts.push(d);
      req.off('data', onData);
      req.resume();
      reject(tooLarge('request body', max));
    };
    req.on('data', onData);
    req.on('end', () => {
      if (size > max) return;
      const text = Buffer.concat(parts).toString('utf8');
      try {
        resolve(text.trim() ? JSON.parse(text) : {});
      } catch (e) {
        reject(new HttpError(400, 'ARGUMENT', `the body is not JSON: ${(e as Error).message}`));
      }
    });
    req.on('error', reject);
  });
}

function tooLarge(what: string, max: number): HttpError {
  return new HttpError(
    413,
    'PAYLOAD_TOO_LARGE',
    `${what} is over the limit of ${max} bytes (--max-body): send a smaller body`,
  );
}
