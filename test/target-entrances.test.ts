/**
 * `diversity` and `alpha` through every entrance: the library (JSON keys), the CLI (flags), HTTP
 * (serve on 127.0.0.1) and the queue (a real redis-server): refusals name the option as that
 * entrance spells it, and the reports carry the request's diversity and each search's.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEngine } from '../src/engine/engine';
import { meanPairwiseCosineDistance, vendiScore } from '../src/eval/diversity';
import { generate } from '../src/generate';
import { createQueue, createWorker, type DiffusionQueue, type DiffusionWorker } from '../src/queue';
import type { GenerateReport } from '../src/request/report';
import { createServer, type DiffusionServer } from '../src/server/server';
import { expectCode } from './helpers';
import { cli, haveRedis, RedisServer } from './queue-helpers';

const gmm = { model: 'gmm2d', budget: 400, steps: 10, seed: 4 };

/** The report's diversity, checked against the measures recomputed from the returned rows (2-D samples). */
function checkDiversity(report: GenerateReport, samples: ArrayLike<number>, kept: number[]): void {
  const rows = kept.reduce((a, b) => a + b, 0);
  expect(report.diversity?.space).toBe('samples');
  expect(report.diversity?.vendi).toBeCloseTo(vendiScore(samples, rows, 2), 9);
  let at = 0;
  report.trace.forEach((t, i) => {
    const part = Array.from(samples).slice(2 * at, 2 * (at + kept[i]));
    at += kept[i];
    expect(t.diversity?.vendi).toBeCloseTo(vendiScore(part, kept[i], 2), 9);
    const m = meanPairwiseCosineDistance(part, kept[i], 2);
    if (kept[i] > 1) expect(t.diversity?.mean_cosine_distance).toBeCloseTo(m, 9);
    else expect(t.diversity?.mean_cosine_distance).toBeNull();
  });
}

describe('library (JSON keys)', () => {
  it('refuses alpha where it does not apply, beside lambda or diversity, and out of range', async () => {
    const e1 = await expectCode(() => generate({ ...gmm, algorithm: 'evosearch', alpha: 1 }), 'ARGUMENT');
    expect(e1.message).toMatch(/^alpha: evosearch searches for the best sample/);
    const e2 = await expectCode(
      () => generate({ ...gmm, algorithm: 'particles', alpha: 1, algorithmOptions: { lambda: 3 } }),
      'ARGUMENT',
    );
    expect(e2.message).toMatch(/give alpha or algorithmOptions.lambda, not both/);
    const e3 = await expectCode(() => generate({ ...gmm, algorithm: 'best-of-n', alpha: 1, diversity: 1 }), 'ARGUMENT');
    expect(e3.message).toMatch(/alpha and diversity do not go together/);
    const e4 = await expectCode(() => generate({ ...gmm, alpha: 0, algorithm: 'particles' }), 'ARGUMENT');
    expect(e4.message).toMatch(/alpha must be a number > 0, got 0/);
    const e5 = await expectCode(() => generate({ ...gmm, diversity: -1 }), 'ARGUMENT');
    expect(e5.message).toMatch(/diversity must be a number ≥ 0, got -1/);
  });

  it('reports the diversity of all rows and of each search, and the fields in its config', async () => {
    const r = await generate({ ...gmm, algorithm: 'best-of-n', n: 2, keep: 3, diversity: 0.5 });
    expect(r.report.config).toMatchObject({ diversity: 0.5 });
    checkDiversity(r.report, r.samples, r.report.kept);
  });
});

describe('CLI (flags)', () => {
  const run = (...args: string[]) =>
    spawnSync(process.execPath, [cli, 'generate', '--out', fs.mkdtempSync(path.join(os.tmpdir(), 'ds-t-')), ...args], {
      encoding: 'utf8',
      timeout: 120_000,
    });
  it('names --alpha, --lambda and --diversity in refusals (exit 2)', () => {
    const cases: Array<[string[], RegExp]> = [
      [['--model', 'gmm2d', '--algorithm', 'zero-order', '--alpha', '1'], /--alpha: zero-order searches for the best/],
      [['--model', 'gmm2d', '--algorithm', 'particles', '--alpha', '1', '--lambda', '2'], /give --alpha or --lambda/],
      [['--model', 'gmm2d', '--diversity', 'lots'], /--diversity must be a number ≥ 0, got 'lots'/],
      [['--model', 'gmm2d', '--algorithm', 'particles', '--alpha', '-1'], /--alpha must be a number > 0, got '-1'/],
    ];
    for (const [args, msg] of cases) {
      const r = run(...args);
      expect(r.status, `${args.join(' ')}: ${r.stderr}`).toBe(2);
      expect(r.stderr).toMatch(msg);
    }
  });

  it('--alpha with particles writes the draws and a report with diversity and the config', () => {
    const out = fs.mkdtempSync(path.join(os.tmpdir(), 'ds-t-'));
    const args = ['--model', 'gmm2d', '--algorithm', 'particles', '--alpha', '0.5', '--n', '3', '--budget', '300'];
    const r = spawnSync(process.execPath, [cli, 'generate', '--out', out, '--steps', '10', ...args], {
      encoding: 'utf8',
      timeout: 120_000,
    });
    expect(r.status, r.stderr).toBe(0);
    const report = JSON.parse(fs.readFileSync(path.join(out, 'report.json'), 'utf8')) as GenerateReport;
    expect(report.config).toMatchObject({ alpha: 0.5, diversity: 0 });
    expect(report.trace).toHaveLength(3);
    expect(report.diversity?.vendi).toBeGreaterThanOrEqual(1);
  });
});

describe('HTTP (JSON keys)', () => {
  let server: DiffusionServer;
  let base: string;
  beforeAll(async () => {
    server = createServer(createEngine({ threads: 1 }));
    base = `http://127.0.0.1:${(await server.listen(0, '127.0.0.1')).port}`;
  });
  afterAll(() => server?.close(0));
  const post = (body: unknown) =>
    fetch(`${base}/v1/generate`, {
      method: 'POST',
      body: JSON.stringify(body),
      headers: { 'content-type': 'application/json' },
    });

  it('400 naming alpha; 200 with the report diversity', async () => {
    const bad = await post({ ...gmm, algorithm: 'beam', alpha: 1 });
    expect(bad.status).toBe(400);
    const e = (await bad.json()) as { error: { code: string; message: string } };
    expect(e.error.code).toBe('ARGUMENT');
    expect(e.error.message).toMatch(/^alpha: beam searches for the best sample/);
    const ok = await post({ ...gmm, algorithm: 'best-of-n', n: 2, keep: 2, diversity: 1 });
    expect(ok.status).toBe(200);
    const j = (await ok.json()) as { samples: string; report: GenerateReport };
    const buf = Buffer.from(j.samples, 'base64');
    const x = new Float32Array(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.length));
    checkDiversity(j.report, x, j.report.kept);
  });
});

describe.skipIf(!haveRedis)('queue (JSON keys, real Redis)', () => {
  let redis: RedisServer;
  let q: DiffusionQueue;
  let w: DiffusionWorker;
  beforeAll(async () => {
    redis = await RedisServer.start();
    q = createQueue({ connection: redis.url, name: `target-${process.pid}` });
    w = createWorker({ connection: redis.url, name: q.name, engine: { threads: 1 } });
    await w.ready();
  });
  afterAll(async () => {
    await w?.close();
    await q?.close();
    await redis?.stop();
  });

  it('refuses alpha for a greedy algorithm at submit; a job with diversity reports it', async () => {
    const e = await expectCode(() => q.submit({ ...gmm, algorithm: 'paths', alpha: 1 }), 'ARGUMENT');
    expect(e.message).toMatch(/^alpha: paths searches for the best sample/);
    const r = await q.wait(await q.submit({ ...gmm, algorithm: 'best-of-n', n: 2, keep: 2, diversity: 1 }), {
      timeoutMs: 60_000,
    });
    const local = await generate({ ...gmm, algorithm: 'best-of-n', n: 2, keep: 2, diversity: 1 });
    expect(Array.from(r.samples!)).toEqual(Array.from(local.samples));
    checkDiversity(r.report, r.samples!, r.report.kept);
  });
});
