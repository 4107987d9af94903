/**
 * `diffusion-search serve`: HTTP over an engine, on node:http — no framework: five routes, SSE,
 * a body limit and client-abort handling are a few lines each, the package keeps its small
 * dependency list, and nothing stands between a closed socket and the request's AbortSignal.
 *
 *   POST /v1/generate          JSON body = generate options → { report, shape, samples (base64
 *                              float32 LE), rewards, latents?, prompts, complete }; with
 *                              `Accept: image/png` the grid instead
 *   POST /v1/generate/stream   same body; Server-Sent Events: `progress` …, then `result` or `error`
 *   GET  /v1/generate/stream   the options as query parameters (?model=gmm2d&budget=100&n=2…), for EventSource
 *   GET  /v1/models            models a request may name, and those loaded
 *   GET  /healthz              200 {"ok":true} (503 while shutting down)
 *   GET  /metrics              Prometheus text
 *
 * Requests are checked by src/request's resolver under the serving policy (src/request/policy):
 * models shipped or inside the models directory, remote verifier URLs only when allowed, an NFE cap.
 * Errors: { error: { code, message } } with 400 (bad input), 413 (body too large), 429 (BUSY),
 * 503 (shutting down), 500 (anything else).
 */
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { DiffusionSearchError, type ErrorCode } from '../errors';
import type { Engine } from '../engine/engine';
import type { GenerateOptions, GenerateResult } from '../request/types';
import { createPolicy, modelPath, type RequestPolicy } from '../request/policy';
import { asOptions, resolveRequest } from '../request/resolve';
import { gridPng } from '../io/png';
import { checkJsonDepth } from '../io/json';
import { shipped } from '../models/shipped';

export interface ServerOptions {
  /** Directory whose .pt files requests may name (besides the shipped models). */
  modelsDir?: string;
  /** Largest request body in bytes (default 1 MiB). */
  maxBodyBytes?: number;
  /** Most NFE one request may ask for: n × budget × prompts (default 200,000). */
  maxRequestNfe?: number;
  /** Let requests name http(s) verifier URLs (default false: the server would call any URL). */
  allowRemoteVerifiers?: boolean | readonly string[];
}

const STATUS: Partial<Record<ErrorCode, number>> = { BUSY: 429, NATIVE: 500, STREAM_CLOSED: 503, NATIVE_LOAD: 500 };

class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

export class DiffusionServer {
  readonly http: http.Server;
  private readonly inFlight = new Set<AbortController>();
  private draining = false;
  readonly policy: RequestPolicy;
  private readonly maxBody: number;

  constructor(
    readonly engine: Engine,
    options: ServerOptions = {},
  ) {
    this.policy = createPolicy({ modelsDir: options.modelsDir, allowRemoteVerifiers: options.allowRemoteVerifiers, maxRequestNfe: options.maxRequestNfe ?? 200_000, who: 'server' });
    this.maxBody = options.maxBodyBytes ?? 1024 * 1024;
    this.http = http.createServer((req, res) => void this.handle(req, res));
    this.http.keepAliveTimeout = 5_000;
  }

  listen(port = 8080, host = '127.0.0.1'): Promise<AddressInfo> {
    return new Promise((resolve, reject) => {
      this.http.once('error', reject);
      this.http.listen(port, host, () => resolve(this.http.address() as AddressInfo));
    });
  }

  /**
   * Graceful shutdown: stop accepting, let requests in flight finish for up to `deadlineMs`,
   * cancel the rest (their clients get what finished, or an ABORTED error), free the engine.
   */
  async close(deadlineMs = 30_000): Promise<void> {
    this.draining = true;
    const closed = new Promise<void>((r) => this.http.close(() => r()));
    this.http.closeIdleConnections?.();
    await this.engine.close({ deadlineMs });
    this.inFlight.forEach((c) => c.abort());
    const t = Date.now();
    while (this.inFlight.size && Date.now() - t < 5_000) await new Promise((r) => setTimeout(r, 10));
    this.http.closeAllConnections?.();
    await closed;
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://localhost');
    try {
      if (req.method === 'GET' && url.pathname === '/healthz') {
        return json(res, this.draining ? 503 : 200, { ok: !this.draining, draining: this.draining, ...pick(this.engine.metrics(), ['activeRequests', 'queueDepth']) });
      }
      if (req.method === 'GET' && url.pathname === '/metrics') {
        res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' });
        return void res.end(this.engine.prometheus());
      }
      if (req.method === 'GET' && url.pathname === '/v1/models') return json(res, 200, this.models());
      if (url.pathname === '/v1/generate' && req.method === 'POST') return await this.generate(req, res, await this.body(req), false);
      if (url.pathname === '/v1/generate/stream' && req.method === 'POST') return await this.generate(req, res, await this.body(req), true);
      if (url.pathname === '/v1/generate/stream' && req.method === 'GET') return await this.generate(req, res, fromQuery(url.searchParams), true);
      throw new HttpError(404, 'NOT_FOUND', `no route ${req.method} ${url.pathname}: use POST /v1/generate, POST|GET /v1/generate/stream, GET /v1/models, /healthz, /metrics`);
    } catch (e) {
      if (!res.headersSent) return errorResponse(res, e);
      res.end();
    }
  }

  private models() {
    const dir = this.policy.modelsDir ? fs.readdirSync(this.policy.modelsDir).filter((f) => f.endsWith('.pt')) : [];
    return {
      shipped: shipped.map((m) => ({ name: m.name, kind: m.kind })),
      models_dir: dir,
      loaded: this.engine.models.list(),
    };
  }

  private body(req: http.IncomingMessage): Promise<unknown> {
    return new Promise((resolve, reject) => {
      const declared = Number(req.headers['content-length'] ?? 0);
      if (declared > this.maxBody) return reject(new HttpError(413, 'ARGUMENT', `request body of ${declared} bytes is over the limit of ${this.maxBody}`));
      const parts: Buffer[] = [];
      let size = 0;
      req.on('data', (d: Buffer) => {
        size += d.length;
        if (size > this.maxBody) {
          reject(new HttpError(413, 'ARGUMENT', `request body is over the limit of ${this.maxBody} bytes`));
          req.destroy();
        } else parts.push(d);
      });
      req.on('end', () => {
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

  /** The request's options, checked by the resolver under this server's policy. */
  requestOptions(body: unknown): GenerateOptions {
    if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new HttpError(400, 'ARGUMENT', 'the body must be a JSON object of generate options');
    checkJsonDepth(body, 'the body');
    return asOptions(resolveRequest(body, this.policy));
  }

  /** A shipped name, or a file name inside the models directory (as an absolute real path). */
  modelPath(v: unknown, what: string): string {
    return modelPath(this.policy, v, what);
  }

  private async generate(req: http.IncomingMessage, res: http.ServerResponse, body: unknown, sse: boolean): Promise<void> {
    if (this.draining) throw new HttpError(503, 'BUSY', 'the server is shutting down');
    const options = this.requestOptions(body);
    const ctl = new AbortController();
    // The client went away before the answer: stop its searches (within a step).
    const onClose = () => !res.writableFinished && ctl.abort(new Error('client closed the connection'));
    res.on('close', onClose);
    this.inFlight.add(ctl);
    let lastProgress = 0;
    try {
      if (sse) {
        res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive' });
        res.flushHeaders();
      }
      let result: GenerateResult;
      try {
        result = await this.engine.generate(options, {
          signal: ctl.signal,
          onProgress: sse
            ? (p) => {
                const now = performance.now();
                if (now - lastProgress < 50) return;
                lastProgress = now;
                event(res, 'progress', { sample: p.sample, samples: p.samples, nfe: p.totalNfe, budget: p.totalBudget, best: p.best, round: p.round });
              }
            : undefined,
        });
      } catch (e) {
        if (!sse) throw e;
        event(res, 'error', errorBody(e).error);
        return void res.end();
      }
      if (ctl.signal.aborted && res.destroyed) return;
      if (sse) {
        event(res, 'result', payload(result));
        return void res.end();
      }
      if (String(req.headers.accept ?? '').includes('image/png')) {
        res.writeHead(200, { 'content-type': 'image/png', 'x-complete': String(result.complete) });
        return void res.end(gridPng(result.samples, result.shape, result.valueRange ?? [-1, 1], 4));
      }
      json(res, 200, payload(result));
    } finally {
      res.off('close', onClose);
      this.inFlight.delete(ctl);
    }
  }
}

function payload(r: GenerateResult) {
  const b64 = (a: Float32Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength).toString('base64');
  return {
    complete: r.complete,
    shape: r.shape,
    dtype: 'float32',
    samples: b64(r.samples),
    rewards: r.rewards,
    prompts: r.prompts,
    value_range: r.valueRange,
    latents: r.latents ? { shape: r.latents.shape, data: b64(r.latents.data) } : null,
    report: r.report,
  };
}

function event(res: http.ServerResponse, name: string, data: unknown): void {
  if (!res.destroyed) res.write(`event: ${name}\ndata: ${JSON.stringify(data)}\n\n`);
}

function json(res: http.ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

function errorBody(e: unknown): { status: number; error: { code: string; message: string } } {
  if (e instanceof HttpError) return { status: e.status, error: { code: e.code, message: e.message } };
  if (e instanceof DiffusionSearchError) {
    const status = e.code === 'BUSY' && /shutting down/.test(e.message) ? 503 : STATUS[e.code] ?? (e.code === 'ABORTED' ? 499 : e.code === 'VERIFIER' ? 502 : 400);
    return { status, error: { code: e.code, message: e.message } };
  }
  return { status: 500, error: { code: 'INTERNAL', message: e instanceof Error ? e.message : String(e) } };
}

function errorResponse(res: http.ServerResponse, e: unknown): void {
  const { status, error } = errorBody(e);
  if (status === 429) res.setHeader('retry-after', '1');
  json(res, status, { error });
}

/** GET /v1/generate/stream?model=gmm2d&budget=100: numbers and JSON values parsed, repeated keys as arrays. */
function fromQuery(q: URLSearchParams): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const key of new Set(q.keys())) {
    const vals = q.getAll(key).map((v) => {
      try {
        const j = JSON.parse(v) as unknown;
        return typeof j === 'number' || typeof j === 'boolean' || typeof j === 'object' ? j : v;
      } catch {
        return v;
      }
    });
    out[key] = vals.length > 1 || key === 'verifier' || key === 'prompt' ? (key === 'prompt' && vals.length === 1 ? vals[0] : vals.flat()) : vals[0];
  }
  return out;
}

function pick<T extends object, K extends keyof T>(o: T, keys: K[]): Pick<T, K> {
  return Object.fromEntries(keys.map((k) => [k, o[k]])) as Pick<T, K>;
}

export function createServer(engine: Engine, options: ServerOptions = {}): DiffusionServer {
  return new DiffusionServer(engine, options);
}
