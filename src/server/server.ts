/**
 * `diffusion-search serve`: HTTP over an engine, on node:http — no framework: five routes, SSE,
 * a body limit and client-abort handling are a few lines each, the package keeps its small
 * dependency list, and nothing stands between a closed socket and the request's AbortSignal.
 *
 *   POST /v1/generate          JSON body = generate options → { report, shape, samples (base64
 *                              float32 LE), rewards, latents?, prompts, complete }; with
 *                              `Accept: image/png` the grid, `image/gif` the animation (./pictures)
 *   POST /v1/generate/stream   same body; Server-Sent Events: `progress` …, then `result` or `error`
 *   GET  /v1/generate/stream   the options as query parameters (?model=gmm2d&budget=100&n=2…), for EventSource
 *   GET  /v1/models            models a request may name, and those loaded
 *   GET  /v1/models/<name>     one denoiser's card as a form needs it (./catalog)
 *   GET  /v1/schema            the request's fields and the algorithms' options (./catalog)
 *   GET  /, /ui/<file>         the playground page (ServerOptions.ui; ./ui)
 *   GET  /healthz              200 {"ok":true} (503 while shutting down); never needs the token
 *   GET  /metrics              Prometheus text
 *
 * GET routes answer HEAD too; a known route with another method is 405 with Allow. With a token,
 * every route but /healthz (and /metrics when metricsAuth is false) needs `Authorization: Bearer`.
 * Requests are checked by src/request's resolver under the serving policy (src/request/policy).
 * Statuses are mapped in ./errors (docs/engine-and-serve.md lists them).
 */
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Engine } from '../engine/engine';
import type { GenerateOptions, GenerateResult } from '../request/types';
import { createPolicy, modelPath, withModelNames, type RequestPolicy } from '../request/policy';
import { asOptions, resolveRequest } from '../request/resolve';
import { checkJsonDepth } from '../io/json';
import { shipped } from '../models/shipped';
import { BearerAuth } from './auth';
import { readJsonBody } from './body';
import { HttpError, errorAnswer, json, sendError } from './errors';
import { modelInfo, schemaJson } from './catalog';
import { payload } from './payload';
import { pictureAnswer, sendPicture } from './pictures';
import { previewPayload } from './preview';
import { fromQuery } from './query';
import { EventStream, isFinishedReconnect } from './sse';
import { isUiPath, serveUi } from './ui';

export interface ServerOptions {
  /** Directory whose .pt files requests may name (besides the shipped models). */
  modelsDir?: string;
  /** Largest request body in bytes (default 1 MiB). */
  maxBodyBytes?: number;
  /** Most NFE one request may ask for: n × budget × prompts (default 200,000). */
  maxRequestNfe?: number;
  /** Origins whose verifier URLs requests may name (['*'] or true: any; default none). */
  allowRemoteVerifiers?: boolean | readonly string[];
  /** Bearer token every route but /healthz needs (default none: no authentication). */
  token?: string | null;
  /** Whether /metrics needs the token too (default true; no effect without a token). */
  metricsAuth?: boolean;
  /** Serve the playground page at `/` (default false; `serve` turns it on when bound to loopback). */
  ui?: boolean;
}

/** Methods of each route; HEAD goes with GET. */
const ROUTES: Record<string, string[]> = {
  '/healthz': ['GET', 'HEAD'],
  '/metrics': ['GET', 'HEAD'],
  '/v1/models': ['GET', 'HEAD'],
  '/v1/schema': ['GET', 'HEAD'],
  '/v1/generate': ['POST'],
  '/v1/generate/stream': ['GET', 'HEAD', 'POST'],
};

/** What happened to one request, for the counter: refusals before the engine are counted here. */
interface Ctx {
  ran: boolean;
}

export class DiffusionServer {
  readonly http: http.Server;
  private readonly inFlight = new Set<AbortController>();
  private draining = false;
  readonly policy: RequestPolicy;
  private readonly maxBody: number;
  private readonly auth: BearerAuth | null;
  private readonly metricsAuth: boolean;
  readonly ui: boolean;

  constructor(
    readonly engine: Engine,
    options: ServerOptions = {},
  ) {
    this.policy = createPolicy({
      modelsDir: options.modelsDir,
      allowRemoteVerifiers: options.allowRemoteVerifiers,
      maxRequestNfe: options.maxRequestNfe ?? 200_000,
      who: 'server',
    });
    this.maxBody = options.maxBodyBytes ?? 1024 * 1024;
    this.auth = options.token ? new BearerAuth(options.token) : null;
    this.metricsAuth = options.metricsAuth ?? true;
    this.ui = options.ui ?? false;
    this.http = http.createServer((req, res) => void this.handle(req, res));
    this.http.keepAliveTimeout = 5_000;
  }

  listen(port = 8080, host = '127.0.0.1'): Promise<AddressInfo> {
    return new Promise((resolve, reject) => {
      this.http.once('error', reject);
      this.http.listen(port, host, () => {
        this.http.off('error', reject);
        resolve(this.http.address() as AddressInfo);
      });
    });
  }

  /**
   * Graceful shutdown: new requests get 503 and /healthz answers 503 (the listener stays open, so
   * a load balancer sees it and stops sending), requests in flight finish for up to `deadlineMs`,
   * the rest are cancelled (503 with Retry-After, or the samples that finished), then the
   * listener closes and the engine frees its models.
   */
  async close(deadlineMs = 30_000): Promise<void> {
    this.draining = true;
    this.http.closeIdleConnections?.();
    await this.engine.close({ deadlineMs });
    this.inFlight.forEach((c) => c.abort());
    const t = Date.now();
    while (this.inFlight.size && Date.now() - t < 5_000) await new Promise((r) => setTimeout(r, 10));
    const closed = new Promise<void>((r) => this.http.close(() => r()));
    this.http.closeAllConnections?.();
    await closed;
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const ctx: Ctx = { ran: false };
    // While draining, every answer closes its connection: clients reconnect elsewhere.
    if (this.draining) res.shouldKeepAlive = false;
    try {
      await this.route(req, res, url, ctx);
    } catch (e) {
      if (!ctx.ran) {
        const a = errorAnswer(e);
        this.engine.metricsRegistry.refused(a.status, a.error.code);
      }
      if (!res.headersSent) return void sendError(res, e);
      res.end();
    }
  }

  private async route(req: http.IncomingMessage, res: http.ServerResponse, url: URL, ctx: Ctx): Promise<void> {
    const p = url.pathname;
    const method = req.method ?? 'GET';
    if (p === '/healthz' && (method === 'GET' || method === 'HEAD')) return this.health(res);
    if (this.ui && isUiPath(p)) return serveUi(req, res, url, this.auth);
    if (this.auth && (p !== '/metrics' || this.metricsAuth)) this.auth.check(req);
    if (p.startsWith('/v1/models/') && (method === 'GET' || method === 'HEAD'))
      return json(res, 200, await modelInfo(this.engine, this.policy, decodeURIComponent(p.slice(11))));
    const allowed = ROUTES[p];
    if (!allowed)
      throw new HttpError(
        404,
        'NOT_FOUND',
        `no route ${method} ${p}: ` +
          'use POST /v1/generate, POST|GET /v1/generate/stream, GET /v1/models[/<name>], /v1/schema, /healthz, ' +
          `/metrics${this.ui ? ', / (the page)' : ''}`,
      );
    if (!allowed.includes(method))
      throw new HttpError(405, 'METHOD_NOT_ALLOWED', `${p} does not take ${method}: use ${allowed.join(', ')}`, {
        allow: allowed.join(', '),
      });
    if (p === '/metrics') {
      res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' });
      return void res.end(withModelNames(this.engine.prometheus(), this.policy));
    }
    if (p === '/v1/models') return json(res, 200, withModelNames(this.models(), this.policy));
    if (p === '/v1/schema') return json(res, 200, schemaJson());
    if (p === '/v1/generate') return this.generate(req, res, await readJsonBody(req, this.maxBody), false, ctx);
    if (method === 'POST') return this.generate(req, res, await readJsonBody(req, this.maxBody), true, ctx);
    // A browser's EventSource reconnecting after the result: 204 stops it from running the search again.
    if (isFinishedReconnect(req)) return void res.writeHead(204).end();
    if (method === 'HEAD')
      return void res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' }).end();
    return this.generate(req, res, fromQuery(url.searchParams), true, ctx);
  }

  private health(res: http.ServerResponse): void {
    const m = this.engine.metrics();
    const body = {
      ok: !this.draining,
      draining: this.draining,
      activeRequests: m.activeRequests,
      queueDepth: m.queueDepth,
    };
    json(res, this.draining ? 503 : 200, body, this.draining ? { 'retry-after': '1' } : {});
  }

  private models() {
    const dir = this.policy.modelsDir ? fs.readdirSync(this.policy.modelsDir).filter((f) => f.endsWith('.pt')) : [];
    return {
      shipped: shipped.map((m) => ({ name: m.name, kind: m.kind })),
      models_dir: dir,
      loaded: this.engine.models.list(),
    };
  }

  /** The request's options, checked by the resolver under this server's policy. */
  requestOptions(body: unknown): GenerateOptions {
    if (typeof body !== 'object' || body === null || Array.isArray(body))
      throw new HttpError(400, 'ARGUMENT', 'the body must be a JSON object of generate options');
    checkJsonDepth(body, 'the body');
    return asOptions(resolveRequest(body, this.policy));
  }

  /** A shipped name, or a file name inside the models directory (as an absolute real path). */
  modelPath(v: unknown, what: string): string {
    return modelPath(this.policy, v, what);
  }

  private async generate(
    req: http.IncomingMessage,
    res: http.ServerResponse,
    body: unknown,
    sse: boolean,
    ctx: Ctx,
  ): Promise<void> {
    if (this.draining)
      throw new HttpError(503, 'SHUTTING_DOWN', 'the server is shutting down: retry on another instance');
    const options = this.requestOptions(body);
    const ctl = new AbortController();
    // The client went away before the answer: stop its searches (within a step).
    const onClose = () => !res.writableFinished && ctl.abort(new Error('client closed the connection'));
    res.on('close', onClose);
    this.inFlight.add(ctl);
    try {
      ctx.ran = true;
      if (sse) return await this.stream(res, options, ctl.signal);
      const result = await this.engine.generate(options, { signal: ctl.signal });
      if (ctl.signal.aborted && res.destroyed) return;
      const picture = pictureAnswer(String(req.headers.accept ?? ''), result);
      if (picture) return sendPicture(res, picture, result);
      json(res, 200, this.answer(result));
    } finally {
      res.off('close', onClose);
      this.inFlight.delete(ctl);
    }
  }

  /**
   * SSE: the headers go out with the first progress event, so every failure before the search
   * starts (BUSY, a model that will not load, a budget too small for the plan) keeps its status.
   */
  private async stream(res: http.ServerResponse, options: GenerateOptions, signal: AbortSignal): Promise<void> {
    const events = new EventStream(res);
    let lastProgress = 0;
    let result: GenerateResult;
    try {
      result = await this.engine.generate(options, {
        signal,
        onProgress: (p) => {
          const now = performance.now();
          // A preview is never dropped: the engine already sends at most a few a second.
          if (now - lastProgress < 50 && !p.preview) return;
          lastProgress = now;
          events.send('progress', {
            sample: p.sample,
            samples: p.samples,
            nfe: p.totalNfe,
            budget: p.totalBudget,
            sample_nfe: p.nfe,
            best: p.best,
            round: p.round,
            ...(p.preview ? { preview: previewPayload(p.preview) } : {}),
          });
        },
      });
    } catch (e) {
      if (!events.started) throw e;
      const a = errorAnswer(e);
      events.send('error', { ...a.error, status: a.status }, true);
      return void res.end();
    }
    events.send('result', this.answer(result), true);
    res.end();
  }

  /** The result with model names for the server's paths (only the report holds any). */
  private answer(result: GenerateResult) {
    const out = payload(result);
    return { ...out, report: withModelNames(out.report, this.policy) };
  }
}

export function createServer(engine: Engine, options: ServerOptions = {}): DiffusionServer {
  return new DiffusionServer(engine, options);
}
