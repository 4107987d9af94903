/**
 * examples/queue_client.py (Python, standard library only, raw RESP over a socket) against a real
 * redis-server and a real `diffusion-search worker` process: it adds the docs' job, waits, and
 * decodes the result; the samples it decodes are those this package's client reads for the job.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createQueue } from '../src/queue';
import { haveRedis, RedisServer, WorkerProcess } from './queue-helpers';

const PY = '/usr/bin/python3';
const script = path.join(__dirname, '..', 'examples', 'queue_client.py');
const gmm = { model: 'gmm2d', budget: 300, n: 2, steps: 10, seed: 5 };

function python(args: string[]): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((resolve) => {
    const p = spawn(PY, [script, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '',
      err = '';
    p.stdout.on('data', (d) => (out += d));
    p.stderr.on('data', (d) => (err += d));
    p.on('exit', (code) => resolve({ code, out, err }));
  });
}

describe.skipIf(!haveRedis || !fs.existsSync(PY))('queue client in Python (stdlib), real Redis and worker', () => {
  let redis: RedisServer;
  let worker: WorkerProcess;
  const queue = `py-${process.pid}`;
  beforeAll(async () => {
    redis = await RedisServer.start();
    worker = new WorkerProcess(redis.url, queue, ['--threads', '1']);
    await worker.ready();
  }, 90_000);
  afterAll(async () => {
    await worker?.kill();
    await redis?.stop();
  });

  it("submits the docs' job, waits, decodes shape, dtype, samples and rewards as the package reads them", async () => {
    const r = await python(['--redis', redis.url, '--queue', queue, '--key', 'py-1', JSON.stringify(gmm)]);
    expect(r.code, r.err).toBe(0);
    const got = JSON.parse(r.out) as {
      id: string;
      state: string;
      shape: number[];
      dtype: string;
      samples: number[];
      rewards: number[];
      report: { nfe_used: number };
    };
    expect(got).toMatchObject({ id: 'py-1', state: 'completed', shape: [2, 2], dtype: 'float32' });
    const q = createQueue({ connection: redis.url, name: queue });
    try {
      const mine = (await q.result('py-1'))!;
      expect(got.samples).toEqual(Array.from(mine.samples!));
      expect(got.rewards).toEqual(mine.rewards);
      expect(got.report.nfe_used).toBe(mine.report.nfe_used);
      // The same key and run from this package's client is the Python client's job.
      expect(await q.submit({ ...gmm, keep: 1 }, { key: 'py-1' })).toBe('py-1');
    } finally {
      await q.close();
    }
  }, 120_000);

  it('a bad job fails with its code; the client exits 2 with "[CODE] message"', async () => {
    const r = await python(['--redis', redis.url, '--queue', queue, JSON.stringify({ ...gmm, class: 'NoSuchClass' })]);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/failed: \[ARGUMENT\] /);
  }, 120_000);

  it('cancels by the documented mark and publish: the job fails ABORTED', async () => {
    const long = {
      model: 'gmm2d',
      algorithm: 'best-of-n',
      budget: 2_000_000,
      n: 1,
      steps: 10,
      algorithmOptions: { batch: 1000 },
    };
    const r = await python(['--redis', redis.url, '--queue', queue, '--cancel', JSON.stringify(long)]);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/failed: \[ABORTED\] /);
  }, 120_000);
});
