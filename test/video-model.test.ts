/**
 * The shipped video stack (scripts/train/video/): fashion-video's card, its text encoder's tokenizer
 * against scripts/train/video/data.py, a guided forward against python3-torch running the same files,
 * and the verifiers on real moving clips drawn here from the Fashion-MNIST test split (test/moving-fmnist):
 * the motion verifier equals a float64 recomputation and ranks each clip's own direction above every
 * other; the class verifier prefers the clip's own class; the consistency verifier prefers a real clip
 * over the same clip with its garment swapped halfway.
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { NULL_CONDITION } from '../src/models/conditions';
import { Denoiser, type NfeMeter } from '../src/models/denoiser';
import { TextEncoder } from '../src/models/text-encoder';
import { tensor } from '../src/tensor';
import { TorchScriptVerifier } from '../src/verifiers/torchscript';
import { mulberry32, randn } from './helpers';
import { py, python } from './torch-python';
import { type Clip, DIRECTIONS, promptOf, randomClips, render, SIZE, T } from './moving-fmnist';

const root = path.join(__dirname, '..');
const have = fs.existsSync(path.join(root, 'models', 'fashion-video.pt'));
const meter: NfeMeter = { charge() {}, addModelTime() {} };
const SHAPE = [T, 1, SIZE, SIZE];

async function scores(v: TorchScriptVerifier, enc: TextEncoder, pixels: Float32Array, prompts: string[]) {
  const x = tensor(pixels, [prompts.length, ...SHAPE]);
  return v.score(x, new Array(prompts.length).fill(0), { condition: await enc.encode(prompts) });
}

/** Float64 motion score (scripts/train/video/verifiers.py's rule, restated): centroid velocity along − across. */
function motionScore(pixels: Float32Array, i: number, direction: number): number {
  const frame = SIZE * SIZE;
  const centroid = (t: number) => {
    let m = 0,
      r = 0,
      c = 0;
    for (let k = 0; k < frame; k++) {
      const x = Math.min(1, Math.max(-1, pixels[(i * T + t) * frame + k]));
      const p = Math.max(0, (x + 1) / 2 - 0.1);
      m += p;
      r += p * Math.floor(k / SIZE);
      c += p * (k % SIZE);
    }
    return [r / Math.max(m, 1e-3), c / Math.max(m, 1e-3)];
  };
  const [r0, c0] = centroid(0);
  const [r1, c1] = centroid(T - 1);
  const v = [(r1 - r0) / (T - 1), (c1 - c0) / (T - 1)];
  const unit = [
    [0, -1],
    [0, 1],
    [-1, 0],
    [1, 0],
  ][direction];
  const along = v[0] * unit[0] + v[1] * unit[1];
  const across = Math.abs(v[0] * unit[1] + v[1] * unit[0]);
  return Math.min(along, 16 / 7) - across;
}

describe.skipIf(!have)('the shipped video model and its verifiers', () => {
  it("the card names the frame axis, the prompt's conditions, its text encoder, provenance and metrics", async () => {
    const d = await Denoiser.load('fashion-video');
    // biome-ignore lint/suspicious/noExplicitAny: the card's JSON, read field by field
    const c = d.card as Record<string, any>;
    expect(c.sample_shape).toEqual(SHAPE);
    expect([c.kind, c.prediction, c.path]).toEqual(['denoiser', 'velocity', 'rectified_flow']);
    const enc = await TextEncoder.load(c.text_encoder);
    expect(d.conditionSpecs!.map((s) => s.name)).toEqual(enc.card.outputs);
    expect(d.conditions!.has(NULL_CONDITION)).toBe(true); // null_condition() loaded for guidance
    for (const k of ['command', 'seed', 'training_steps', 'training_time_minutes', 'param_count'])
      expect(c.provenance[k], k).toBeDefined();
    expect(c.provenance.training_time_minutes).toBeLessThanOrEqual(120);
    for (const k of ['class_accuracy', 'direction_accuracy', 'frame_agreement'])
      expect(c.metrics[k], k).toBeGreaterThanOrEqual(0);
    expect(c.metrics.by_guidance['1.0'].nfe_per_clip).toBe(20);
  });

  it.skipIf(!python)('tokenizes prompts as data.py and evaluates as python3-torch on the same files', async () => {
    const enc = await TextEncoder.load('fashion-video-text');
    const d = await Denoiser.load('fashion-video');
    const rand = mulberry32((Math.random() * 2 ** 31) | 0);
    const words = [
      'a',
      'A',
      'bag',
      'moving',
      'Left,',
      'up',
      'ankle',
      'boot',
      'shirt',
      'purple',
      't-shirt/top',
      'down!',
    ];
    const prompts = Array.from({ length: 3 }, () =>
      Array.from({ length: 1 + Math.floor(rand() * 9) }, () => words[Math.floor(rand() * words.length)]).join(' '),
    );
    const ids = [];
    for (const p of prompts) ids.push(d.registerCondition(await enc.encode([p])));
    const n = prompts.length,
      w = 1 + 2 * rand();
    const x = randn(n * T * SIZE * SIZE);
    const sigma = Array.from({ length: n }, () => rand());
    const { out } = await d.evaluate(tensor(x, [n, ...SHAPE]), sigma, ids, w, meter);
    const v = (await out.toArray()) as Float32Array;
    const ref = py(
      `import json, sys, torch
sys.path.insert(0, 'scripts/train/video'); import data as D
torch.set_num_threads(1)
a = json.load(open(sys.argv[1])); n = len(a['prompts'])
tokens = torch.tensor([D.tokenize(p) for p in a['prompts']])
enc = torch.jit.load('models/fashion-video-text.pt'); m = torch.jit.load('models/fashion-video.pt')
with torch.no_grad():
    text, mask = enc(tokens)
    x = torch.tensor(a['x']).view(n, 8, 1, 32, 32); s = torch.tensor(a['sigma'])
    nt, nm = m.null_condition()
    c = m(x, s, text, mask); u = m(x, s, nt.expand(n, -1, -1), nm.expand(n, -1))
print(json.dumps({'tokens': tokens.tolist(), 'v': (u + a['w'] * (c - u)).flatten().tolist()}))`,
      { prompts, x: Array.from(x), sigma, w },
    );
    prompts.forEach((p, i) => expect(Array.from(enc.tokenize(p).ids, Number), p).toEqual(ref.tokens[i]));
    v.forEach((val, i) => expect(Math.abs(val - ref.v[i])).toBeLessThan(2e-4));
  });

  it('the motion verifier equals float64 centroids and ranks the stated direction above the others', async () => {
    const enc = await TextEncoder.load('fashion-video-text');
    const v = await TorchScriptVerifier.load('video-motion');
    const clips = randomClips(24, mulberry32((Math.random() * 2 ** 31) | 0));
    const pixels = render(clips);
    const byDirection = [];
    for (let d = 0; d < 4; d++)
      byDirection.push(
        await scores(
          v,
          enc,
          pixels,
          clips.map((c) => promptOf(c.cls, d)),
        ),
      );
    clips.forEach((c, i) => {
      for (let d = 0; d < 4; d++) expect(Math.abs(byDirection[d][i] - motionScore(pixels, i, d))).toBeLessThan(1e-4);
      for (let d = 0; d < 4; d++)
        if (d !== c.direction) expect(byDirection[c.direction][i], DIRECTIONS[d]).toBeGreaterThan(byDirection[d][i]);
    });
  });

  it('the class verifier prefers the clip’s own class; consistency prefers one garment throughout', async () => {
    const enc = await TextEncoder.load('fashion-video-text');
    const cls = await TorchScriptVerifier.load('video-class');
    const cons = await TorchScriptVerifier.load('video-consistency');
    const rand = mulberry32((Math.random() * 2 ** 31) | 0);
    const clips = randomClips(40, rand);
    const pixels = render(clips);
    const own = await scores(
      cls,
      enc,
      pixels,
      clips.map((c) => promptOf(c.cls, c.direction)),
    );
    const other = await scores(
      cls,
      enc,
      pixels,
      clips.map((c) => promptOf((c.cls + 1 + Math.floor(rand() * 9)) % 10, c.direction)),
    );
    expect(own.filter((s, i) => s > other[i]).length).toBeGreaterThanOrEqual(36);
    // The second half of each clip shows the next clip's garment (of another class) on the same path.
    const next = (i: number) => clips.slice(i + 1).find((c) => c.cls !== clips[i].cls) ?? clips[0];
    const swapped = render(clips, (c: Clip, t) => (t < T / 2 ? c.garment : next(clips.indexOf(c)).garment));
    const prompts = clips.map((c) => promptOf(c.cls, c.direction));
    const real = await scores(cons, enc, pixels, prompts);
    const fake = await scores(cons, enc, swapped, prompts);
    expect(real.filter((s, i) => s > fake[i]).length).toBeGreaterThanOrEqual(36);
  });
});
