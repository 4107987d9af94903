/**
 * `serve` over loopback with real HTTP requests: generate as JSON and PNG, SSE
 * progress, models/healthz/metrics, bad input → 400 with the code, restricted model paths, body
 * and NFE limits, queue full → 429, a client that goes away stops its work, and SIGTERM with a
 * request in flight (the CLI in a child process).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEngine, type Engine } from '../src/engine/engine';
import { createServer, type DiffusionServer } from '../src/server/server';
import { generate } from '../src/generate';

let engine: Engine, server: DiffusionServer, base: string, modelsDir: string;

beforeAll(async () => {
  modelsDir = fs.mkdtempSync(path.join(os.tmpdir(), 'ds-models-'));
  fs.copyFileSync(path.join(__dirname, '..', 'models', 'gmm2d.pt'), path.join(modelsDir, 'mine.pt'));
  fs.symlinkSync('/etc/hostname', path.join(modelsDir, 'escape.pt'));
  engine = createEngine({ maxActive: 1, maxQueue: 1 });
  server = createServer(engine, { modelsDir, maxBodyBytes: 4096, maxRequestNfe: 10_000 });
  const addr = await server.listen(0, '127.0.0.1');
  base = `http://127.0.0.1:${addr.port}`;
});
afterAll(async () => {
  await server?.close(0);
});

const post = (p: string, body: unknown, headers: Record<string, string> = {}, signal?: AbortSignal) =>
  fetch(base + p, {
    method: 'POST',
    body: typeof body === 'string' ? body : JSON.stringify(body),
    headers: { 'content-type': 'application/json', ...headers },
    signal,
  });

const floats = (b64: string) => {
  const buf = Buffer.from(b64, 'base64');
  return new Float32Array(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.length));
};

describe('serve over loopback', () => {
  it('POST /v1/generate: report and float32 samples, the same as generate()', async () => {
    const opts = { model: 'gmm2d', algorithm: 'best-of-n', budget: 100, n: 2, steps: 10, seed: 3 } as const;
    const r = await post('/v1/generate', opts);
    expect(r.status).toBe(200);
    const j = await r.json();
    expect(j.shape).toEqual([2, 2]);
    const x = floats(j.samples);
    const want = await generate(opts);
    expect(x.length).toBe(want.samples.length);
    x.forEach((v, i) => expect(Math.abs(v - want.samples[i])).toBeLessThanOrEqual(1e-5));
    expect(j.report).toMatchObject({ n: 2, complete: true, nfe_used: want.report.nfe_used });
    expect(j.rewards).toHaveLength(2);
  });

  it('Accept: image/png gives the grid; a model from the models directory loads by name', async () => {
    const r = await post(
      '/v1/generate',
      { model: 'mine.pt', verifier: ['gmm2d-reward'], algorithm: 'best-of-n', budget: 50, steps: 5 },
      { accept: 'image/png' },
    );
    expect(r.status).toBe(200);
    expect(r.headers.get('content-type')).toBe('image/png');
    const png = Buffer.from(await r.arrayBuffer());
    expect(png.subarray(1, 4).toString()).toBe('PNG');
  });

  it('SSE: progress events, then the result', async () => {
    const r = await fetch(`${base}/v1/generate/stream?model=gmm2d&algorithm=evosearch&budget=600&n=2&steps=10`);
    expect(r.headers.get('content-type')).toBe('text/event-stream');
    const text = await r.text();
    const events = [...text.matchAll(/event: (\w+)\ndata: (.*)\n\n/g)].map((m) => [m[1], JSON.parse(m[2])]);
    expect(events.filter(([e]) => e === 'progress').length).toBeGreaterThan(0);
    const [last, data] = events[events.length - 1];
    expect(last).toBe('result');
    expect(data.shape).toEqual([2, 2]);
  });

  it('GET /v1/models, /healthz, /metrics', async () => {
    const m = await (await fetch(`${base}/v1/models`)).json();
    expect(m.shipped.map((s: { name: string }) => s.name)).toContain('fashion-flow');
    expect(m.models_dir).toEqual(expect.arrayContaining(['mine.pt']));
    expect(await (await fetch(`${base}/healthz`)).json()).toMatchObject({ ok: true });
    const text = await (await fetch(`${base}/metrics`)).text();
    expect(text).toMatch(/# TYPE diffusion_search_requests_total counter/);
    expect(text).toMatch(/diffusion_search_nfe_total \d+/);
  });

  it('bad input → 400 with the code; paths outside the models directory are refused', async () => {
    const cases: Array<[unknown, number, string, RegExp]> = [
      [{ model: 'gmm2d', budget: 0 }, 400, 'BUDGET', /budget/],
      [{ model: 'gmm2d', algorithm: 'nope' }, 400, 'ARGUMENT', /unknown algorithm/],
      [{ model: 'gmm2d', colour: 'red' }, 400, 'ARGUMENT', /unknown option/],
      [{ model: '../models/gmm2d.pt' }, 400, 'ARGUMENT', /not a plain name/],
      [{ model: '/etc/passwd' }, 400, 'ARGUMENT', /not a plain name/],
      [{ model: 'escape.pt' }, 400, 'ARGUMENT', /leaves the models directory/],
      [{ model: 'gmm2d', verifier: ['http://127.0.0.1:1/x'] }, 400, 'ARGUMENT', /remote verifiers are not allowed/],
      [{ model: 'gmm2d', budget: 5000, n: 4 }, 400, 'BUDGET', /over this server's limit of 10000/],
      ['{not json', 400, 'ARGUMENT', /not JSON/],
      [{ model: 'gmm2d', class: 'x'.repeat(5000) }, 413, 'PAYLOAD_TOO_LARGE', /over the limit/],
    ];
    for (const [body, status, code, msg] of cases) {
      const r = await post('/v1/generate', body);
      expect(r.status, JSON.stringify(body).slice(0, 80)).toBe(status);
      const j = await r.json();
      expect(j.error.code).toBe(code);
      expect(j.error.message).toMatch(msg);
    }
    expect((await fetch(`${base}/nowhere`)).status).toBe(404);
  });

  it('queue full → 429 (one running, one waiting, the third refused)', async () => {
    const slow = { model: 'fashion-flow', algorithm: 'best-of-n', budget: 3000, steps: 10, n: 3, eval: false };
    const ctl = new AbortController();
    const a = post('/v1/generate', slow, {}, ctl.signal).catch(() => null);
    await new Promise((r) => setTimeout(r, 300));
    const b = post('/v1/generate', slow, {}, ctl.signal).catch(() => null);
    await new Promise((r) => setTimeout(r, 300));
    const c = await post('/v1/generate', slow);
    expect(c.status).toBe(429);
    expect((await c.json()).error.code).toBe('BUSY');
    expect(c.headers.get('retry-after')).toBe('1');
    ctl.abort();
    await Promise.all([a, b]);
    const t0 = performance.now();
    while (engine.metrics().activeRequests + engine.metrics().queueDepth > 0 && performance.now() - t0 < 20_000)
      await new Promise((r) => setTimeout(r, 20));
    expect(engine.metrics()).toMatchObject({ activeRequests: 0, queueDepth: 0 });
  });

  it('a client that goes away cancels its request: the searches stop and free their rows', async () => {
    const ctl = new AbortController();
    const before = engine.metrics().requests.aborted ?? 0; // the 429 test's two cancelled requests count too
    const r = post(
      '/v1/generate',
      { model: 'fashion-flow', algorithm: 'evosearch', class: 'Shirt', budget: 2000, n: 2, steps: 10, eval: false },
      {},
      ctl.signal,
    );
    await new Promise((res) => setTimeout(res, 1500));
    expect(engine.metrics().activeSearches).toBe(2);
    ctl.abort();
    await expect(r).rejects.toThrow();
    const t0 = performance.now();
    while (
      (engine.metrics().activeRequests > 0 || engine.metrics().requests.aborted === undefined) &&
      performance.now() - t0 < 10_000
    )
      await new Promise((res) => setTimeout(res, 20));
    expect(engine.metrics()).toMatchObject({ activeRequests: 0, activeSearches: 0, queuedRows: 0, reservedBytes: 0 });
    expect(engine.metrics().requests.aborted, JSON.stringify(engine.metrics().requests)).toBe(before + 1);
  });
});

describe('serve CLI: graceful shutdown', () => {
  it('SIGTERM: stops accepting, finishes the request in flight, exits 0', async () => {
    const cli = path.join(__dirname, '..', 'lib', 'cli', 'index.js');
    const child = spawn(process.execPath, [cli, 'serve', '--port', '0', '--shutdown-deadline', '60'], {
      env: { ...process.env, OMP_WAIT_POLICY: 'PASSIVE' },
    });
    let stdout = '',
      stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    const url = await new Promise<string>((resolve, reject) => {
      child.stdout.on('data', (d) => {
        stdout += d;
        const m = /listening on (http:\/\/[\d.]+:\d+)/.exec(stdout);
        if (m) resolve(m[1]);
      });
      child.on('exit', () => reject(new Error(`serve exited: ${stderr}`)));
    });
    const inFlight = fetch(`${url}/v1/generate`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'gmm2d', algorithm: 'evosearch', budget: 3000, n: 4, steps: 20 }),
    });
    await new Promise((r) => setTimeout(r, 300));
    const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
    child.kill('SIGTERM');
    const res = await inFlight;
    expect(res.status).toBe(200);
    expect((await res.json()).report.complete).toBe(true);
    expect(await exited).toBe(0);
    expect(stderr).toMatch(/SIGTERM: not accepting new requests/);
    await expect(fetch(`${url}/healthz`)).rejects.toThrow();
  });
});
