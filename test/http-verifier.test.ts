import { spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { HttpVerifier } from '../src/verifiers/http';
import { Denoiser } from '../src/models/denoiser';
import { algorithms } from '../src/search';
import { uniform } from '../src/schedules';
import { tensor } from '../src/tensor';
import { expectCode, randn } from './helpers';

interface Req {
  ids: number[];
  shape: number[];
  dtype: string;
  data: string;
  prompts: string[] | null;
  classes: number[] | null;
}

/** The reward the test servers compute, in float64: a function of the row and its class. */
const reward = (row: ArrayLike<number>, cls: number) => {
  let s = 0;
  for (let i = 0; i < row.length; i++) s -= (row[i] - 0.5 * (i + 1)) ** 2;
  return s + cls;
};
const rowsOf = (r: Req) => {
  const buf = Buffer.from(r.data, 'base64');
  const all = new Float32Array(buf.buffer, buf.byteOffset, buf.byteLength / 4);
  const per = r.shape.slice(1).reduce((a, b) => a * b, 1);
  return r.ids.map((_, i) => all.subarray(i * per, (i + 1) * per));
};

type Handler = (req: Req, count: number, res: http.ServerResponse) => void;
const servers: http.Server[] = [];
afterEach(() => servers.splice(0).forEach((s) => (s.closeAllConnections(), s.close())));

/** A real HTTP verifier on 127.0.0.1 at a port the OS picks. */
async function serve(
  handler: Handler,
): Promise<{ url: string; stats: { count: number; inFlight: number; maxInFlight: number } }> {
  const stats = { count: 0, inFlight: 0, maxInFlight: 0 };
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (d) => (body += d));
    req.on('end', () => {
      stats.count++;
      stats.inFlight++;
      stats.maxInFlight = Math.max(stats.maxInFlight, stats.inFlight);
      res.on('close', () => stats.inFlight--);
      handler(JSON.parse(body) as Req, stats.count, res);
    });
  });
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/score`, stats };
}

const answer = (res: http.ServerResponse, r: Req, order: (ids: number[]) => number[] = (x) => x, delayMs = 0) => {
  const rows = rowsOf(r);
  const idx = order(r.ids.map((_, i) => i));
  setTimeout(() => {
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ ids: idx.map((i) => r.ids[i]), scores: idx.map((i) => reward(rows[i], r.classes![i])) }));
  }, delayMs);
};

const shuffle = (xs: number[]) => {
  const a = [...xs];
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [a[i], a[j]] = [a[j], a[i]];
  }
  return a;
};

describe('HttpVerifier against real servers on loopback', () => {
  it(
    'scores every sample by id, with answers shuffled, in batches of maxRows, at most `concurrency` in ' + 'flight',
    async () => {
      const { url, stats } = await serve((r, _c, res) => answer(res, r, shuffle, 20 * Math.random()));
      const n = 23,
        d = 3;
      const data = randn(n * d);
      const classes = Array.from({ length: n }, () => Math.floor(Math.random() * 10));
      const v = new HttpVerifier(url, { maxRows: 5, concurrency: 2 });
      const got = await v.score(tensor(data, [n, d]), classes);
      for (let i = 0; i < n; i++)
        expect(got[i]).toBe(Math.fround(reward(data.subarray(i * d, (i + 1) * d), classes[i])));
      expect(stats.count).toBe(5);
      expect(stats.maxInFlight).toBeLessThanOrEqual(2);
    },
  );

  it('retries a server that fails with 500 twice, then succeeds', async () => {
    const { url, stats } = await serve((r, count, res) =>
      count <= 2 ? ((res.statusCode = 500), res.end('overloaded')) : answer(res, r),
    );
    const data = randn(8);
    const got = await new HttpVerifier(url, { backoffMs: 10 }).score(tensor(data, [4, 2]), [0, 1, 2, 3]);
    expect(stats.count).toBe(3);
    for (let i = 0; i < 4; i++) expect(got[i]).toBe(Math.fround(reward(data.subarray(2 * i, 2 * i + 2), i)));
  });

  it('a server that hangs: a VERIFIER error naming the URL after the timeout and the bounded retries', async () => {
    const { url, stats } = await serve(() => {});
    const t0 = Date.now();
    const e = await expectCode(
      () =>
        new HttpVerifier(url, { timeoutMs: 200, retries: 1, backoffMs: 10 }).score(tensor(randn(4), [2, 2]), [0, 0]),
      'VERIFIER',
    );
    expect(e.message).toContain(url);
    expect(e.message).toMatch(/failed 2 times: no answer within 200 ms/);
    expect(stats.count).toBe(2);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(400);
  });

  it("the search's AbortSignal cancels a request in flight at once", async () => {
    await serve(() => {});
    const { url } = await serve(() => {});
    const ctl = new AbortController();
    setTimeout(() => ctl.abort(new Error('user')), 100);
    const t0 = Date.now();
    await expectCode(
      () =>
        new HttpVerifier(url, { timeoutMs: 30_000 }).score(tensor(randn(4), [2, 2]), [0, 0], { signal: ctl.signal }),
      'ABORTED',
    );
    expect(Date.now() - t0).toBeLessThan(5000);
  });

  it('wrong or missing ids, a 4xx and an unreachable server are VERIFIER errors (4xx not retried)', async () => {
    const x = tensor(randn(4), [2, 2]);
    const wrong = await serve((r, _c, res) => res.end(JSON.stringify({ ids: [r.ids[0], r.ids[0]], scores: [1, 2] })));
    expect((await expectCode(() => new HttpVerifier(wrong.url).score(x, [0, 0]), 'VERIFIER')).message).toMatch(
      /comes twice/,
    );
    const bad = await serve((_r, _c, res) => ((res.statusCode = 400), res.end('no such prompt')));
    expect((await expectCode(() => new HttpVerifier(bad.url).score(x, [0, 0]), 'VERIFIER')).message).toMatch(
      /HTTP 400: no such prompt/,
    );
    expect(bad.stats.count).toBe(1);
    const closed = await serve(() => {});
    const port = new URL(closed.url).port;
    servers.splice(0).forEach((s) => s.close());
    const e = await expectCode(
      () => new HttpVerifier(`http://127.0.0.1:${port}/x`, { retries: 1, backoffMs: 1 }).score(x, [0, 0]),
      'VERIFIER',
    );
    expect(e.message).toMatch(/ECONNREFUSED/);
  });

  it(
    'drives a search: the best sample is the one the remote reward prefers, checked against the reward ' + 'itself',
    async () => {
      const { url } = await serve((r, _c, res) => answer(res, r, shuffle));
      const denoiser = await Denoiser.load('gmm2d');
      const r = await algorithms['best-of-n'].run(
        {
          denoiser,
          verifier: new HttpVerifier(url),
          cls: 0,
          budget: 200,
          sigmas: uniform(10),
          seed: BigInt(Date.now() % 1000),
        },
        {},
      );
      const best = (await r.sample.toArray()) as Float32Array;
      expect(r.reward).toBe(Math.fround(reward(best, 0)));
      expect(r.reward).toBe(Math.max(...r.rewards));
    },
  );

  it('the CLI takes --verifier http://…', async () => {
    const { url, stats } = await serve((r, _c, res) => answer(res, r));
    const out = fs.mkdtempSync(path.join(os.tmpdir(), 'ds-http-'));
    const cli = path.join(__dirname, '..', 'lib', 'cli', 'index.js');
    const args = [
      cli,
      'generate',
      '--model',
      'gmm2d',
      '--algorithm',
      'best-of-n',
      '--budget',
      '50',
      '--n',
      '1',
      '--steps',
      '10',
      '--verifier',
      url,
      '--out',
      out,
      '--json',
    ];
    const p = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '',
      stderr = '';
    p.stdout.on('data', (d) => (stdout += d));
    p.stderr.on('data', (d) => (stderr += d));
    const status = await new Promise((r) => p.on('exit', r));
    expect(status, stderr).toBe(0);
    const report = JSON.parse(stdout);
    expect(report.verifier).toBe(url);
    expect(stats.count).toBeGreaterThan(0);
  });
});

describe("the docs' grader", () => {
  it('serves the protocol as documented (its server part run as written, on a port the test picks)', async () => {
    const doc = fs.readFileSync(path.join(__dirname, '..', 'docs', 'algorithms.md'), 'utf8');
    const block = /A grader\s+in a few lines of Node:\n\n```js\n([\s\S]*?)```/.exec(doc)![1];
    // The grader as written; the block's own search (and its require of the package) is left out.
    const server = block.slice(0, block.indexOf('grader.listen(')).replace(/^const \{ generate \}.*$/m, '');
    const probe = http.createServer();
    await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
    const port = (probe.address() as AddressInfo).port;
    await new Promise((r) => probe.close(r));
    const p = spawn(process.execPath, ['-e', `${server}\ngrader.listen(${port}, '127.0.0.1');`], { stdio: 'inherit' });
    try {
      // retries while the server starts
      const v = new HttpVerifier(`http://127.0.0.1:${port}/`, { retries: 20, backoffMs: 50 });
      const n = 5,
        d = 784;
      const data = randn(n * d);
      const got = await v.score(tensor(data, [n, 1, 28, 28]), [6, 6, 6, 6, 6]);
      for (let i = 0; i < n; i++) {
        let s = 0;
        for (let j = 0; j < d; j++) s += data[i * d + j];
        expect(got[i]).toBeCloseTo(s / d, 5);
      }
    } finally {
      p.kill();
    }
  });
});
