/**
 * Video as a sample kind: every search on the tiny video flow (test/fixtures/make_video_fixtures.py,
 * samples [n, T, C, H, W] = [n, 4, 1, 8, 8]) within its budget, with the verifier's rewards
 * recomputed here in float64 from the samples and their prompts; the same search on the same
 * numbers seen as images [n, T·C, H, W] finds the same samples bit for bit (EvoSearch's and
 * paths' intermediate states included); EvoSearch's mutation of 5-D states element by element;
 * the engine merging video rows of concurrent requests; bad shapes refused with typed errors. The
 * shipped fashion-video through every search, and its motion verifier's rewards as python3-torch
 * computes them from the returned clips and the prompt.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { createEngine } from '../src/engine/engine';
import { generate, type GenerateOptions } from '../src/generate';
import { writeNpy } from '../src/io/npy';
import { validateCard } from '../src/models/card';
import { LatentDecoder } from '../src/models/decoder';
import { Denoiser } from '../src/models/denoiser';
import type { ModuleInput, NativeTensor } from '../src/native';
import * as ops from '../src/ops';
import { uniform } from '../src/schedules';
import { algorithms } from '../src/search';
import { Budget } from '../src/search/budget';
import { evoSearch } from '../src/search/evosearch';
import { tensor } from '../src/tensor';
import { TorchScriptVerifier } from '../src/verifiers/torchscript';
import { expectCode, fixture, sdeMutation } from './helpers';
import { py, python } from './torch-python';

process.env.OMP_WAIT_POLICY ??= 'PASSIVE';

const FRAME = [4, 1, 8, 8];
const PER = 256;
// The fixture's text encoder (make_video_fixtures.py), recomputed: column 0 of TABLE and the tokenizer.
const VOCAB = ['<pad>', '<unk>', 'a', 'shirt', 'bag', 'moving', 'left', 'right', 'up', 'down'];
const col0 = (i: number) => ((i * 7) % 5) / 5 - 0.4;
/** pooled[:, 0] of a prompt: the mean of column 0 over its (at most 6) tokens. */
function pooled0(prompt: string): number {
  const ids = prompt
    .toLowerCase()
    .split(/\s+/)
    .map((w) => w.replace(/[^a-z/-]/g, ''))
    .filter(Boolean)
    .map((w) => Math.max(1, VOCAB.indexOf(w)))
    .slice(0, 6);
  return ids.reduce((s, i) => s + col0(i), 0) / Math.max(1, ids.length);
}
/** video-verifier.pt in float64: −mean over t, c, h, w of (x[t] − (t+1)/T · p)². */
function reward(x: Float32Array, prompt: string): number {
  const p = pooled0(prompt);
  let s = 0;
  for (let t = 0; t < 4; t++)
    for (let k = 0; k < 64; k++) {
      const d = x[t * 64 + k] - ((t + 1) / 4) * p;
      s += d * d;
    }
  return -s / PER;
}

const NAMES = Object.keys(algorithms);
const PROMPTS = ['a bag moving left', 'a shirt moving up'];
const request = (algorithm: string, o: Partial<GenerateOptions> = {}): GenerateOptions => ({
  model: fixture('video-tiny.pt'),
  verifier: [fixture('video-verifier.pt')],
  prompt: PROMPTS,
  algorithm: algorithm as GenerateOptions['algorithm'],
  budget: 120,
  steps: 6,
  seed: 11,
  keep: 2,
  ...o,
});

describe('every search on video samples [n, T, C, H, W]', () => {
  it.each(NAMES)('%s: within the budget, 5-D finite samples, rewards of each row and its prompt', async (name) => {
    const seed = (Math.random() * 1e6) | 0;
    const e = createEngine({ threads: 1 });
    const r = await e.generate(request(name, { seed })).finally(() => e.close());
    // The rows the engine passed through the denoiser's forward, counted outside the searches.
    const forwarded = e.metrics().models.find((m) => m.kind === 'denoiser')!.rows;
    expect(forwarded).toBe(r.report.nfe_used);
    const rows = r.report.kept.reduce((a, b) => a + b, 0);
    expect(r.shape).toEqual([rows, ...FRAME]);
    expect(r.report.shape).toEqual(r.shape);
    expect(r.samples.length).toBe(rows * PER);
    expect(r.samples.every(Number.isFinite)).toBe(true);
    for (const t of r.report.trace) expect(t.nfe).toBeLessThanOrEqual(120);
    expect(r.report.nfe_used).toBeLessThanOrEqual(120 * PROMPTS.length);
    expect(r.report.fps).toBe(4); // the card's
    expect(r.prompts).toHaveLength(rows);
    r.rewards.forEach((got, i) => {
      const want = reward(r.samples.subarray(i * PER, (i + 1) * PER), r.prompts![i]);
      expect(Math.abs(got - want)).toBeLessThanOrEqual(1e-6 + 1e-5 * Math.abs(want));
    });
  });

  it('guidance evaluates the null condition too: twice the NFE per step, still within the budget', async () => {
    const r = await generate(request('best-of-n', { guidance: 3, keep: 1, budget: 48 }));
    expect(r.report.nfe_used).toBe(2 * 48); // 4 samples of 6 steps × 2 per prompt
    expect(r.samples.every(Number.isFinite)).toBe(true);
  });
});

describe('the shipped fashion-video [8, 1, 32, 32]', () => {
  const shippedReq = (algorithm: string, o: Partial<GenerateOptions> = {}): GenerateOptions => ({
    model: 'fashion-video',
    prompt: 'a bag moving up',
    algorithm: algorithm as GenerateOptions['algorithm'],
    budget: 60,
    steps: 6,
    seed: (Math.random() * 1e6) | 0,
    ...o,
  });

  it.each(NAMES)('%s: within the budget (rows counted by the engine), finite clips', async (name) => {
    const e = createEngine({ threads: 1 });
    const r = await e.generate(shippedReq(name)).finally(() => e.close());
    expect(e.metrics().models.find((m) => m.kind === 'denoiser')!.rows).toBe(r.report.nfe_used);
    expect(r.report.nfe_used).toBeLessThanOrEqual(60);
    expect(r.shape).toEqual([1, 8, 1, 32, 32]);
    expect(r.samples.every(Number.isFinite)).toBe(true);
  });

  it.skipIf(!python)(
    "hands the verifier the clips and the prompt's tensors: rewards as python3-torch computes them",
    async () => {
      const r = await generate(shippedReq('best-of-n', { verifier: ['video-motion'], keep: 3, budget: 36 }));
      expect(r.shape).toEqual([3, 8, 1, 32, 32]);
      // The card's tokenizer rule, the text encoder and the verifier, run by libtorch from Python.
      const out = path.join(os.tmpdir(), `ds-video-${process.pid}.npy`);
      writeNpy(out, r.samples, r.shape);
      const script =
        'import json, re, sys, numpy as np, torch\n' +
        'a = json.load(open(sys.argv[1]))\n' +
        "files = {'model.json': ''}\n" +
        "enc = torch.jit.load('models/fashion-video-text.pt', _extra_files=files)\n" +
        "card = json.loads(files['model.json'])\n" +
        "words = [re.sub('[^a-z/-]', '', w) for w in a['prompt'].lower().split()]\n" +
        "ids = [card['vocab'].index(w) if w in card['vocab'] else 1 for w in words if w][: card['max_len']]\n" +
        "ids += [0] * (card['max_len'] - len(ids))\n" +
        "x = torch.from_numpy(np.load(a['samples']))\n" +
        'text, mask = enc(torch.tensor([ids] * x.shape[0]))\n' +
        "v = torch.jit.load('models/video-motion.pt')\n" +
        'print(json.dumps(v(x, text, mask).tolist()))\n';
      let want: number[];
      try {
        want = py(script, { samples: out, prompt: 'a bag moving up' });
      } finally {
        fs.rmSync(out, { force: true });
      }
      r.rewards.forEach((got, i) =>
        expect(Math.abs(got - want[i])).toBeLessThanOrEqual(1e-4 * (1 + Math.abs(want[i]))),
      );
    },
  );
});

describe('the same search on the same numbers seen as images [n, T·C, H, W]', () => {
  it.each(NAMES)('%s: the same samples bit for bit, the same rewards, NFE and trace', async (name) => {
    const seed = (Math.random() * 1e6) | 0;
    const o = { seed, budget: 150 };
    const video = await generate(request(name, o));
    const flat = await generate(
      request(name, { ...o, model: fixture('video-tiny-flat.pt'), verifier: [fixture('video-verifier-flat.pt')] }),
    );
    expect(video.shape.slice(1)).toEqual(FRAME);
    expect(flat.shape.slice(1)).toEqual([4, 8, 8]);
    expect(video.samples).toEqual(flat.samples);
    expect(video.rewards).toEqual(flat.rewards);
    expect(video.report.nfe_used).toBe(flat.report.nfe_used);
    expect(video.report.trace).toEqual(flat.report.trace);
  });

  it.each([
    ['evosearch', 'sde', 1],
    ['paths', 'heun', 1],
    ['best-of-n', 'heun', 2.5],
    ['zero-order', 'sde', 1],
  ] as const)('%s with the %s sampler, guidance %s: the same samples bit for bit', async (name, sampler, guidance) => {
    const o = { seed: (Math.random() * 1e6) | 0, budget: 150, sampler, guidance, keep: 1 };
    const video = await generate(request(name, o));
    const flat = await generate(
      request(name, { ...o, model: fixture('video-tiny-flat.pt'), verifier: [fixture('video-verifier-flat.pt')] }),
    );
    expect(video.samples).toEqual(flat.samples);
    expect(video.rewards).toEqual(flat.rewards);
    expect(video.report.nfe_used).toBe(flat.report.nfe_used);
  });
});

describe("EvoSearch's intermediate-state mutation on 5-D states", () => {
  let model: Denoiser, verifier: TorchScriptVerifier;
  let forwards: { x: Float32Array; shape: number[]; sigma: number }[] = [];
  beforeAll(async () => {
    model = await Denoiser.load(fixture('video-class.pt'));
    verifier = await TorchScriptVerifier.load(fixture('video-class-verifier.pt'));
    const call = model.module.call.bind(model.module);
    model.module.call = async (method: string, inputs: ModuleInput[], s) => {
      if (method === 'forward') {
        const [x, sigma] = inputs as NativeTensor[];
        const sg = ((await sigma.toArray()) as Float32Array)[0];
        forwards.push({ x: (await x.toArray()) as Float32Array, shape: x.shape, sigma: sg });
      }
      return call(method, inputs, s);
    };
  });

  it('each child is x − (σ − √(σ² − s²))·ε̂(x) + s·ε of a 5-D state x at the level, per element', async () => {
    const S = 8,
      L = 3,
      [K0, K1, K2] = [4, 4, 5];
    const sigmas = uniform(S),
      sigma = sigmas[L];
    const seed = (Math.random() * 1e6) | 0;
    forwards = [];
    const o = { levels: [0, L], population: [K0, K1, K2], elites: 0 };
    const r = await evoSearch({ denoiser: model, verifier, cls: 1, budget: 1000, sigmas, seed }, o);
    expect(r.sample.shape).toEqual([1, ...FRAME]);
    r.sample.dispose();
    expect(forwards.every((f) => f.shape.slice(1).join() === FRAME.join())).toBe(true);
    const atL = forwards.filter((f) => Math.abs(f.sigma - sigma) < 1e-6);
    const kids = atL[atL.length - 1].x;
    expect(kids.length).toBe(K2 * PER);
    const cand = Float32Array.from(atL.slice(0, -1).flatMap((f) => Array.from(f.x)));
    const n = cand.length / PER;
    const t = tensor(cand, [n, ...FRAME]);
    const p = await model.predict(t, new Array(n).fill(sigma), new Array(n).fill(1), 1, new Budget(1e9));
    const eps = (await p.eps.toArray()) as Float32Array;
    [t, p.x0, p.eps].forEach((x) => x.dispose());
    const { s, shift } = sdeMutation(sigmas, L, sigma);
    const ids = Array.from({ length: K2 }, (_, i) => K0 + K1 + i);
    const e = await ops.randn([K2, ...FRAME], { seed, ids, step: 102 });
    const noise = (await e.toArray()) as Float32Array;
    e.dispose();
    for (let c = 0; c < K2; c++) {
      // The parent is the candidate that explains the child best; every element must then agree.
      let best = Infinity;
      for (let j = 0; j < n; j++) {
        let worst = 0;
        for (let k = 0; k < PER; k++) {
          const want = cand[j * PER + k] + shift * eps[j * PER + k] + s * noise[c * PER + k];
          worst = Math.max(worst, Math.abs(want - kids[c * PER + k]));
        }
        best = Math.min(best, worst);
      }
      expect(best).toBeLessThan(1e-5);
    }
  });

  it('draws the noise of a 5-D state as of the same state flattened (noise per element, not per shape)', async () => {
    const seed = (Math.random() * 1e6) | 0;
    const a = await ops.randn([3, ...FRAME], { seed, ids: [5, 9, 2], step: 7 });
    const b = await ops.randn([3, PER], { seed, ids: [5, 9, 2], step: 7 });
    expect(await a.toArray()).toEqual(await b.toArray());
    a.dispose();
    b.dispose();
  });
});

describe('the engine merges the video rows of concurrent requests', () => {
  it('four video requests and an image-shaped one at once: each as alone (within 1e-5), merged forwards', async () => {
    // Room for the rows of several searches in one forward (the CPU default, 32, holds one search's).
    const e = createEngine({ threads: 1, maxBatch: 256 });
    try {
      const flat = { model: fixture('video-tiny-flat.pt'), verifier: [fixture('video-verifier-flat.pt')] };
      const reqs = [
        ...['evosearch', 'best-of-n', 'zero-order', 'beam'].map((a, k) =>
          request(a, { seed: k, prompt: PROMPTS[k % 2] }),
        ),
        request('paths', { seed: 9, ...flat }),
      ];
      const alone = [];
      for (const q of reqs) alone.push(await e.generate(q));
      const together = await Promise.all(reqs.map((q) => e.generate(q)));
      together.forEach((t, k) => {
        expect(t.shape).toEqual(alone[k].shape);
        let d = 0;
        t.samples.forEach((v, i) => (d = Math.max(d, Math.abs(v - alone[k].samples[i]))));
        expect(d).toBeLessThanOrEqual(1e-5);
      });
      const video = e.metrics().models.find((m) => m.kind === 'denoiser' && m.model.endsWith('video-tiny.pt'));
      expect(video!.merged).toBeGreaterThan(0);
    } finally {
      await e.close();
    }
  });
});

describe('bad video shapes: typed errors that name the cause', () => {
  it('a card with a 5-dim sample_shape is MODEL_CARD', async () => {
    const e = await expectCode(() => Denoiser.load(fixture('video-5d.pt')), 'MODEL_CARD');
    expect(e.message).toMatch(/"sample_shape" \[2,4,1,8,8\] has 5 dims; at most 4/);
  });

  it("a card's fps outside (0, 1000] and a decoder's image_shape of 5 dims are MODEL_CARD", async () => {
    const card = { name: 'v', sample_shape: FRAME, prediction: 'velocity', path: 'rectified_flow' };
    for (const fps of [0, -4, 'fast', 5000]) {
      const e = await expectCode(() => validateCard({ ...card, fps }, 'v.pt', 'denoiser'), 'MODEL_CARD');
      expect(e.message).toMatch(/"fps" \(frames per second of video\) must be a number in \(0, 1000\]/);
    }
    expect(validateCard({ ...card, fps: 12.5 }, 'v.pt', 'denoiser').fps).toBe(12.5);
    const spec = { model: fixture('cond-decoder.pt'), image_shape: [2, ...FRAME] };
    const e = await expectCode(() => LatentDecoder.load(spec, [2]), 'MODEL_CARD');
    expect(e.message).toMatch(/"image_shape" \[2,4,1,8,8\] has 5 dims; at most 4/);
  });

  it('a verifier that scores each frame ([N, T]) is SHAPE, not N·T rewards', async () => {
    const o = {
      ...request('best-of-n'),
      prompt: undefined,
      class: 'bag',
      verifier: [fixture('video-frames-verifier.pt')],
    };
    const e = await expectCode(() => generate({ ...o, model: fixture('video-class.pt') }), 'SHAPE');
    expect(e.message).toMatch(/returned \[\d+,4\] for \d+ samples; want one score per sample/);
  });

  it('an image verifier on video samples is SHAPE naming both shapes', async () => {
    const e = await expectCode(
      () => generate({ ...request('best-of-n'), verifier: [fixture('video-verifier-flat.pt')] }),
      'SHAPE',
    );
    expect(e.message).toMatch(/takes samples of shape \[4,8,8\] \(its model card\), got \[4,1,8,8\]/);
  });
});
