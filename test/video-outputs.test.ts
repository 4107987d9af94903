/**
 * Video outputs: the frame grid (one row per clip), an animated GIF per clip decoded by an
 * independent decoder (omggif) back to the frames' bytes, samples.npy [n, T, C, H, W] read back by
 * NumPy, report.json naming the files, and the CLI writing all of them for the video fixture.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { clipGif, gridGif } from '../src/io/gif';
import { readNpy } from '../src/io/npy';
import { gridPng } from '../src/io/png';
import { writeSampleFiles } from '../src/io/sample-files';
import { expectCode, fixture, mulberry32, randn } from './helpers';
import { byteOf, readGif, readPng } from './video-helpers';

const cli = path.join(__dirname, '..', 'lib', 'cli', 'index.js');
const tmp = () => fs.mkdtempSync(path.join(os.tmpdir(), 'ds-video-'));

/** Values in about [-1.3, 1.3]: some clamp at both ends. */
const clips = (shape: number[], seed = (Math.random() * 1e6) | 0) =>
  randn(
    shape.reduce((a, b) => a * b, 1),
    seed,
  ).map((v) => 0.6 * v);

/** Frame t of clip i at GIF or grid pixel (x, y) of a tile drawn at `scale`: channel k of the sample pixel. */
const at = (d: Float32Array, s: number[], i: number, t: number, k: number, y: number, x: number, scale: number) => {
  const [, T, C, H, W] = s;
  return d[(((i * T + t) * C + k) * H + Math.floor(y / scale)) * W + Math.floor(x / scale)];
};

/** Checks each GIF frame of clip i (grey: R = G = B = the sample's byte). */
function expectClip(gif: Buffer, d: Float32Array, s: number[], i: number, scale: number, range: [number, number]) {
  const g = readGif(gif);
  const [, T, , H, W] = s;
  expect([g.width, g.height, g.frames.length]).toEqual([W * scale, H * scale, T]);
  for (let t = 0; t < T; t++)
    for (let y = 0; y < g.height; y++)
      for (let x = 0; x < g.width; x++) {
        const want = byteOf(at(d, s, i, t, 0, y, x, scale), ...range);
        const p = (y * g.width + x) * 4;
        expect([g.frames[t][p], g.frames[t][p + 1], g.frames[t][p + 2], g.frames[t][p + 3]]).toEqual([
          want,
          want,
          want,
          255,
        ]);
      }
  return g;
}

describe('the frame grid', () => {
  it('one row per clip, its frames left to right, each pixel the sample byte, white gaps', () => {
    const s = [3, 5, 1, 6, 7];
    const d = clips(s);
    const scale = 2;
    const png = readPng(gridPng(d, s, [-1, 1], scale));
    const tw = 7 * scale + 1,
      th = 6 * scale + 1;
    expect([png.width, png.height, png.ch]).toEqual([5 * tw + 1, 3 * th + 1, 1]);
    for (let y = 0; y < png.height; y++)
      for (let x = 0; x < png.width; x++) {
        const [tx, ty] = [(x - 1) % tw, (y - 1) % th];
        const gap = x === 0 || y === 0 || tx === tw - 1 || ty === th - 1;
        const i = Math.floor((y - 1) / th),
          t = Math.floor((x - 1) / tw);
        const want = gap ? 255 : byteOf(at(d, s, i, t, 0, ty, tx, scale));
        if (png.px[y * png.width + x] !== want) expect([x, y, png.px[y * png.width + x]]).toEqual([x, y, want]);
      }
  });
});

describe('animated GIFs (gifenc), decoded by omggif', () => {
  it('a grey clip: one frame per time step, every pixel the frame byte, looping at the frame rate', () => {
    const s = [2, 4, 1, 5, 3];
    const d = clips(s);
    for (const i of [0, 1]) {
      const g = expectClip(clipGif(d, s, i, { fps: 5, scale: 3 }), d, s, i, 3, [-1, 1]);
      expect(g.delays).toEqual([20, 20, 20, 20]);
      expect(g.loops).toBe(0);
    }
  });

  it('another value range maps to 0..255 the same way', () => {
    const s = [1, 3, 1, 4, 4];
    const d = clips(s).map((v) => 3 * v + 0.5);
    expectClip(clipGif(d, s, 0, { range: [0, 1], scale: 1 }), d, s, 0, 1, [0, 1]);
  });

  it('an RGB clip of at most 256 colours keeps each colour exactly', () => {
    const rnd = mulberry32((Math.random() * 1e6) | 0);
    const colours = Array.from({ length: 40 }, () => [0, 1, 2].map(() => Math.floor(rnd() * 256)));
    const s = [1, 3, 3, 4, 5];
    const [, T, C, H, W] = s;
    const d = new Float32Array(T * C * H * W);
    const pick: number[] = [];
    for (let t = 0; t < T; t++)
      for (let p = 0; p < H * W; p++) {
        const c = colours[Math.floor(rnd() * colours.length)];
        pick.push(...c);
        for (let k = 0; k < 3; k++) d[(t * C + k) * H * W + p] = (c[k] / 255) * 2 - 1;
      }
    const g = readGif(clipGif(d, s, 0, { scale: 1 }));
    for (let t = 0; t < T; t++)
      for (let p = 0; p < H * W; p++)
        expect(Array.from(g.frames[t].subarray(4 * p, 4 * p + 3))).toEqual(
          pick.slice(3 * (t * H * W + p), 3 * (t * H * W + p) + 3),
        );
  });

  it('all clips at once: frame t shows frame t of every clip in a square grid', () => {
    const s = [3, 2, 1, 4, 4];
    const d = clips(s);
    const g = readGif(gridGif(d, s, { scale: 2, fps: 10 }));
    const tw = 4 * 2 + 1;
    expect([g.width, g.height, g.frames.length]).toEqual([2 * tw + 1, 2 * tw + 1, 2]);
    expect(g.delays).toEqual([10, 10]);
    for (let t = 0; t < 2; t++)
      for (let i = 0; i < 3; i++)
        for (let y = 0; y < 8; y++)
          for (let x = 0; x < 8; x++) {
            const [ox, oy] = [1 + (i % 2) * tw, 1 + Math.floor(i / 2) * tw];
            expect(g.frames[t][((oy + y) * g.width + ox + x) * 4]).toBe(byteOf(at(d, s, i, t, 0, y, x, 2)));
          }
  });

  it('refuses shapes without pixels (SHAPE), a clip outside the samples and a frame rate ≤ 0 (ARGUMENT)', async () => {
    await expectCode(() => clipGif(new Float32Array(8), [4, 2], 0), 'SHAPE');
    const s = [2, 2, 1, 2, 2];
    await expectCode(() => clipGif(clips(s), s, 2), 'ARGUMENT');
    await expectCode(() => clipGif(clips(s), s, 0, { fps: 0 }), 'ARGUMENT');
  });
});

describe('the files of a video result', () => {
  it('samples.npy [n, T, C, H, W] read back by NumPy and readNpy, grid, one GIF per row, their names', () => {
    const out = tmp();
    const s = [3, 4, 1, 8, 8];
    const d = clips(s);
    const files = writeSampleFiles(out, { samples: d, shape: s, latents: null, valueRange: [-1, 1], fps: 4 });
    expect(files).toEqual({
      samples: 'samples.npy',
      latents: null,
      grid: 'grid.png',
      animations: ['clip-0.gif', 'clip-1.gif', 'clip-2.gif'],
    });
    const back = readNpy(path.join(out, 'samples.npy'));
    expect(back.shape).toEqual(s);
    expect(back.data).toEqual(d);
    // NumPy comes with Debian's python3-torch (the models' exporter).
    const code =
      'import json, numpy as np, sys; a = np.load(sys.argv[1]); ' +
      'print(json.dumps([list(a.shape), str(a.dtype), [float(v) for v in a[2, 3, 0, 7]]]))';
    const py = spawnSync('/usr/bin/python3', ['-c', code, path.join(out, 'samples.npy')], { encoding: 'utf8' });
    expect(py.stderr).toBe('');
    expect(JSON.parse(py.stdout)).toEqual([s, 'float32', Array.from(d.subarray(256 * 2 + 64 * 3 + 56, 256 * 3))]);
    files.animations.forEach((f, i) => expectClip(fs.readFileSync(path.join(out, f)), d, s, i, 4, [-1, 1]));
  });

  it('images write no animations; a missing directory is made, one that cannot be is ARGUMENT', async () => {
    const out = path.join(tmp(), 'a', 'b');
    const set = { samples: clips([2, 1, 4, 4]), shape: [2, 1, 4, 4], latents: null, valueRange: null };
    expect(writeSampleFiles(out, set).animations).toEqual([]);
    expect(fs.readdirSync(out).sort()).toEqual(['grid.png', 'samples.npy']);
    const e = await expectCode(() => writeSampleFiles(path.join(out, 'grid.png', 'x'), set), 'ARGUMENT');
    expect(e.message).toMatch(/cannot create '.*grid\.png\/x'/);
  });
});

describe('the CLI on the video fixture', () => {
  it('generate --algorithm evosearch writes samples, the frame grid and a GIF per clip, named in report.json', () => {
    const out = tmp();
    const r = spawnSync(
      process.execPath,
      [
        cli,
        'generate',
        '--model',
        fixture('video-tiny.pt'),
        '--prompt',
        'a bag moving left',
        '--verifier',
        fixture('video-verifier.pt'),
        '--algorithm',
        'evosearch',
        '--budget',
        '100',
        '--steps',
        '6',
        '--keep',
        '2',
        '--out',
        out,
      ],
      { encoding: 'utf8', timeout: 120_000 },
    );
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/grid\.png, clip-0\.gif, clip-1\.gif/);
    const report = JSON.parse(fs.readFileSync(path.join(out, 'report.json'), 'utf8'));
    expect(report.files).toEqual({
      samples: 'samples.npy',
      latents: null,
      grid: 'grid.png',
      animations: ['clip-0.gif', 'clip-1.gif'],
    });
    expect(report.nfe_used).toBeLessThanOrEqual(100);
    expect(report.fps).toBe(4);
    const { data, shape } = readNpy(path.join(out, 'samples.npy'));
    expect(shape).toEqual([2, 4, 1, 8, 8]);
    expect(report.shape).toEqual(shape);
    expect(data.every(Number.isFinite)).toBe(true);
    report.files.animations.forEach((f: string, i: number) => {
      const g = expectClip(fs.readFileSync(path.join(out, f)), data, shape, i, 4, [-1, 1]);
      expect(g.delays).toEqual([25, 25, 25, 25]);
    });
    const png = readPng(fs.readFileSync(path.join(out, 'grid.png')));
    expect([png.width, png.height]).toEqual([4 * 33 + 1, 2 * 33 + 1]);
  });
});
