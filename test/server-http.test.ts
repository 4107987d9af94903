/**
 * serve's HTTP surface over 127.0.0.1: statuses of a drain (503 + Retry-After, /healthz
 * 503 while requests finish), 413 for a chunked body, 415, HEAD, 405 with Allow, SSE refusals
 * before the headers with their real status, retry: and ids, 204 to a finished EventSource,
 * bearer tokens, model names instead of server paths, and refusals counted in requests_total.
 */
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEngine } from '../src/engine/engine';
import { createServer, type DiffusionServer, type ServerOptions } from '../src/server/server';

const servers: DiffusionServer[] = [];
async function start(o: ServerOptions = {}, engineOpts = {}): Promise<{ server: DiffusionServer; base: string }> {
  const server = createServer(createEngine(engineOpts), o);
  servers.push(server);
  const addr = await server.listen(0, '127.0.0.1');
  return { server, base: `http://127.0.0.1:${addr.port}` };
}
afterAll(async () => {
  await Promise.all(servers.map((s) => s.close(0)));
});

const JSON_HEADERS = { 'content-type': 'application/json' };
const post = (
  base: string,
  p: string,
  body: unknown,
  headers: Record<string, string> = JSON_HEADERS,
  signal?: AbortSignal,
) => fetch(base + p, { method: 'POST', body: typeof body === 'string' ? body : JSON.stringify(body), headers, signal });
const SLOW = { model: 'fashion-flow', algorithm: 'best-of-n', budget: 5000, steps: 10, n: 1, eval: false };
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A raw HTTP request (chunked body, HEAD): status, headers, body. */
function raw(base: string, method: string, p: string, chunks: Buffer[] = [], headers: Record<string, string> = {}) {
  return new Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }>((resolve, reject) => {
    const req = http.request(base + p, { method, headers }, (res) => {
      let body = '';
      res.on('data', (d) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body }));
    });
    req.on('error', reject);
    for (const c of chunks) req.write(c);
    req.end();
  });
}

describe('shutdown', () => {
  it('drain: /healthz 503, new requests 503 + Retry-After; cancelled requests 503 + Retry-After', async () => {
    const { server, base } = await start();
    const inFlight = post(base, '/v1/generate', SLOW);
    await sleep(800);
    const closing = server.close(1500);
    await sleep(100);
    const h = await fetch(`${base}/healthz`);
    expect(h.status).toBe(503);
    expect(await h.json()).toMatchObject({ ok: false, draining: true, activeRequests: 1 });
    const late = await post(base, '/v1/generate', { model: 'gmm2d' });
    expect(late.status).toBe(503);
    expect(late.headers.get('retry-after')).toBe('1');
    const r = await inFlight;
    expect(r.status).toBe(503);
    expect(r.headers.get('retry-after')).toBe('1');
    expect((await r.json()).error.code).toBe('ABORTED');
    await closing;
  });
});

describe('HTTP semantics', () => {
  let base: string;
  beforeAll(async () => {
    ({ base } = await start({ maxBodyBytes: 1024 }));
  });

  it('a chunked body over --max-body is 413 as JSON, not a reset', async () => {
    const r = await raw(
      base,
      'POST',
      '/v1/generate',
      Array.from({ length: 64 }, () => Buffer.alloc(1024, 32)),
      { 'content-type': 'application/json' },
    );
    expect(r.status).toBe(413);
    expect(JSON.parse(r.body).error.code).toBe('PAYLOAD_TOO_LARGE');
  });

  it('HEAD on GET routes; 405 with Allow for a known route with another method', async () => {
    for (const p of ['/healthz', '/metrics', '/v1/models']) {
      const r = await raw(base, 'HEAD', p);
      expect(r.status, p).toBe(200);
      expect(r.body).toBe('');
    }
    const g = await fetch(`${base}/v1/generate`);
    expect(g.status).toBe(405);
    expect(g.headers.get('allow')).toBe('POST');
    expect((await g.json()).error.code).toBe('METHOD_NOT_ALLOWED');
    expect((await fetch(`${base}/healthz`, { method: 'DELETE' })).headers.get('allow')).toBe('GET, HEAD');
  });

  it('text/plain and form bodies are 415 naming what is accepted', async () => {
    for (const type of ['text/plain', 'application/x-www-form-urlencoded']) {
      const r = await post(base, '/v1/generate', { model: 'gmm2d' }, { 'content-type': type });
      expect(r.status, type).toBe(415);
      expect((await r.json()).error.message).toMatch(/application\/json/);
    }
    const ok = await post(
      base,
      '/v1/generate',
      { model: 'gmm2d', algorithm: 'best-of-n', budget: 20, steps: 5 },
      { 'content-type': 'application/json; charset=utf-8' },
    );
    expect(ok.status).toBe(200);
  });
});

describe('SSE', () => {
  it('refusals found by the engine keep their status (BUSY 429, a budget too small for the plan 400)', async () => {
    const { base } = await start({}, { maxActive: 1, maxQueue: 0 });
    const small = await fetch(`${base}/v1/generate/stream?model=gmm2d&algorithm=evosearch&budget=10&steps=8`);
    expect(small.status).toBe(400);
    expect((await small.json()).error.code).toBe('BUDGET');
    const ctl = new AbortController();
    const busy = post(base, '/v1/generate', SLOW, JSON_HEADERS, ctl.signal).catch(() => null);
    await sleep(400);
    // As large as the one running (a request 4× smaller may still run beside it).
    const r = await fetch(
      `${base}/v1/generate/stream?${new URLSearchParams(Object.entries(SLOW).map(([k, v]) => [k, String(v)]))}`,
    );
    expect(r.status).toBe(429);
    expect(r.headers.get('retry-after')).toBe('1');
    expect((await r.json()).error.code).toBe('BUSY');
    ctl.abort();
    await busy;
  });

  it('retry: and event ids; the last event has id "end", and a reconnect after it is 204', async () => {
    const { base } = await start();
    const r = await fetch(`${base}/v1/generate/stream?model=gmm2d&algorithm=evosearch&budget=600&n=2&steps=10`);
    expect(r.status).toBe(200);
    const text = await r.text();
    expect(text).toMatch(/^retry: \d+\n\n/);
    const events = [...text.matchAll(/id: (\w+)\nevent: (\w+)\ndata: .*\n\n/g)].map((m) => [m[1], m[2]]);
    expect(events.length).toBeGreaterThan(1);
    expect(events[0]).toEqual(['0', 'progress']);
    expect(events[events.length - 1]).toEqual(['end', 'result']);
    const again = await fetch(`${base}/v1/generate/stream?model=gmm2d&budget=600`, {
      headers: { 'last-event-id': 'end' },
    });
    expect(again.status).toBe(204);
  });
});

describe('bearer tokens', () => {
  it('401 + WWW-Authenticate without the token or with another; /healthz open; /metrics protected', async () => {
    const { base } = await start({ token: 's3cret-token' });
    const none = await fetch(`${base}/v1/models`);
    expect(none.status).toBe(401);
    expect(none.headers.get('www-authenticate')).toBe('Bearer realm="diffusion-search"');
    const wrong = await fetch(`${base}/v1/models`, { headers: { authorization: 'Bearer s3cret-tokeX' } });
    expect(wrong.status).toBe(401);
    expect(wrong.headers.get('www-authenticate')).toMatch(/^Bearer realm="diffusion-search", error="invalid_token"/);
    const gen = await post(base, '/v1/generate', { model: 'gmm2d' });
    expect(gen.status).toBe(401);
    expect((await fetch(`${base}/v1/models`, { headers: { authorization: 'Bearer s3cret-token' } })).status).toBe(200);
    expect((await fetch(`${base}/healthz`)).status).toBe(200);
    expect((await fetch(`${base}/metrics`)).status).toBe(401);
    const open = await start({ token: 's3cret-token', metricsAuth: false });
    expect((await fetch(`${open.base}/metrics`)).status).toBe(200);
    expect((await fetch(`${open.base}/v1/models`)).status).toBe(401);
  });
});

describe('model names, not server paths; every request counted', () => {
  it('report and /metrics name models; refusals before the engine counted by status and code', async () => {
    const modelsDir = fs.mkdtempSync(path.join(os.tmpdir(), 'ds-models-'));
    fs.copyFileSync(path.join(__dirname, '..', 'models', 'gmm2d.pt'), path.join(modelsDir, 'mine.pt'));
    const { base } = await start({ modelsDir, maxBodyBytes: 2048 });
    const r = await post(base, '/v1/generate', {
      model: 'mine.pt',
      verifier: ['gmm2d-reward'],
      algorithm: 'best-of-n',
      budget: 20,
      steps: 5,
    });
    expect(r.status).toBe(200);
    const text = JSON.stringify(await r.json());
    const root = path.join(__dirname, '..');
    expect(text).not.toContain(fs.realpathSync(modelsDir));
    expect(text).not.toContain(root);
    expect(JSON.parse(text).report).toMatchObject({ model: 'mine.pt', model_file: 'mine.pt' });
    await post(base, '/v1/generate', { model: 'gmm2d', algorithm: 'best-of-n', budget: 20, steps: 5 });
    expect((await fetch(`${base}/nowhere`)).status).toBe(404);
    expect((await post(base, '/v1/generate', '{nope')).status).toBe(400);
    expect((await post(base, '/v1/generate', { model: 'nope' })).status).toBe(400);
    expect((await post(base, '/v1/generate', { prompt: 'x'.repeat(4000) })).status).toBe(413);
    const m = await (await fetch(`${base}/metrics`)).text();
    expect(m).not.toContain(root);
    expect(m).not.toContain(fs.realpathSync(modelsDir));
    expect(m).toMatch(/diffusion_search_forwards_total\{model="mine.pt",kind="denoiser"\} \d+/);
    expect(m).toMatch(/diffusion_search_forwards_total\{model="gmm2d-reward",kind="verifier"\} \d+/);
    expect(m).toMatch(/diffusion_search_requests_total\{outcome="ok"\} 2/);
    expect(m).toMatch(/diffusion_search_requests_total\{outcome="refused",status="404",code="NOT_FOUND"\} 1/);
    expect(m).toMatch(/diffusion_search_requests_total\{outcome="refused",status="400",code="ARGUMENT"\} 2/);
    expect(m).toMatch(/diffusion_search_requests_total\{outcome="refused",status="413",code="PAYLOAD_TOO_LARGE"\} 1/);
  });
});
