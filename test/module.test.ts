import fs from 'node:fs';
import { describe, expect, it } from 'vitest';
import { loadModule } from '../src/module';
import { tensor } from '../src/tensor';
import { info } from '../src/info';
import type { NativeTensor } from '../src/native';
import { expectCode, fixture, randn } from './helpers';

const D = 16;

describe('TorchScript modules', () => {
  it('loads, reads its card, lists its methods', async () => {
    const m = await loadModule(fixture('tiny.pt'));
    expect(m.card).toMatchObject({ name: 'tiny-fixture', kind: 'denoiser', sample_shape: [D], null_class: 10 });
    expect(m.methods).toEqual(expect.arrayContaining(['forward', 'params', 'slow', 'scaled']));
    expect(m.device).toBe('cpu');
    expect(m.schema('forward')).toMatch(/forward\(.*Tensor x, Tensor sigma, Tensor cond\) -> Tensor/);
  });

  it('an archive without a card has card null; a card that is not JSON is MODEL_CARD', async () => {
    expect((await loadModule(fixture('nocard.pt'))).card).toBeNull();
    await expectCode(() => loadModule(fixture('badcard.pt')), 'MODEL_CARD');
  });

  it('forward equals what torch computed for the same inputs', async () => {
    const io = JSON.parse(fs.readFileSync(fixture('tiny-io.json'), 'utf8'));
    const m = await loadModule(fixture('tiny.pt'));
    const y = (await m.forward(
      tensor(Float32Array.from(io.x), io.shape),
      tensor(Float32Array.from(io.sigma), [io.shape[0]]),
      tensor(BigInt64Array.from(io.cond.map(BigInt)), [io.shape[0]]),
    )) as NativeTensor;
    expect(y.shape).toEqual(io.shape);
    const out = await y.toArray();
    for (let i = 0; i < io.y.length; i++) expect(out[i]).toBeCloseTo(io.y[i], 5);
  });

  it('forward on fresh random inputs equals a float64 reference from the module weights', async () => {
    const m = await loadModule(fixture('tiny.pt'));
    const [w, b, emb] = (await Promise.all(
      ((await m.call('params', [])) as NativeTensor[]).map((t) => t.toArray()),
    )) as Float32Array[];
    for (const n of [1, 3, 17]) {
      const x = randn(n * D);
      const sigma = Float32Array.from(randn(n), (v) => Math.abs(v));
      const cond = BigInt64Array.from({ length: n }, () => BigInt(Math.floor(Math.random() * 11)));
      const y = await (
        (await m.forward(tensor(x, [n, D]), tensor(sigma, [n]), tensor(cond, [n]))) as NativeTensor
      ).toArray();
      for (let r = 0; r < n; r++)
        for (let j = 0; j < D; j++) {
          let h = b[j];
          for (let k = 0; k < D; k++) h += x[r * D + k] * w[j * D + k];
          const ref = Math.tanh(h) * sigma[r] + emb[Number(cond[r]) * D + j];
          expect(Math.abs(y[r * D + j] - ref)).toBeLessThan(1e-5 * (1 + Math.abs(ref)));
        }
    }
  });

  it('passes numbers to float and int arguments and uses defaults', async () => {
    const m = await loadModule(fixture('tiny.pt'));
    const x = randn(6);
    const a = await ((await m.call('scaled', [tensor(x, [6])])) as NativeTensor).toArray();
    const c = await ((await m.call('scaled', [tensor(x, [6]), 0.5, 3])) as NativeTensor).toArray();
    for (let i = 0; i < 6; i++) {
      expect(a[i]).toBeCloseTo(x[i] * 2, 6);
      expect(c[i]).toBeCloseTo(x[i] * 0.5 + 3, 6);
    }
  });
});

describe('module errors keep the process alive', () => {
  it('a missing file is MODEL_LOAD', async () => {
    const e = await expectCode(() => loadModule(fixture('does-not-exist.pt')), 'MODEL_LOAD');
    expect(e.message).toMatch(/No such file/);
  });

  it('a file that is not TorchScript is MODEL_LOAD', async () => {
    const e = await expectCode(() => loadModule(fixture('not-a-model.pt')), 'MODEL_LOAD');
    expect(e.message).toMatch(/not a loadable TorchScript archive/);
  });

  it('wrong arity is ARITY, naming the signature', async () => {
    const m = await loadModule(fixture('tiny.pt'));
    const e = await expectCode(() => m.forward(tensor(randn(D), [1, D])), 'ARITY');
    expect(e.message).toMatch(/forward\(x, sigma, cond\) takes 3 input\(s\), got 1/);
    await expectCode(() => m.call('scaled', []), 'ARITY');
  });

  it('wrong shapes are SHAPE, wrong types ARGUMENT, unknown methods ARGUMENT', async () => {
    const m = await loadModule(fixture('tiny.pt'));
    const cond = tensor(new BigInt64Array(2), [2]);
    const sigma = tensor(new Float32Array(2), [2]);
    await expectCode(() => m.forward(tensor(randn(2 * 5), [2, 5]), sigma, cond), 'SHAPE');
    await expectCode(() => m.forward(1 as unknown as NativeTensor, sigma, cond), 'ARGUMENT');
    await expectCode(() => m.call('scaled', [tensor(randn(2), [2]), 'x']), 'ARGUMENT');
    await expectCode(() => m.call('nope', []), 'ARGUMENT');
    // The module still works afterwards.
    const ok = (await m.forward(tensor(randn(2 * D), [2, D]), sigma, cond)) as NativeTensor;
    expect(ok.shape).toEqual([2, D]);
  });

  it('a CUDA device on a machine without one is DEVICE', async () => {
    if (info().cuda.available) return;
    await expectCode(() => loadModule(fixture('tiny.pt'), { device: 'cuda:0' }), 'DEVICE');
    await expectCode(() => loadModule(fixture('tiny.pt'), { device: 'gpu' }), 'DEVICE');
  });

  it('a disposed module is DISPOSED', async () => {
    const m = await loadModule(fixture('tiny.pt'));
    m.dispose();
    m.dispose();
    await expectCode(() => m.forward(), 'DISPOSED');
  });
});
