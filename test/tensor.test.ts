import { describe, expect, it } from 'vitest';
import { tensor } from '../src/tensor';
import type { TypedArray } from '../src/native';
import { expectCode, randn } from './helpers';

const shapes: number[][] = [[], [1], [7], [0], [3, 0, 2], [2, 3], [1, 1, 1, 1], [3, 1, 5, 1, 2], [2, 1, 2, 1, 2, 1, 3]];
const numel = (s: number[]) => s.reduce((a, b) => a * b, 1);

function fresh(kind: string, n: number): TypedArray {
  const r = randn(n);
  switch (kind) {
    case 'float32':
      return r;
    case 'float64':
      return Float64Array.from(r, (v) => v * 1e10 + 1e-300);
    case 'int32':
      return Int32Array.from(r, (v) => Math.round(v * 2 ** 30));
    case 'int64':
      return BigInt64Array.from(r, (v) => BigInt(Math.round(v * 2 ** 40)) * 4096n + 7n);
    case 'uint8':
      return Uint8Array.from(r, (v) => Math.abs(Math.round(v * 100)) % 256);
  }
  throw new Error(kind);
}

describe('tensor round trips', () => {
  for (const dtype of ['float32', 'float64', 'int32', 'int64', 'uint8']) {
    it(`${dtype}: every shape comes back element for element`, async () => {
      for (const shape of shapes) {
        const data = fresh(dtype, numel(shape));
        const t = tensor(data, shape);
        expect(t.dtype).toBe(dtype);
        expect(t.shape).toEqual(shape);
        expect(t.numel).toBe(numel(shape));
        expect(t.device).toBe('cpu');
        const back = await t.toArray();
        expect(back.constructor).toBe(data.constructor);
        expect(back.length).toBe(data.length);
        for (let i = 0; i < data.length; i++) if (back[i] !== data[i]) expect(back[i]).toBe(data[i]);
        t.dispose();
      }
    });
  }

  it('copies: later changes to the source array do not reach the tensor', async () => {
    const data = randn(32);
    const t = tensor(data, [4, 8]);
    const copy = data.slice();
    data.fill(42);
    expect(Array.from(await t.toArray())).toEqual(Array.from(copy));
  });

  it('accepts views into a larger buffer (byte offsets)', async () => {
    const big = randn(100);
    const view = big.subarray(10, 30);
    expect(Array.from(await tensor(view, [4, 5]).toArray())).toEqual(Array.from(view));
  });

  it('defaults to a 1-D shape', () => {
    expect(tensor(new Float32Array(9)).shape).toEqual([9]);
  });

  it('to("cpu") copies', async () => {
    const data = randn(12);
    const t = tensor(data, [3, 4]);
    const c = await t.to('cpu');
    t.dispose();
    expect(Array.from(await c.toArray())).toEqual(Array.from(data));
  });
});

describe('dispose', () => {
  it('is safe twice, and use after dispose is a DISPOSED error', async () => {
    const t = tensor(randn(8), [2, 4]);
    expect(t.disposed).toBe(false);
    t.dispose();
    t.dispose();
    expect(t.disposed).toBe(true);
    await expectCode(() => t.shape, 'DISPOSED');
    await expectCode(() => t.toArray(), 'DISPOSED');
    await expectCode(() => t.to('cpu'), 'DISPOSED');
  });
});

describe('bad input', () => {
  it('a shape that does not match the data is SHAPE', async () => {
    const e = await expectCode(() => tensor(new Float32Array(5), [2, 3]), 'SHAPE');
    expect(e.message).toMatch(/6 elements but the array has 5/);
    await expectCode(() => tensor(new Float32Array(4), [2, -2]), 'SHAPE');
    await expectCode(() => tensor(new Float32Array(4), [2, 1.5] as number[]), 'SHAPE');
    await expectCode(() => tensor(new Float32Array(4), 'x' as unknown as number[]), 'SHAPE');
  });

  it('unsupported arrays are ARGUMENT', async () => {
    await expectCode(() => tensor(new Int16Array(4) as unknown as Float32Array, [4]), 'ARGUMENT');
    await expectCode(() => tensor([1, 2] as unknown as Float32Array, [2]), 'ARGUMENT');
  });

  it('devices are validated: nonsense and absent CUDA are DEVICE errors', async () => {
    await expectCode(() => tensor(new Float32Array(4), [4], { device: 'tpu' }), 'DEVICE');
    await expectCode(() => tensor(new Float32Array(4), [4], { device: 'cpu:1' }), 'DEVICE');
    const { info } = await import('../src/info');
    if (!info().cuda.available) {
      const e = await expectCode(() => tensor(new Float32Array(4), [4], { device: 'cuda:0' }), 'DEVICE');
      expect(e.message).toMatch(/no CUDA device/);
    } else {
      const n = info().cuda.deviceCount;
      await expectCode(() => tensor(new Float32Array(4), [4], { device: `cuda:${n}` }), 'DEVICE');
    }
  });

  it('the Tensor class cannot be constructed from JS', async () => {
    const { native } = await import('../src/native');
    const { Tensor } = native() as unknown as { Tensor: new () => unknown };
    await expectCode(() => new Tensor(), 'ARGUMENT');
  });
});
