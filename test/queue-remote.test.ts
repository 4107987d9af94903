/**
 * Remote verifiers on a worker process (issue 23 item 5), over real HTTP on 127.0.0.1 and a real
 * redis-server: --allow-remote-verifiers takes the origins jobs may call (another origin fails
 * ARGUMENT naming the allowed ones); --verifier-rows, --verifier-retries and the headers (from a
 * file, or $DS_VERIFIER_HEADERS — never argv) reach the grader; submit does not take the worker's
 * --verifier-* settings.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createQueue, type DiffusionQueue } from '../src/queue';
import { expectCode } from './helpers';
import { cli, haveRedis, RedisServer, WorkerProcess } from './queue-helpers';

interface Call {
  rows: number;
  auth: string | undefined;
}

/** A grader on 127.0.0.1: fails the first `failFirst` calls with 503, then scores −|x|². */
function grader(failFirst = 0): Promise<{ server: http.Server; url: string; calls: Call[] }> {
  const calls: Call[] = [];
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (d) => (body += d));
    req.on('end', () => {
      const j = JSON.parse(body) as { ids: number[]; data: string };
      calls.push({ rows: j.ids.length, auth: req.headers.authorization });
      if (calls.length <= failFirst) return void res.writeHead(503).end('down');
      const b = Buffer.from(j.data, 'base64');
      const x = new Float32Array(b.buffer, b.byteOffset, b.length / 4);
      const scores = j.ids.map((_, i) => -(x[2 * i] ** 2 + x[2 * i + 1] ** 2));
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ ids: j.ids, scores }));
    });
  });
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () => {
      const url = `http://127.0.0.1:${(server.address() as { port: number }).port}/score`;
      resolve({ server, url, calls });
    }),
  );
}

const job = (url: string) => ({
  model: 'gmm2d',
  algorithm: 'best-of-n',
  budget: 200,
  n: 1,
  steps: 10,
  seed: 3,
  verifier: [url],
});

describe.skipIf(!haveRedis)('queue worker: remote verifier flags (real HTTP and Redis)', () => {
  let redis: RedisServer;
  let q: DiffusionQueue;
  const workers: WorkerProcess[] = [];
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ds-rv-'));
  beforeAll(async () => {
    redis = await RedisServer.start();
  });
  afterAll(async () => {
    for (const w of workers) await w.kill();
    await q?.close();
    await redis?.stop();
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  it('allowed origin: rows, retries and the headers file reach the grader; another origin is refused', async () => {
    const g = await grader(1);
    const other = await grader();
    try {
      const headers = path.join(tmp, 'headers');
      fs.writeFileSync(headers, 'Authorization: Bearer from-file\n');
      const name = `rv1-${process.pid}`;
      const origin = new URL(g.url).origin;
      const args = [
        '--allow-remote-verifiers',
        origin,
        '--verifier-rows',
        '3',
        '--verifier-retries',
        '1',
        '--verifier-backoff',
        '0.05',
      ];
      const w = new WorkerProcess(redis.url, name, [...args, '--verifier-headers-file', headers]);
      workers.push(w);
      await w.ready();
      q = createQueue({ connection: redis.url, name, attempts: 1 });
      const r = await q.wait(await q.submit(job(g.url)), { timeoutMs: 60_000 });
      expect(r.rewards[0]).toBeLessThanOrEqual(0);
      expect(g.calls.length).toBeGreaterThan(1);
      expect(Math.max(...g.calls.map((c) => c.rows))).toBeLessThanOrEqual(3);
      expect(g.calls.every((c) => c.auth === 'Bearer from-file')).toBe(true);
      // One 503, one retry (--verifier-retries 1), and the job still completed on its first attempt.
      expect((r.report.queue as { attempt: number }).attempt).toBe(1);
      const err = await expectCode(
        async () => q.wait(await q.submit(job(other.url)), { timeoutMs: 60_000 }),
        'ARGUMENT',
      );
      expect(err.message).toContain(origin);
      expect(other.calls).toHaveLength(0);
      await q.close();
    } finally {
      g.server.close();
      other.server.close();
    }
  });

  it('headers from $DS_VERIFIER_HEADERS; submit refuses the worker-only --verifier-* flags', async () => {
    const g = await grader();
    try {
      const name = `rv2-${process.pid}`;
      process.env.DS_VERIFIER_HEADERS = '{"Authorization": "Bearer from-env"}';
      const w = new WorkerProcess(redis.url, name, ['--allow-remote-verifiers', '*']);
      delete process.env.DS_VERIFIER_HEADERS;
      workers.push(w);
      await w.ready();
      q = createQueue({ connection: redis.url, name, attempts: 1 });
      await q.wait(await q.submit(job(g.url)), { timeoutMs: 60_000 });
      expect(g.calls.length).toBeGreaterThan(0);
      expect(g.calls.every((c) => c.auth === 'Bearer from-env')).toBe(true);
      const sub = spawn(process.execPath, [
        cli,
        'submit',
        '--redis',
        redis.url,
        '--queue',
        name,
        '--verifier-timeout',
        '5',
      ]);
      let err = '';
      sub.stderr.on('data', (d) => (err += d));
      const code = await new Promise((r) => sub.on('exit', r));
      expect(code).toBe(2);
      expect(err).toMatch(/unknown option '--verifier-timeout'/);
      const cfg = path.join(tmp, 'job.json');
      fs.writeFileSync(cfg, JSON.stringify({ model: 'gmm2d', verifierTimeout: 5 }));
      const sub2 = spawn(process.execPath, [cli, 'submit', '--redis', redis.url, '--queue', name, '--config', cfg]);
      let err2 = '';
      sub2.stderr.on('data', (d) => (err2 += d));
      expect(await new Promise((r) => sub2.on('exit', r))).toBe(2);
      expect(err2).toMatch(/verifierTimeout: how to call remote verifiers is the worker's setting/);
    } finally {
      g.server.close();
    }
  });
});
