// Calls cut into row chunks run side by side, one thread each (call option chunkRows).
import { describe, expect, it } from 'vitest';
import { info } from '../src/info';
import { loadModule } from '../src/module';
import { native, type NativeTensor } from '../src/native';
import { createStream, setNumThreads } from '../src/stream';
import { tensor } from '../src/tensor';
import { expectCode, fixture, flowInputs, randn } from './helpers';

const D = 5;

/** Each chunk's rows minus that chunk's mean, in float64: what rowmix.pt gives when a call is cut. */
function reference(x: Float32Array, rows: number, chunks: number): Float64Array {
  const out = new Float64Array(rows * D);
  for (let k = 0; k < chunks; k++) {
    const [a, b] = [Math.floor((rows * k) / chunks), Math.floor((rows * (k + 1)) / chunks)];
    for (let j = 0; j < D; j++) {
      let mean = 0;
      for (let r = a; r < b; r++) mean += x[r * D + j] / (b - a);
      for (let r = a; r < b; r++) out[r * D + j] = x[r * D + j] - mean;
    }
  }
  return out;
}

async function values(t: unknown): Promise<Float32Array> {
  return (await (t as NativeTensor).toArray()) as Float32Array;
}

describe('row chunks (call option chunkRows)', () => {
  it('with 2 threads a call of ≥ 2 × chunkRows rows runs as 2 chunks; on 1 thread or below, whole', async () => {
    const before = info().threads.intraOp;
    setNumThreads(2);
    const m = await native().loadModule(fixture('rowmix.pt'));
    const s = createStream();
    try {
      for (const [rows, chunkRows, threads, chunks] of [
        [16, 4, undefined, 2], // cut in two (2 threads)
        [13, 4, undefined, 2], // 6 + 7 rows
        [7, 4, undefined, 1], // under 2 × chunkRows: whole
        [16, 4, 1, 1], // capped at one thread: whole
        [16, 0, undefined, 1], // no chunkRows: whole
      ] as const) {
        const x = randn(rows * D);
        const opts = { ...(chunkRows ? { chunkRows } : {}), ...(threads ? { threads } : {}) };
        const y = await values(await m.call('forward', [tensor(x, [rows, D])], s, opts));
        const want = reference(x, rows, chunks);
        for (let i = 0; i < y.length; i++) expect(Math.abs(y[i] - want[i])).toBeLessThan(1e-5);
      }
      await expectCode(() => m.call('forward', [tensor(randn(D), [1, D])], s, { chunkRows: 0 }), 'ARGUMENT');
    } finally {
      await s.close();
      setNumThreads(before);
    }
  });

  it('a denoiser answers the same cut or whole (fashion-flow, fresh inputs, every element)', async () => {
    const before = info().threads.intraOp;
    setNumThreads(2);
    try {
      const cut = await loadModule('fashion-flow', { chunkRows: 8 });
      const whole = await loadModule('fashion-flow');
      for (const rows of [16, 21]) {
        const x = flowInputs(rows);
        const a = await values(await cut.call('forward', x));
        const b = await values(await whole.call('forward', x));
        let scale = 0;
        for (const v of b) scale = Math.max(scale, Math.abs(v));
        for (let i = 0; i < b.length; i++) expect(Math.abs(a[i] - b[i])).toBeLessThanOrEqual(1e-5 * scale);
      }
      await expectCode(() => loadModule('fashion-flow', { chunkRows: -1 }), 'ARGUMENT');
    } finally {
      setNumThreads(before);
    }
  });
});
