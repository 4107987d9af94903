/**
 * Video over HTTP and the queue: serve's answer carries the 5-D shape and the samples, `Accept:
 * image/gif` gives the clips animated (decoded by omggif back to the answer's samples),
 * `image/png` the frame grid, points are 406 for a GIF; a queue job's result (inline and in a
 * results directory) carries the shape, and `submit --wait --out` writes the animations.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEngine } from '../src/engine/engine';
import { readNpy } from '../src/io/npy';
import { createQueue, createWorker } from '../src/queue';
import { createServer, type DiffusionServer } from '../src/server/server';
import { fixtures } from './helpers';
import { cli, haveRedis, RedisServer } from './queue-helpers';
import { byteOf, readGif, readPng } from './video-helpers';

const SHAPE = [4, 1, 8, 8];
const REQ = {
  model: 'video-tiny.pt',
  verifier: ['video-verifier.pt'],
  prompt: 'a bag moving left',
  algorithm: 'evosearch',
  budget: 80,
  steps: 6,
  n: 3,
  seed: 3,
};
const fromB64 = (s: string) => {
  const b = Buffer.from(s, 'base64');
  return new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.length));
};

describe('serve', () => {
  let server: DiffusionServer, base: string;
  beforeAll(async () => {
    server = createServer(createEngine({ threads: 1 }), { modelsDir: fixtures });
    base = `http://127.0.0.1:${(await server.listen(0, '127.0.0.1')).port}`;
  });
  afterAll(() => server?.close(0));
  const post = (body: unknown, accept = 'application/json') =>
    fetch(`${base}/v1/generate`, {
      method: 'POST',
      body: JSON.stringify(body),
      headers: { 'content-type': 'application/json', accept },
    });

  it('answers the 5-D shape and samples; image/gif the clips animated together; image/png the frame grid', async () => {
    const res = await post(REQ);
    expect(res.status).toBe(200);
    const a = await res.json();
    expect(a.shape).toEqual([3, ...SHAPE]);
    expect(a.report.shape).toEqual(a.shape);
    expect(a.report.fps).toBe(4);
    expect(a.report.nfe_used).toBeLessThanOrEqual(3 * 80);
    const x = fromB64(a.samples);
    expect(x.length).toBe(3 * 256);

    const gif = await post(REQ, 'image/gif');
    expect(gif.status).toBe(200);
    expect(gif.headers.get('content-type')).toBe('image/gif');
    expect(gif.headers.get('x-shape')).toBe('3,4,1,8,8');
    const g = readGif(new Uint8Array(await gif.arrayBuffer()));
    // 3 clips in a 2 × 2 grid of 8·4-pixel tiles with 1-pixel gaps, 4 frames at 4 fps.
    expect([g.width, g.height, g.frames.length, g.delays[0]]).toEqual([67, 67, 4, 25]);
    for (let t = 0; t < 4; t++)
      for (let i = 0; i < 3; i++)
        for (let y = 0; y < 32; y++)
          for (let px = 0; px < 32; px++) {
            const [ox, oy] = [1 + (i % 2) * 33, 1 + Math.floor(i / 2) * 33];
            const v = x[i * 256 + t * 64 + Math.floor(y / 4) * 8 + Math.floor(px / 4)];
            expect(g.frames[t][((oy + y) * g.width + ox + px) * 4]).toBe(byteOf(v));
          }

    const png = await post(REQ, 'image/png');
    expect(png.headers.get('content-type')).toBe('image/png');
    const p = readPng(Buffer.from(await png.arrayBuffer()));
    expect([p.width, p.height]).toEqual([4 * 33 + 1, 3 * 33 + 1]); // a row of 4 frames per clip
    expect(p.px[34 * p.width + 1 + 2 * 33]).toBe(byteOf(x[256 + 2 * 64])); // clip 1, frame 2, pixel (0, 0)
  });

  it('the event stream: previews of a clip (its first frame as a PNG), then the 5-D result', async () => {
    const res = await fetch(`${base}/v1/generate/stream`, {
      method: 'POST',
      body: JSON.stringify({ ...REQ, n: 1, preview: true }),
      headers: { 'content-type': 'application/json' },
    });
    const events = (await res.text()).split('\n\n').filter(Boolean);
    const data = (kind: string) =>
      events.filter((e) => e.includes(`event: ${kind}`)).map((e) => JSON.parse(/^data: (.*)$/m.exec(e)![1]));
    const previews = data('progress').filter((p) => p.preview);
    expect(previews.length).toBeGreaterThan(0);
    for (const p of previews) {
      expect(p.preview.shape).toEqual(SHAPE);
      expect(Buffer.from(p.preview.png, 'base64').subarray(1, 4).toString()).toBe('PNG');
    }
    const [result] = data('result');
    expect(result.shape).toEqual([1, ...SHAPE]);
    expect(fromB64(result.samples).length).toBe(256);
  });

  it('a GIF of points is 406 with a clear message', async () => {
    const res = await post({ model: 'gmm2d', budget: 20, steps: 4 }, 'image/gif');
    expect(res.status).toBe(406);
    const e = await res.json();
    expect(e.error.code).toBe('NOT_ACCEPTABLE');
    expect(e.error.message).toMatch(/samples \[1,2\] have no pixels to animate/);
  });
});

describe.skipIf(!haveRedis)('the queue (real Redis)', () => {
  let redis: RedisServer;
  const open: Array<{ close(): Promise<void> }> = [];
  beforeAll(async () => {
    redis = await RedisServer.start();
  });
  afterAll(async () => {
    for (const c of open) await c.close();
    await redis?.stop();
  });

  it('a job carries the 5-D shape: inline, and from a results directory (samples.npy)', async () => {
    const resultsDir = fs.mkdtempSync(path.join(os.tmpdir(), 'ds-video-results-'));
    const name = `video-${process.pid}`;
    const q = createQueue({ connection: redis.url, name });
    const w = createWorker({
      connection: redis.url,
      name,
      modelsDir: fixtures,
      resultsDir,
      inlineMaxBytes: 4 * 256 * 2,
      engine: { threads: 1 },
    });
    open.push(w, q);
    await w.ready();
    const small = await q.wait(await q.submit({ ...REQ, n: 1 } as never), { timeoutMs: 60_000 });
    expect(small.stored).toBe('redis');
    expect(small.shape).toEqual([1, ...SHAPE]);
    expect(small.samples!.length).toBe(256);
    expect(small.report.fps).toBe(4);
    const big = await q.wait(await q.submit({ ...REQ, n: 3 } as never), { timeoutMs: 60_000 });
    expect(big.stored).toBe('dir');
    expect(big.shape).toEqual([3, ...SHAPE]);
    expect(readNpy(path.join(big.path!, 'samples.npy')).shape).toEqual([3, ...SHAPE]);
    expect(big.samples!.length).toBe(3 * 256);
    expect(big.samples!.slice(0, 256)).toEqual(small.samples); // sample i does not depend on n

    // The CLI's submit --wait --out writes what generate writes, animations included.
    const out = fs.mkdtempSync(path.join(os.tmpdir(), 'ds-video-submit-'));
    const args = ['submit', '--redis', redis.url, '--queue', name, '--model', 'video-tiny.pt'];
    args.push('--verifier', 'video-verifier.pt', '--prompt', REQ.prompt, '--budget', '80', '--steps', '6');
    // Not spawnSync: the worker runs in this process and must keep taking jobs meanwhile.
    const all = [cli, ...args, '--n', '2', '--seed', '3', '--wait', '--out', out];
    await promisify(execFile)(process.execPath, all, { timeout: 120_000 });
    const report = JSON.parse(fs.readFileSync(path.join(out, 'report.json'), 'utf8'));
    expect(report.files.animations).toEqual(['clip-0.gif', 'clip-1.gif']);
    const x = readNpy(path.join(out, 'samples.npy'));
    expect(x.shape).toEqual([2, ...SHAPE]);
    expect(x.data.slice(0, 256)).toEqual(small.samples);
    const g = readGif(fs.readFileSync(path.join(out, 'clip-1.gif')));
    expect(g.frames.length).toBe(4);
    expect(g.frames[3][0]).toBe(byteOf(x.data[256 + 3 * 64]));
  });
});
