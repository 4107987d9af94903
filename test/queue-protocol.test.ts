/**
 * The queue's protocol for clients in any language (docs/queue.md#protocol), against a real
 * redis-server: jobs written by raw Redis commands (ioredis' plain commands, not this package's
 * client) as the docs list them, run by a worker; results read raw and decoded by the documented
 * layout; both checked against the shipped JSON Schemas (ajv); retries defaulted by the worker;
 * idempotent keys compared resolved; a flat options object refused with the fix.
 */
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import Ajv2020 from 'ajv/dist/2020';
import Redis from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createQueue, createWorker, jobSchema, loadResult, resultSchema, type DiffusionQueue } from '../src/queue';
import { haveRedis, RedisServer, until } from './queue-helpers';

const root = path.join(__dirname, '..');
const readSchema = (name: string) => JSON.parse(fs.readFileSync(path.join(root, 'schemas', name), 'utf8'));
const ajv = new Ajv2020({ strict: true, allErrors: true });
const gmm = { model: 'gmm2d', budget: 300, n: 2, steps: 10, seed: 5 };

let redis: RedisServer;
let raw: Redis;
const open: Array<{ close(): Promise<void> }> = [];
let qn = 0;
const name = () => `p${++qn}-${process.pid}`;

/** Adds a job exactly as docs/queue.md#protocol lists the commands (BullMQ 6's layout). */
async function addRaw(
  queue: string,
  data: unknown,
  o: { id?: string; opts?: string; name?: string } = {},
): Promise<string> {
  const base = `bull:${queue}:`;
  const id = o.id ?? String(await raw.incr(`${base}id`));
  const now = Date.now();
  await raw
    .multi()
    .hset(
      `${base}${id}`,
      'name',
      o.name ?? 'generate',
      'data',
      JSON.stringify(data),
      'opts',
      o.opts ?? '{}',
      'timestamp',
      now,
      'delay',
      0,
      'priority',
      0,
    )
    .lpush(`${base}wait`, id)
    .zadd(`${base}marker`, 0, '0')
    .xadd(`${base}events`, '*', 'event', 'waiting', 'jobId', id)
    .exec();
  return id;
}

/** Waits until the job is in the completed or failed set; returns the state and the job's hash. */
async function finished(queue: string, id: string): Promise<{ state: string; job: Record<string, string> }> {
  const state = await until(
    async () => {
      if ((await raw.zscore(`bull:${queue}:completed`, id)) !== null) return 'completed';
      return (await raw.zscore(`bull:${queue}:failed`, id)) !== null ? 'failed' : null;
    },
    `job ${id}`,
    90_000,
  );
  return { state, job: await raw.hgetall(`bull:${queue}:${id}`) };
}

function startWorker(queue: string, extra: Partial<Parameters<typeof createWorker>[0]> = {}) {
  const w = createWorker({
    connection: redis.url,
    name: queue,
    lockDurationMs: 5000,
    engine: { threads: 1 },
    ...extra,
  });
  open.unshift(w);
  return w;
}

describe.skipIf(!haveRedis)('queue protocol (raw Redis, real server)', () => {
  beforeAll(async () => {
    redis = await RedisServer.start();
    raw = new Redis(redis.url);
  });
  afterAll(async () => {
    for (const c of open) await c.close();
    raw?.disconnect();
    await redis?.stop();
  });

  it('the shipped schemas are the ones the code builds (regenerate: see src/queue/schemas.ts)', () => {
    expect(readSchema('queue-job.schema.json')).toEqual(jobSchema());
    expect(readSchema('queue-result.schema.json')).toEqual(resultSchema());
    const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')) as { files: string[] };
    expect(pkg.files).toContain('schemas/');
  });

  it('a job written by raw commands runs; its result, read raw, is self-describing, as the schemas say', async () => {
    const q = name();
    await startWorker(q).ready();
    const data = { options: gmm, submittedAt: Date.now() };
    expect(ajv.validate(readSchema('queue-job.schema.json'), data), ajv.errorsText()).toBe(true);
    const { state, job } = await finished(q, await addRaw(q, data));
    expect(state).toBe('completed');
    const result = JSON.parse(job.returnvalue);
    expect(ajv.validate(readSchema('queue-result.schema.json'), result), ajv.errorsText()).toBe(true);
    expect(result).toMatchObject({ v: 2, where: 'redis', dtype: 'float32', shape: [2, 2] });
    expect(result).toHaveProperty('value_range'); // null: gmm2d's card has none
    const bytes = Buffer.from(result.samples, 'base64');
    const values = Array.from({ length: bytes.length / 4 }, (_, i) => bytes.readFloatLE(4 * i));
    expect(values).toHaveLength(4);
    expect(values.every(Number.isFinite)).toBe(true);
    expect(result.rewards).toHaveLength(2);
  });

  it('schemas refuse what the worker refuses: a flat options object, an unknown key, a wrong type', () => {
    const job = readSchema('queue-job.schema.json');
    expect(ajv.validate(job, gmm)).toBe(false);
    expect(ajv.validate(job, { options: { ...gmm, budgett: 3 } })).toBe(false);
    expect(ajv.validate(job, { options: { ...gmm, n: '2' } })).toBe(false);
    expect(ajv.validate(job, { options: { ...gmm, algorithm: 'best-of-n', algorithmOptions: { elites: 2 } } })).toBe(
      false,
    );
    expect(ajv.validate(job, { options: { ...gmm, algorithm: 'evosearch', algorithmOptions: { elites: 2 } } })).toBe(
      true,
    );
  });

  it('a flat options object (no {options} wrapper) fails ARGUMENT, saying the wrapper is expected', async () => {
    const q = name();
    await startWorker(q).ready();
    const { state, job } = await finished(q, await addRaw(q, gmm));
    expect(state).toBe('failed');
    expect(job.failedReason).toMatch(/^\[ARGUMENT\] .*wraps the generate options: \{"options": \{"model": …/);
    expect(Number(job.atm)).toBe(1); // bad input: not retried
  });

  it('a job carrying no attempts gets the queue defaults from the worker: a transient failure is retried', async () => {
    let calls = 0;
    const grader = http.createServer((req, res) => {
      let body = '';
      req.on('data', (d) => (body += d));
      req.on('end', () => {
        if (++calls <= 4) return void res.writeHead(503).end('down'); // the first try and the verifier's 3 retries
        const j = JSON.parse(body) as { ids: number[] };
        res
          .writeHead(200, { 'content-type': 'application/json' })
          .end(JSON.stringify({ ids: j.ids, scores: j.ids.map((i) => i) }));
      });
    });
    await new Promise<void>((r) => grader.listen(0, '127.0.0.1', r));
    try {
      const url = `http://127.0.0.1:${(grader.address() as { port: number }).port}/score`;
      const q = name();
      await startWorker(q, { allowRemoteVerifiers: true }).ready();
      const id = await addRaw(q, { options: { ...gmm, n: 1, algorithm: 'best-of-n', verifier: [url] } });
      const { state, job } = await finished(q, id);
      expect(state, job.failedReason).toBe('completed');
      expect(JSON.parse(job.returnvalue).report.queue.attempt).toBe(2);
      expect(JSON.parse(job.opts)).toMatchObject({ attempts: 3, backoff: { type: 'exponential', delay: 2000 } });
    } finally {
      grader.close();
    }
  });

  it('a job of another name fails ARGUMENT naming the one expected', async () => {
    const q = name();
    await startWorker(q).ready();
    const { job } = await finished(q, await addRaw(q, { options: gmm }, { name: 'gen' }));
    expect(job.failedReason).toMatch(/^\[ARGUMENT\] .*named 'generate', got 'gen'/);
  });

  it("--key compares resolved options: a raw client's job with the same run under the key is found", async () => {
    const q = name();
    const client: DiffusionQueue = createQueue({ connection: redis.url, name: q });
    open.push(client);
    // Another order, a default spelled out: the same run.
    await addRaw(q, { options: { seed: 5, steps: 10, n: 2, budget: 300, model: 'gmm2d', keep: 1 } }, { id: 'raw-17' });
    expect(await client.submit(gmm, { key: 'raw-17' })).toBe('raw-17');
    await expect(client.submit({ ...gmm, seed: 6 }, { key: 'raw-17' })).rejects.toThrow(
      /already submitted with other options/,
    );
  });

  it('results stored before dtype (v1, valueRange) still read', () => {
    const samples = Buffer.from(new Float32Array([1, 2]).buffer).toString('base64');
    const v1 = {
      v: 1,
      where: 'redis',
      path: null,
      bytes: 8,
      report: {},
      shape: [1, 2],
      rewards: [0],
      complete: true,
      prompts: null,
      valueRange: [-1, 1],
      samples,
      latents: null,
    };
    const r = loadResult('1', v1 as never);
    expect(r.valueRange).toEqual([-1, 1]);
    expect(Array.from(r.samples!)).toEqual([1, 2]);
  });
});
