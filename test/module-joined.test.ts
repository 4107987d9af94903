// Module.callJoined: several callers' rows in one native job (the engine's merged forwards).
import { describe, expect, it } from 'vitest';
import { loadModule } from '../src/module';
import { native, type NativeModule, type NativeTensor } from '../src/native';
import { tensor } from '../src/tensor';
import { expectCode, fixture, flowInputs, randn } from './helpers';

const D = 16;
type Pieces = Array<[NativeTensor[], number, number]>;

async function tiny(): Promise<{ handle: NativeModule; w: Float32Array; b: Float32Array; emb: Float32Array }> {
  const handle = await native().loadModule(fixture('tiny.pt'));
  const [w, b, emb] = (await Promise.all(
    ((await handle.call('params', [])) as NativeTensor[]).map((t) => t.toArray()),
  )) as Float32Array[];
  return { handle, w, b, emb };
}

/** A caller's inputs of n fresh random rows, and the values behind them. */
function caller(n: number) {
  const x = randn(n * D);
  const sigma = Float32Array.from(randn(n), (v) => Math.abs(v));
  const cond = BigInt64Array.from({ length: n }, () => BigInt(Math.floor(Math.random() * 11)));
  return { x, sigma, cond, inputs: [tensor(x, [n, D]), tensor(sigma, [n]), tensor(cond, [n])] };
}

describe('Module.callJoined', () => {
  it("each piece's output equals a float64 reference for its own rows (fresh inputs, every element)", async () => {
    const { handle, w, b, emb } = await tiny();
    const callers = [caller(5), caller(1), caller(7)];
    // Rows [1, 4) of the first, all of the second, [2, 7) of the third.
    const ranges: Array<[number, number]> = [
      [1, 4],
      [0, 1],
      [2, 7],
    ];
    const pieces: Pieces = callers.map((c, i) => [c.inputs, ...ranges[i]]);
    const outs = (await handle.callJoined('forward', pieces)) as NativeTensor[];
    expect(outs).toHaveLength(3);
    for (const [i, c] of callers.entries()) {
      const [start, end] = ranges[i];
      expect(outs[i].shape).toEqual([end - start, D]);
      const y = (await outs[i].toArray()) as Float32Array;
      for (let r = start; r < end; r++)
        for (let j = 0; j < D; j++) {
          let h = b[j];
          for (let k = 0; k < D; k++) h += c.x[r * D + k] * w[j * D + k];
          const ref = Math.tanh(h) * c.sigma[r] + emb[Number(c.cond[r]) * D + j];
          expect(Math.abs(y[(r - start) * D + j] - ref)).toBeLessThan(1e-5 * (1 + Math.abs(ref)));
        }
    }
  });

  it('tuple outputs are cut per piece, each element as its own call gives it', async () => {
    const enc = await native().loadModule(fixture('cond-text.pt'));
    const tokens = (n: number) =>
      tensor(
        BigInt64Array.from({ length: n * 4 }, () => BigInt(Math.floor(Math.random() * 5))),
        [n, 4],
      );
    const a = tokens(3),
      c = tokens(2);
    const outs = (await enc.callJoined('forward', [
      [[a], 0, 3],
      [[c], 1, 2],
    ])) as NativeTensor[][];
    const alone = [
      (await enc.call('forward', [a])) as NativeTensor[],
      (await enc.call('forward', [c])) as NativeTensor[],
    ];
    // The embeddings by value; the bool masks (no typed array in JS) by shape and dtype.
    expect(Array.from(await outs[0][0].toArray())).toEqual(Array.from(await alone[0][0].toArray()));
    const second = await alone[1][0].toArray();
    expect(Array.from(await outs[1][0].toArray())).toEqual(Array.from(second.slice(second.length / 2)));
    expect(outs.map((o) => [o[1].shape, o[1].dtype])).toEqual([
      [[3, 4], 'bool'],
      [[1, 4], 'bool'],
    ]);
  });

  it('bad pieces are typed errors and the module still answers', async () => {
    const { handle } = await tiny();
    const c = caller(3);
    await expectCode(() => handle.callJoined('forward', []), 'ARGUMENT');
    await expectCode(() => handle.callJoined('forward', [[c.inputs, 2, 5]]), 'ARGUMENT'); // beyond its rows
    await expectCode(() => handle.callJoined('forward', [[c.inputs, 2, 2]]), 'ARGUMENT'); // no rows
    await expectCode(() => handle.callJoined('forward', [[c.inputs.slice(0, 2), 0, 3]]), 'ARITY');
    await expectCode(() => handle.callJoined('scaled', [[[c.inputs[0], 2 as never], 0, 3]]), 'ARGUMENT');
    await expectCode(() => handle.callJoined('params', [[[], 0, 1]]), 'ARGUMENT');
    await expectCode(() => handle.callJoined('nope', [[c.inputs, 0, 3]]), 'ARGUMENT');
    const [y] = (await handle.callJoined('forward', [[c.inputs, 0, 3]])) as NativeTensor[];
    expect(y.shape).toEqual([3, D]);
  });

  it('TorchModule.callJoined takes the small-call copy once its method is checked, on its thread cap', async () => {
    const m = await loadModule('fashion-flow', { optimizeBelowRows: 16, optimizeThreads: 1 });
    const a = flowInputs(2),
      c = flowInputs(3);
    // Unchecked: null, so the batcher runs the call whole through call(), which checks the copy.
    expect(m.callJoined('forward', [[a, 0, 2]])).toBeNull();
    await m.call('forward', a);
    expect(m.optimization).toMatchObject({ state: 'on', checked: ['forward'] });
    const outs = (await m.callJoined('forward', [
      [a, 0, 2],
      [c, 1, 3],
    ])) as NativeTensor[];
    const ref = [(await m.call('forward', a)) as NativeTensor, (await m.call('forward', c)) as NativeTensor];
    const whole = (await ref[1].toArray()) as Float32Array;
    const want = [(await ref[0].toArray()) as Float32Array, whole.slice(784)];
    for (let i = 0; i < 2; i++) {
      const got = (await outs[i].toArray()) as Float32Array;
      let scale = 0;
      for (const v of want[i]) scale = Math.max(scale, Math.abs(v));
      for (let j = 0; j < got.length; j++) expect(Math.abs(got[j] - want[i][j])).toBeLessThanOrEqual(1e-4 * scale);
    }
  });
});
