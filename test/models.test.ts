import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadModule } from '../src/module';
import { validateCard } from '../src/models/card';
import { shipped } from '../src/models/registry';
import { tensor } from '../src/tensor';
import { classTensor, floatTensor } from '../src/tensor-ops';
import type { NativeTensor } from '../src/native';
import { randn } from './helpers';
import { loadTestSplit } from './fmnist';

const root = path.join(__dirname, '..');
// The time-prediction module has its own contract and tests (test/adaptive.test.ts).
const present = shipped.filter((m) => m.kind !== 'tpm' && fs.existsSync(path.join(root, m.file)));

describe('shipped models', () => {
  it('models/ stays within 30 MB', () => {
    const size = fs
      .readdirSync(path.join(root, 'models'))
      .reduce((s, f) => s + fs.statSync(path.join(root, 'models', f)).size, 0);
    expect(size).toBeLessThan(30 * 1024 * 1024);
  });

  for (const m of present) {
    it(`${m.name}: loads, its card validates, forward has the right shape`, async () => {
      const mod = await loadModule(path.join(root, m.file));
      // Text encoders and decoders have cards of their own kind (checked by their loaders), no sample_shape.
      const own = m.kind === 'text_encoder' || m.kind === 'decoder';
      const card = own
        ? ({ sample_shape: [1], ...mod.card } as ReturnType<typeof validateCard>)
        : validateCard(mod.card, m.file, m.kind === 'denoiser' ? 'denoiser' : undefined);
      expect(card.name).toBeTruthy();
      expect(card.license).toBeTruthy();
      expect(card.provenance).toBeTruthy();
      const n = 3;
      const x = tensor(randn(n * card.sample_shape.reduce((a, b) => a * b, 1)), [n, ...card.sample_shape]);
      const cond = classTensor([0, 1 % Math.max(1, card.classes?.length ?? 1), 0]);
      if (m.kind === 'text_encoder') {
        const L = card.max_len as number;
        const out = (await mod.forward(tensor(new BigInt64Array(n * L).fill(2n), [n, L]))) as NativeTensor[];
        expect(out.map((t) => t.shape[0])).toEqual((card.outputs as string[]).map(() => n));
      } else if (m.kind === 'decoder') {
        const z = tensor(randn(n * (card.latent_shape as number[]).reduce((a, b) => a * b, 1)), [
          n,
          ...(card.latent_shape as number[]),
        ]);
        expect(((await mod.call('decode', [z])) as NativeTensor).shape).toEqual([n, ...(card.image_shape as number[])]);
      } else if (card.conditions || ((card.inputs as string[] | undefined)?.length ?? 0) > 1) {
        // Conditioned on named tensors: the model's own text encoder makes them.
        const { TextEncoder } = await import('../src/models/text-encoder');
        const enc = await TextEncoder.load(card.text_encoder as string);
        const c = await enc.encode(['a bag', 'a small dark shirt', 'a grey ankle boot']);
        if (m.kind === 'denoiser') {
          const v = (await mod.forward(x, floatTensor([1, 0.5, 0.1]), c.text, c.text_mask)) as NativeTensor;
          expect(v.shape).toEqual([n, ...card.sample_shape]);
        } else {
          expect(((await mod.forward(x, c.text, c.text_mask)) as NativeTensor).shape).toEqual([n]);
        }
      } else if (m.kind === 'denoiser') {
        const v = (await mod.forward(x, floatTensor([1, 0.5, 0.1]), cond)) as NativeTensor;
        expect(v.shape).toEqual([n, ...card.sample_shape]);
      } else {
        const s = (await mod.forward(x, cond)) as NativeTensor;
        expect(s.shape).toEqual([n]);
        if (mod.hasMethod('features')) expect(((await mod.call('features', [x])) as NativeTensor).shape[0]).toBe(n);
      }
    });
  }
});

describe('gmm2d', () => {
  it('its velocity equals a float64 closed-form reference from its card', async () => {
    const mod = await loadModule(path.join(root, 'models/gmm2d.pt'));
    const { weights, means, stds } = (mod.card as { prior: { weights: number[]; means: number[][]; stds: number[] } })
      .prior;
    const n = 64;
    const x = Float32Array.from(randn(2 * n), (v) => v * 2.5);
    const sigma = Float32Array.from({ length: n }, () => 0.02 + 0.97 * Math.random());
    const v = (await (
      (await mod.forward(tensor(x, [n, 2]), tensor(sigma, [n]), classTensor(new Array(n).fill(0)))) as NativeTensor
    ).toArray()) as Float32Array;
    for (let i = 0; i < n; i++) {
      // x | k ~ N((1−σ)μ_k, ((1−σ)²s_k² + σ²) I); E[x0 | x, k] = μ_k + (1−σ)s_k²/var_k · (x − (1−σ)μ_k)
      const s = sigma[i],
        a = 1 - s;
      const logw = weights.map((w, k) => {
        const varK = a * a * stds[k] ** 2 + s * s;
        const d2 = (x[2 * i] - a * means[k][0]) ** 2 + (x[2 * i + 1] - a * means[k][1]) ** 2;
        return Math.log(w) - Math.log(2 * Math.PI * varK) - d2 / (2 * varK);
      });
      const m = Math.max(...logw);
      const r = logw.map((l) => Math.exp(l - m));
      const z = r.reduce((p, q) => p + q, 0);
      const x0 = [0, 1].map((d) =>
        weights.reduce((acc, _, k) => {
          const varK = a * a * stds[k] ** 2 + s * s;
          return acc + (r[k] / z) * (means[k][d] + ((a * stds[k] ** 2) / varK) * (x[2 * i + d] - a * means[k][d]));
        }, 0),
      );
      for (const d of [0, 1]) {
        const want = (x[2 * i + d] - x0[d]) / s;
        expect(Math.abs(v[2 * i + d] - want)).toBeLessThan(1e-4 * (1 + Math.abs(want)));
      }
    }
  });
});

describe('classifiers on the real test split', () => {
  for (const file of ['models/fashion-classifier.pt', 'eval/fashion-eval.pt']) {
    it(`${file}: at least 85 % on 1000 test images (its card says ≥ 90 % on all 10,000)`, async () => {
      if (!fs.existsSync(path.join(root, file))) return;
      const mod = await loadModule(path.join(root, file));
      const { images, labels } = loadTestSplit(1000);
      const logits = (await (
        (await mod.call('logits', [tensor(images, [1000, 1, 28, 28])])) as NativeTensor
      ).toArray()) as Float32Array;
      let correct = 0;
      for (let i = 0; i < 1000; i++) {
        const row = logits.subarray(i * 10, i * 10 + 10);
        if (row.indexOf(Math.max(...row)) === labels[i]) correct++;
      }
      expect(correct / 1000).toBeGreaterThanOrEqual(0.85);
      const card = mod.card as { metrics?: { test_accuracy?: number } };
      expect(card.metrics?.test_accuracy).toBeGreaterThanOrEqual(0.9);
    });
  }
});

describe('the eval metrics on real data', () => {
  it('real test images score near the test statistics; noise far from them', async () => {
    if (!fs.existsSync(path.join(root, 'eval/fashion-eval.pt'))) return;
    const { Evaluator } = await import('../src/eval/metrics');
    const ev = await Evaluator.load();
    const { images, labels } = loadTestSplit(300);
    const real = await ev.evaluate(images, [300, 1, 28, 28], labels);
    const noise = await ev.evaluate(
      Float32Array.from(images, () => Math.random() * 2 - 1),
      [300, 1, 28, 28],
      labels,
    );
    expect(real.accuracy).toBeGreaterThan(0.85);
    expect(noise.accuracy).toBeLessThan(0.3);
    expect(real.fid!).toBeLessThan(noise.fid! / 10);
    expect(real.inception_score).toBeGreaterThan(4);
    expect(Object.keys(real.per_class)).toHaveLength(10);
    for (const c of Object.values(real.per_class)) expect(c.fid).not.toBeNull();
  });
});
