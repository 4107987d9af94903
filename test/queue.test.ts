/**
 * The queue's library API against a real redis-server on a loopback port (no mocks): submit,
 * progress, results (Redis and directory), idempotent keys, bad input, retries of infrastructure
 * failures with backoff, cancellation within a step, memory admission and the rate limit.
 * Workers run in this process here; test/queue-faults.test.ts runs them as processes.
 */
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import Redis from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generate } from '../src/generate';
import { createQueue, createWorker, type DiffusionQueue, type DiffusionWorker, type JobProgress } from '../src/queue';
import { expectCode } from './helpers';
import { haveRedis, RedisServer, until } from './queue-helpers';

const gmm = { model: 'gmm2d', budget: 300, n: 2, steps: 10, seed: 5 };
let redis: RedisServer;
const open: Array<{ close(): Promise<void> }> = [];
let qn = 0;
/** A fresh queue name per test, and its client. */
function queue(extra: Partial<Parameters<typeof createQueue>[0]> = {}): DiffusionQueue {
  const q = createQueue({ connection: redis.url, name: `t${++qn}-${process.pid}`, backoffMs: 300, ...extra });
  open.push(q);
  return q;
}
function worker(q: DiffusionQueue, extra: Partial<Parameters<typeof createWorker>[0]> = {}): DiffusionWorker {
  const w = createWorker({
    connection: redis.url,
    name: q.name,
    lockDurationMs: 5000,
    engine: { threads: 1 },
    ...extra,
  });
  open.unshift(w);
  return w;
}

describe.skipIf(!haveRedis)('queue (library, real Redis)', () => {
  beforeAll(async () => {
    redis = await RedisServer.start();
  });
  afterAll(async () => {
    for (const c of open) await c.close();
    await redis?.stop();
  });

  it('submits, reports progress, and returns the samples of a run on one machine (same seed)', async () => {
    const q = queue();
    const w = worker(q, { progressIntervalMs: 0 });
    await w.ready();
    const events: JobProgress[] = [];
    await q.listen();
    q.on('progress', (_id: string, p: JobProgress) => events.push(p));
    const id = await q.submit(gmm);
    const r = await q.wait(id, { timeoutMs: 60_000 });
    const local = await generate(gmm);
    expect(r.stored).toBe('redis');
    expect(r.shape).toEqual(local.shape);
    expect(Array.from(r.samples!)).toEqual(Array.from(local.samples));
    expect(r.rewards).toEqual(local.rewards);
    expect((r.report.queue as { attempt: number }).attempt).toBe(1);
    // The worker's file system stays its own: the report names the model, not its path.
    expect(path.isAbsolute(local.report.model_file)).toBe(true);
    expect(r.report.model_file).toBe('gmm2d');
    expect(JSON.stringify(r.report)).not.toContain(path.dirname(local.report.model_file));
    expect(events.length).toBeGreaterThan(0);
    const p = events[events.length - 1];
    expect(p.nfe).toBeGreaterThan(0);
    expect(p.budget).toBe(600);
    expect(Number.isFinite(p.best)).toBe(true);
    expect((await q.progress(id))!.nfe).toBeGreaterThan(0);
    expect(await q.counts()).toMatchObject({ completed: 1, failed: 0, waiting: 0, active: 0 });
  });

  it("a finished job's progress is final (every NFE it used), whatever the throttle dropped", async () => {
    const q = queue();
    const w = worker(q, { progressIntervalMs: 3_600_000 });
    await w.ready();
    const id = await q.submit(gmm);
    const r = await q.wait(id, { timeoutMs: 60_000 });
    const p = (await q.progress(id))!;
    expect(p).not.toBeNull();
    expect(p.nfe).toBe(r.report.nfe_used);
    expect(p.budget).toBe(600);
    expect(p.samples).toBe(2);
    expect(p.best).toBe(Math.max(...r.rewards));
  });

  it("a job's lock follows its expected length (the submitter's, else the worker's rate), renewed", async () => {
    const q = queue();
    const w = worker(q, { lockDurationMs: 1000 });
    await w.ready();
    const long = {
      model: 'gmm2d',
      algorithm: 'best-of-n' as const,
      budget: 200_000,
      n: 1,
      steps: 10,
      seed: 1,
      algorithmOptions: { batch: 2000 },
    };
    const id = await q.submit(long, { expectedSeconds: 100 });
    await until(async () => ((await q.progress(id))?.nfe ?? 0) > 0, 'progress', 60_000);
    const redisCli = new Redis(redis.port, '127.0.0.1');
    const ttl = await redisCli.pttl(`${q.prefix}:${q.name}:${id}:lock`).finally(() => redisCli.quit());
    expect(ttl).toBeGreaterThan(1000); // 100 s / 20 = 5 s, not the 1 s floor
    const r = await q.wait(id, { timeoutMs: 60_000 });
    expect(r.report.queue).toMatchObject({ expected_seconds: 100, lock_ms: 5000, attempt: 1 });
    // No hint: the rate this worker measured on the first job.
    const r2 = await q.wait(await q.submit({ ...long, budget: 20_000 }), { timeoutMs: 60_000 });
    const info = r2.report.queue as { expected_seconds: number; lock_ms: number };
    expect(info.expected_seconds).toBeGreaterThan(0);
    expect(info.lock_ms).toBe(Math.round(Math.max(1000, (info.expected_seconds * 1000) / 20)));
  });

  it('idempotent submission: the same key is the same job; other options under it are refused', async () => {
    const q = queue();
    const a = await q.submit(gmm, { key: 'client-42' });
    const b = await q.submit(gmm, { key: 'client-42' });
    expect(a).toBe('client-42');
    expect(b).toBe(a);
    expect((await q.counts()).waiting).toBe(1);
    await expectCode(() => q.submit({ ...gmm, seed: 6 }, { key: 'client-42' }), 'ARGUMENT');
    await expectCode(() => q.submit(gmm, { key: '123' }), 'ARGUMENT');
    await expectCode(() => q.submit({ ...gmm, verifier: [{ name: 'f' } as never] }), 'ARGUMENT');
  });

  it('large results go to the results directory, small ones stay in Redis', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ds-results-'));
    try {
      const q = queue();
      const w = worker(q, { resultsDir: dir, inlineMaxBytes: 16 }); // 2 samples × 2 floats = 16 bytes: inline
      await w.ready();
      const small = await q.wait(await q.submit(gmm), { timeoutMs: 60_000 });
      expect(small.stored).toBe('redis');
      const big = await q.wait(await q.submit({ ...gmm, n: 3 }), { timeoutMs: 60_000 });
      expect(big.stored).toBe('dir');
      expect(fs.existsSync(path.join(big.path!, 'samples.npy'))).toBe(true);
      expect(JSON.parse(fs.readFileSync(path.join(big.path!, 'report.json'), 'utf8')).n).toBe(3);
      expect(Array.from(big.samples!)).toEqual(Array.from((await generate({ ...gmm, n: 3 })).samples));
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('bad input fails once with its code (no retries)', async () => {
    const q = queue();
    const w = worker(q);
    await w.ready();
    const id = await q.submit({ ...gmm, class: 'NoSuchClass' }, { attempts: 3 });
    await expectCode(() => q.wait(id, { timeoutMs: 60_000 }), 'ARGUMENT');
    await expectCode(() => q.result(id), 'ARGUMENT');
    const job = await q.queue.getJob(id);
    expect(job!.attemptsMade).toBe(1);
    expect(w.stats.started).toBe(1);
    // A model path outside the worker's models directory is bad input too (TorchScript runs code).
    await expectCode(
      async () => q.wait(await q.submit({ ...gmm, model: '/etc/passwd' }), { timeoutMs: 60_000 }),
      'ARGUMENT',
    );
  });

  it("a job names models only inside the worker's models directory: no .., absolute path or symlink out", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ds-worker-models-'));
    const outside = fs.mkdtempSync(path.join(os.tmpdir(), 'ds-outside-'));
    fs.copyFileSync(path.join(__dirname, '..', 'models', 'gmm2d.pt'), path.join(dir, 'mine.pt'));
    fs.copyFileSync(path.join(__dirname, '..', 'models', 'gmm2d.pt'), path.join(outside, 'evil.pt'));
    fs.symlinkSync(path.join(outside, 'evil.pt'), path.join(dir, 'link.pt'));
    fs.symlinkSync(outside, path.join(dir, 'sub'));
    const q = queue();
    const w = worker(q, { modelsDir: dir });
    await w.ready();
    const loadsBefore = w.engine.metrics().loads;
    for (const model of [
      '../' + path.basename(outside) + '/evil.pt',
      path.join(outside, 'evil.pt'),
      'link.pt',
      'sub/evil.pt',
      'mine.pt/../../etc/passwd',
      'nul\0.pt',
    ]) {
      const err = await expectCode(
        async () => q.wait(await q.submit({ ...gmm, model }), { timeoutMs: 60_000 }),
        'ARGUMENT',
      );
      expect(err.message).toMatch(/models directory|plain name/);
    }
    expect(w.engine.metrics().loads).toBe(loadsBefore); // nothing outside was ever loaded
    const r = await q.wait(await q.submit({ ...gmm, model: 'mine.pt', verifier: ['gmm2d-reward'] }), {
      timeoutMs: 60_000,
    });
    expect(r.complete).toBe(true);
    fs.rmSync(dir, { recursive: true, force: true });
    fs.rmSync(outside, { recursive: true, force: true });
  });

  it('an infrastructure failure (the verifier service down) is retried with backoff and then succeeds', async () => {
    let calls = 0;
    const seen: number[] = [];
    const grader = http.createServer((req, res) => {
      let body = '';
      req.on('data', (d) => (body += d));
      req.on('end', () => {
        calls++;
        seen.push(Date.now());
        if (calls <= 4) return void res.writeHead(503).end('down'); // the first try and the verifier's 3 retries
        const j = JSON.parse(body) as { ids: number[]; data: string };
        const b = Buffer.from(j.data, 'base64');
        const x = new Float32Array(b.buffer, b.byteOffset, b.length / 4);
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ ids: j.ids, scores: j.ids.map((_, i) => -(x[2 * i] ** 2 + x[2 * i + 1] ** 2)) }));
      });
    });
    await new Promise<void>((r) => grader.listen(0, '127.0.0.1', r));
    try {
      const url = `http://127.0.0.1:${(grader.address() as { port: number }).port}/score`;
      const q = queue({ backoffMs: 1000 });
      const w = worker(q, { allowRemoteVerifiers: true });
      await w.ready();
      const id = await q.submit({ ...gmm, n: 1, algorithm: 'best-of-n', verifier: [url] }, { attempts: 3 });
      const r = await q.wait(id, { timeoutMs: 90_000 });
      expect((r.report.queue as { attempt: number }).attempt).toBe(2);
      const job = await q.queue.getJob(id);
      expect(job!.stacktrace.join('\n') + String(job!.failedReason ?? '')).toMatch(/VERIFIER|503/);
      // The retry waited for the backoff (1 s) after the failure.
      expect(seen[4] - seen[3]).toBeGreaterThanOrEqual(900);
    } finally {
      grader.close();
    }
  });

  it('cancels a running job within a step (ABORTED, no retry) and removes a waiting one', async () => {
    const q = queue();
    const w = worker(q, { progressIntervalMs: 0 });
    await w.ready();
    // best-of-n in rounds of 1000 candidates (a progress update each): about 20 s if it ran to the end.
    const long = await q.submit(
      { model: 'gmm2d', algorithm: 'best-of-n', budget: 2_000_000, n: 1, steps: 10, algorithmOptions: { batch: 1000 } },
      { attempts: 3 },
    );
    const waiting = await q.submit(gmm);
    await q.listen();
    await until(async () => ((await q.progress(long))?.nfe ?? 0) > 0, 'progress', 60_000);
    expect(await q.cancel(waiting)).toBe('removed');
    const t = Date.now();
    expect(await q.cancel(long)).toBe('cancelling');
    await expectCode(() => q.wait(long, { timeoutMs: 30_000 }), 'ABORTED');
    expect(Date.now() - t).toBeLessThan(5000);
    expect((await q.queue.getJob(long))!.attemptsMade).toBe(1);
    expect(await q.state(waiting)).toBe('unknown');
    expect(await q.cancel(long)).toBe('finished');
  });

  it('a worker shutting down past its deadline hands its job back (no attempt spent) to another', async () => {
    const q = queue();
    const w = createWorker({
      connection: redis.url,
      name: q.name,
      lockDurationMs: 5000,
      engine: { threads: 1 },
      progressIntervalMs: 0,
    });
    await w.ready();
    const id = await q.submit(
      { model: 'gmm2d', algorithm: 'best-of-n', budget: 2_000_000, n: 1, steps: 10, algorithmOptions: { batch: 1000 } },
      { attempts: 1 },
    );
    await until(async () => ((await q.progress(id))?.nfe ?? 0) > 0, 'progress', 60_000);
    await w.close({ deadlineMs: 100 });
    expect(['waiting', 'delayed']).toContain(await q.state(id));
    expect((await q.queue.getJob(id))!.attemptsMade).toBe(0);
    const w2 = worker(q, { progressIntervalMs: 0 });
    await w2.ready();
    await until(async () => (await q.state(id)) === 'active', 'the job to run again', 30_000);
    expect(await q.cancel(id)).toBe('cancelling'); // enough: it ran again; no need to wait 20 s
    await expectCode(() => q.wait(id, { timeoutMs: 30_000 }), 'ABORTED');
  });

  it('admission: a job the device cannot hold fails OUT_OF_MEMORY; one not fitting beside another waits', async () => {
    const q = queue();
    // gmm2d: 8 B a sample; budget/steps = 30 rows × 8 B × 8 per search, + kept: n = 2 → 3872 B, n = 8 → 15488 B.
    const w = worker(q, { concurrency: 2, engine: { threads: 1, memoryLimit: 6000 } });
    await w.ready();
    await expectCode(async () => q.wait(await q.submit({ ...gmm, n: 8 }), { timeoutMs: 60_000 }), 'OUT_OF_MEMORY');
    const ids = await Promise.all([
      q.submit({ ...gmm, n: 2, budget: 3000, steps: 100 }),
      q.submit({ ...gmm, n: 2, budget: 3000, steps: 100, seed: 9 }),
    ]);
    const rs = await Promise.all(ids.map((id) => q.wait(id, { timeoutMs: 60_000 })));
    expect(rs.every((r) => r.complete)).toBe(true);
    expect(w.stats.handedBack).toBeGreaterThan(0);
  });

  it('rate limit: at most one job started per second', async () => {
    const q = queue();
    const w = worker(q, { concurrency: 2, rateLimit: { max: 1, durationMs: 1000 } });
    await w.ready();
    const ids = await Promise.all([1, 2, 3].map((s) => q.submit({ ...gmm, n: 1, seed: s })));
    await Promise.all(ids.map((id) => q.wait(id, { timeoutMs: 60_000 })));
    const starts = (await Promise.all(ids.map((id) => q.queue.getJob(id))))
      .map((j) => j!.processedOn!)
      .sort((a, b) => a - b);
    expect(starts[2] - starts[0]).toBeGreaterThanOrEqual(1900);
  });
});
