import { describe, expect, it } from 'vitest';
import { tensor } from '../src/tensor';
import { TensorScope } from '../src/tensor-scope';
import { axpby, gather } from '../src/tensor-ops';
import type { NativeTensor } from '../src/native';
import { randn } from './helpers';

// The bytes of live tensors: the addon reports each one's to V8 as external memory.
const tracked = () => {
  const m = process.memoryUsage();
  return m.external - m.arrayBuffers;
};
const t4 = () => tensor(randn(4), [2, 2]);

describe('TensorScope', () => {
  it('frees what it tracked when the block ends, and not what it kept', async () => {
    let a: NativeTensor, b: NativeTensor, kept: NativeTensor;
    {
      using s = new TensorScope();
      a = s.track(t4());
      b = await s.track(axpby(a, a, [1, 1], [1, 1]));
      kept = s.keep(s.track(t4()));
      expect(a.disposed || b.disposed).toBe(false);
    }
    expect(a.disposed && b.disposed).toBe(true);
    expect(kept.disposed).toBe(false);
    kept.dispose();
  });

  it('frees everything tracked when the block throws, after awaits', async () => {
    const made: NativeTensor[] = [];
    const step = async () => {
      using s = new TensorScope();
      made.push(s.track(t4()));
      made.push(await s.track(gather(made[0], [1, 0, 1])));
      s.keep(made[1]); // a result that never got returned is still the caller's once kept
      made.push(s.track(t4()));
      throw new Error('boom');
    };
    await expect(step()).rejects.toThrow('boom');
    expect(made.map((t) => t.disposed)).toEqual([true, false, true]);
    made[1].dispose();
  });

  it('tracks arrays and objects of tensors ({ x0, eps }), skipping null', () => {
    const s = new TensorScope();
    const pair = s.track({ x0: t4(), eps: t4(), features: null });
    const list = s.track([t4(), null, t4()]);
    s.keep({ x0: pair.x0 });
    s.close();
    const freed = [pair.x0, pair.eps, list[0]!, list[2]!].map((t) => t.disposed);
    expect(freed).toEqual([false, true, true, true]);
    pair.x0.dispose();
  });

  it('replace frees the carried value it holds, never an input it was not given', () => {
    using s = new TensorScope();
    const input = t4();
    let x = s.replace(input, t4()); // the caller's input: left alone
    expect(input.disposed).toBe(false);
    const first = x;
    x = s.replace(x, t4());
    expect(first.disposed).toBe(true);
    expect(s.holds(x)).toBe(true);
    input.dispose();
  });

  it('a tensor that arrives after the scope ended is freed at once', async () => {
    const s = new TensorScope();
    let resolve!: (t: NativeTensor) => void;
    const late = s.track(new Promise<NativeTensor>((r) => (resolve = r)));
    s.close();
    const t = t4();
    resolve(t);
    expect(await late).toBe(t);
    expect(t.disposed).toBe(true);
  });

  it('native tensors, made or returned by ops, are `using`-able', async () => {
    const x = t4();
    let y: NativeTensor;
    {
      using g = await gather(x, [0]);
      y = g;
      expect(typeof x[Symbol.dispose]).toBe('function');
    }
    expect(y.disposed).toBe(true);
    x[Symbol.dispose]();
    expect(x.disposed).toBe(true);
  });

  it('scoped steps in a loop leave no tensor behind (live bytes back to the start)', async () => {
    const data = randn(64 * 1024);
    const loop = async (n: number, fail: boolean) => {
      for (let i = 0; i < n; i++) {
        using s = new TensorScope();
        const a = s.track(tensor(data, [64, 1024]));
        const b = await s.track(axpby(a, a, new Array(64).fill(1), new Array(64).fill(2)));
        await s.track(gather(b, [0, 1, 2]));
        if (fail && i === n - 1) throw new Error('late');
      }
    };
    await loop(5, false);
    const before = tracked();
    await loop(200, false);
    await expect(loop(20, true)).rejects.toThrow('late');
    expect(tracked()).toBeLessThanOrEqual(before + 1024);
  });
});
