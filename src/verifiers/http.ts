/**
 * A verifier served over HTTP (a grader on another process or machine). Each batch is POSTed as
 *   {"ids": [..], "shape": [n, ...], "dtype": "float32", "data": "<base64, little-endian>",
 *    "prompts": [..] | null, "classes": [..] | null}
 * and the answer is {"ids": [..], "scores": [..]}. Scores are matched to samples by id, never by
 * position, so a server that answers out of order cannot give a sample another's score. Requests
 * time out, 5xx answers, timeouts and connection errors are retried with exponential backoff, at
 * most `concurrency` requests of at most `maxRows` rows are in flight, and the search's
 * AbortSignal cancels them.
 */
import os from 'node:os';
import { DiffusionSearchError } from '../errors';
import type { NativeTensor } from '../native';
import type { ScoreExtras, Verifier } from './verifier';

export interface HttpVerifierOptions {
  /** Name in reports and errors (default: the URL). */
  name?: string;
  /** Per-request deadline in ms (default 60 000). */
  timeoutMs?: number;
  /** Retries after the first attempt, for 5xx, timeouts and connection errors (default 3). */
  retries?: number;
  /** Backoff before the first retry in ms; doubles each retry (default 250). */
  backoffMs?: number;
  /** Rows per request at most (default 64). */
  maxRows?: number;
  /** Requests in flight at most (default 4). */
  concurrency?: number;
  /** Extra request headers (e.g. authorization). */
  headers?: Record<string, string>;
}

interface Answer {
  ids: unknown;
  scores: unknown;
}

/** Failures worth another attempt: the server or the network, not the request. */
class Transient extends Error {}

export class HttpVerifier implements Verifier {
  readonly name: string;
  private readonly o: Required<Omit<HttpVerifierOptions, 'name' | 'headers'>> & { headers: Record<string, string> };
  private nextId = 0;

  constructor(
    readonly url: string,
    options: HttpVerifierOptions = {},
  ) {
    let u: URL;
    try {
      u = new URL(url);
    } catch (e) {
      throw new DiffusionSearchError(`verifier URL '${url}' is not a valid URL`, 'ARGUMENT', { cause: e });
    }
    if (u.protocol !== 'http:' && u.protocol !== 'https:')
      throw new DiffusionSearchError(`verifier URL '${url}' must be http: or https:`, 'ARGUMENT');
    this.name = options.name ?? url;
    const given = Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined));
    const o = {
      timeoutMs: 60_000,
      retries: 3,
      backoffMs: 250,
      maxRows: 64,
      concurrency: 4,
      ...given,
      headers: options.headers ?? {},
    };
    for (const [k, min] of [
      ['timeoutMs', 1],
      ['retries', 0],
      ['backoffMs', 0],
      ['maxRows', 1],
      ['concurrency', 1],
    ] as const)
      if (!Number.isInteger(o[k]) || o[k] < min)
        throw new DiffusionSearchError(`HttpVerifier: ${k} must be an integer >= ${min}, got ${o[k]}`, 'ARGUMENT');
    this.o = o;
  }

  async score(x0: NativeTensor, cond: ArrayLike<number>, extras: ScoreExtras = {}): Promise<Float32Array> {
    if (x0.dtype !== 'float32')
      throw new DiffusionSearchError(`verifier '${this.name}': samples must be float32, got ${x0.dtype}`, 'ARGUMENT');
    const n = x0.shape[0];
    const data = (await x0.toArray(extras.stream)) as Float32Array;
    const per = n > 0 ? data.length / n : 0;
    const out = new Float32Array(n);
    const chunks: number[] = [];
    for (let s = 0; s < n; s += this.o.maxRows) chunks.push(s);
    // A small pool of workers takes chunks in order: at most `concurrency` requests in flight.
    let next = 0;
    const worker = async () => {
      while (next < chunks.length) {
        const start = chunks[next++];
        const end = Math.min(n, start + this.o.maxRows);
        const scores = await this.request(
          x0.shape,
          data.subarray(start * per, end * per),
          Array.from(cond).slice(start, end),
          { ...extras, prompts: extras.prompts?.slice(start, end) },
        );
        out.set(scores, start);
      }
    };
    await Promise.all(Array.from({ length: Math.min(this.o.concurrency, chunks.length) }, worker));
    return out;
  }

  /** One batch, with retries; its scores in the batch's row order. */
  private async request(
    shape: number[],
    rows: Float32Array,
    classes: number[],
    extras: ScoreExtras,
  ): Promise<Float32Array> {
    const n = classes.length;
    const ids = Array.from({ length: n }, (_, i) => this.nextId + i);
    this.nextId += n;
    const body = JSON.stringify({
      ids,
      shape: [n, ...shape.slice(1)],
      dtype: 'float32',
      data: littleEndian(rows).toString('base64'),
      prompts: extras.prompts ?? null,
      // With prompts, the rows' condition ids are not classes.
      classes: extras.prompts ? null : classes,
    });
    let last: unknown;
    for (let attempt = 0; attempt <= this.o.retries; attempt++) {
      if (attempt > 0) await sleep(this.o.backoffMs * 2 ** (attempt - 1), extras.signal);
      this.checkAbort(extras.signal);
      try {
        return match(await this.post(body, extras.signal), ids, this.name);
      } catch (e) {
        if (!(e instanceof Transient)) throw e;
        last = e;
      }
    }
    throw new DiffusionSearchError(
      `verifier '${this.name}' failed ${this.o.retries + 1} times: ${(last as Error).message}`,
      'VERIFIER',
      { cause: last },
    );
  }

  private async post(body: string, signal?: AbortSignal): Promise<Answer> {
    const timeout = AbortSignal.timeout(this.o.timeoutMs);
    const both = signal ? AbortSignal.any([signal, timeout]) : timeout;
    let res: Response;
    try {
      res = await fetch(this.url, {
        method: 'POST',
        body,
        headers: { 'content-type': 'application/json', ...this.o.headers },
        signal: both,
      });
    } catch (e) {
      this.checkAbort(signal);
      if (timeout.aborted) throw new Transient(`no answer within ${this.o.timeoutMs} ms`);
      throw new Transient(`cannot reach ${this.url}: ${causeOf(e)}`);
    }
    let text: string;
    try {
      text = await res.text();
    } catch (e) {
      this.checkAbort(signal);
      throw new Transient(
        timeout.aborted ? `no answer within ${this.o.timeoutMs} ms` : `connection lost: ${causeOf(e)}`,
      );
    }
    if (res.status >= 500) throw new Transient(`HTTP ${res.status}: ${text.slice(0, 200)}`);
    if (res.status !== 200)
      throw new DiffusionSearchError(
        `verifier '${this.name}' answered HTTP ${res.status}: ${text.slice(0, 200)}`,
        'VERIFIER',
      );
    try {
      return JSON.parse(text) as Answer;
    } catch (e) {
      throw new DiffusionSearchError(
        `verifier '${this.name}' answered with invalid JSON: ${text.slice(0, 200)}`,
        'VERIFIER',
        { cause: e },
      );
    }
  }

  private checkAbort(signal?: AbortSignal): void {
    if (signal?.aborted)
      throw new DiffusionSearchError(`verifier '${this.name}': cancelled`, 'ABORTED', { cause: signal.reason });
  }
}

/** The scores of `ids`, in their order, from an answer whose ids may come in any order. */
function match(a: Answer, ids: number[], name: string): Float32Array {
  const bad = (why: string) => new DiffusionSearchError(`verifier '${name}' answered ${why}`, 'VERIFIER');
  if (typeof a !== 'object' || a === null || !Array.isArray(a.ids) || !Array.isArray(a.scores))
    throw bad('without "ids" and "scores" arrays');
  if (a.ids.length !== ids.length || a.scores.length !== ids.length)
    throw bad(`${a.ids.length} ids and ${a.scores.length} scores for ${ids.length} samples`);
  const scores = a.scores as unknown[];
  const at = new Map(ids.map((id, i) => [id, i]));
  const out = new Float32Array(ids.length).fill(NaN);
  const seen = new Set<number>();
  a.ids.forEach((id, k) => {
    const i = at.get(id as number);
    if (i === undefined || seen.has(i))
      throw bad(`id ${JSON.stringify(id)}, which is not one of the request's (or comes twice)`);
    seen.add(i);
    const s = scores[k];
    // JSON has no NaN: null stands for it, and checkScores reports it with the verifier's name.
    if (s !== null && typeof s !== 'number') throw bad(`a non-number score ${JSON.stringify(s)}`);
    out[i] = s === null ? NaN : s;
  });
  return out;
}

function littleEndian(rows: Float32Array): Buffer {
  const buf = Buffer.from(rows.buffer, rows.byteOffset, rows.byteLength);
  return os.endianness() === 'LE' ? buf : Buffer.from(buf).swap32();
}

function causeOf(e: unknown): string {
  const c = (e as { cause?: { code?: string; message?: string } }).cause;
  return c?.code ?? c?.message ?? (e as Error).message;
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}
