import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { createEngine } from '../src/engine/engine';
import { generate } from '../src/generate';
import { loadModule, type TorchModule } from '../src/module';
import { maxRelDiff } from '../src/module-variant';
import { native, type NativeTensor } from '../src/native';
import { precisionFlag } from '../src/cli/options';
import { precisionRefusal } from '../src/precision';
import { resolveRequest } from '../src/request/resolve';
import { TextEncoder } from '../src/models/text-encoder';
import { loadVerifier } from '../src/models/registry';
import { Evaluator } from '../src/eval/metrics';
import { TimePredictionModule } from '../src/samplers/adaptive';
import { createStream, setNumThreads } from '../src/stream';
import { OPTIMIZED_FORWARDS } from '../src/request/defaults';
import { tensor } from '../src/tensor';
import { expectCode, flowInputs, randn } from './helpers';

// bf16 keeps 8 bits of mantissa (relative rounding 2^-9 per value); through a few conv blocks the
// output moves by up to a few per cent of its largest value (measured ≤ 2.1e-2), so 5e-2 bounds it.
const BF16_TOLERANCE = 5e-2;
// Freezing and optimize_for_inference reorder float32 arithmetic (folded constants, oneDNN kernels).
const FREEZE_TOLERANCE = 1e-4;

const hasBf16 = (() => {
  const cpu = native().info().cpu;
  return !!(cpu?.avx512bf16 || cpu?.amxbf16);
})();

async function out(m: TorchModule | { call: TorchModule['call'] }, inputs: NativeTensor[]): Promise<Float32Array> {
  const y = (await m.call('forward', inputs)) as NativeTensor;
  expect(y.dtype).toBe('float32');
  const a = (await y.toArray()) as Float32Array;
  y.dispose();
  return a;
}

/** Every element of `a` within tol × max|ref| of `ref`. */
function expectClose(a: Float32Array, ref: Float32Array, tol: number): number {
  expect(a.length).toBe(ref.length);
  let scale = 0;
  for (const v of ref) scale = Math.max(scale, Math.abs(v));
  for (let i = 0; i < ref.length; i++)
    if (!(Math.abs(a[i] - ref[i]) <= tol * scale)) expect.fail(`element ${i}: ${a[i]} vs ${ref[i]} (scale ${scale})`);
  return maxRelDiff(a, ref);
}

async function t2iInputs(rows: number): Promise<NativeTensor[]> {
  const words = ['small', 'large', 'dark', 'bright', 'dress', 'coat', 'bag', 'sneaker', 'shirt'];
  const pick = () => words[Math.floor(Math.random() * words.length)];
  const enc = await TextEncoder.load('fashion-text');
  const c = await enc.encode(Array.from({ length: rows }, () => `a ${pick()} ${pick()} ${pick()}`));
  return [
    tensor(randn(rows * 196), [rows, 4, 7, 7]),
    tensor(
      Float32Array.from({ length: rows }, () => Math.random()),
      [rows],
    ),
    c.text,
    c.text_mask,
  ];
}

describe.skipIf(!hasBf16)('bf16 forwards (CPU autocast)', () => {
  for (const [model, inputs] of [
    ['fashion-flow', flowInputs],
    ['fashion-t2i', t2iInputs],
  ] as const)
    it(`${model}: every element within ${BF16_TOLERANCE} × max |fp32| of libtorch's fp32 output`, async () => {
      const fp32 = await loadModule(model);
      const bf16 = await loadModule(model, { precision: 'bf16' });
      expect(bf16.precision).toBe('bf16');
      for (const rows of [1, 5, 16]) {
        const x = await inputs(rows);
        const ref = await out(fp32, x);
        const d = expectClose(await out(bf16, x), ref, BF16_TOLERANCE);
        expect(d).toBeGreaterThan(0); // bf16 really ran: float32 would repeat the output exactly
        // The same module answers fp32 calls exactly as before after bf16 ones (autocast is per call).
        expect(maxRelDiff(await out(fp32, x), ref)).toBe(0);
      }
    });
});

describe('frozen, inference-optimised forwards', () => {
  it(`frozen copies of fashion-flow and fashion-t2i answer within ${FREEZE_TOLERANCE} (every element)`, async () => {
    for (const [model, inputs] of [
      ['fashion-flow', flowInputs],
      ['fashion-t2i', t2iInputs],
    ] as const) {
      const m = await loadModule(model);
      const handle = await native().loadModule(m.path);
      for (const inference of [false, true]) {
        const copy = await handle.optimize({ inference });
        for (const rows of [1, 3, 16]) {
          const x = await inputs(rows);
          expectClose(await out(copy, x), await out(m, x), FREEZE_TOLERANCE);
        }
        copy.dispose();
      }
    }
  });

  it('small forwards go to the checked copy; the check is reported', async () => {
    const m = await loadModule('fashion-flow', { optimizeBelowRows: 4, optimizeTolerance: FREEZE_TOLERANCE });
    const plain = await loadModule('fashion-flow');
    expect(m.optimization).toMatchObject({ state: 'pending', below_rows: 4 });
    const big = flowInputs(8);
    expect(maxRelDiff(await out(m, big), await out(plain, big))).toBe(0); // 8 rows: the module itself
    expect(m.optimization?.state).toBe('pending');
    for (let k = 0; k < 3; k++) {
      const x = flowInputs(1 + k);
      expectClose(await out(m, x), await out(plain, x), FREEZE_TOLERANCE);
    }
    const o = m.optimization!;
    expect(o.state).toBe('on');
    expect(o.max_rel_diff).toBeLessThanOrEqual(FREEZE_TOLERANCE);
    expect(o.reason).toBeNull();
  });

  it('a call capped at one thread runs on one, the next uncapped call on all (call options)', async () => {
    const before = native().info().threads.intraOp;
    setNumThreads(2);
    const plainStream = createStream(),
      shared = createStream({ shareThreads: true });
    try {
      for (const s of [plainStream, shared]) {
        // Capped first: the stream's first job must not let libtorch's lazy thread init undo the cap.
        expect(await native().callThreads({ threads: 1 }, s)).toBe(1);
        expect(await native().callThreads(undefined, s)).toBe(2);
        expect(await native().callThreads({ threads: 8 }, s)).toBe(2); // a cap, never more threads
      }
      for (const bad of [0, -1, 1.5, '2', Number.NaN])
        await expectCode(() => native().callThreads({ threads: bad as number }, plainStream), 'ARGUMENT');
      // A capped forward answers as the uncapped one, every element.
      const m = await loadModule('fashion-flow');
      const handle = await native().loadModule(m.path);
      const x = flowInputs(3);
      const capped = (await handle.call('forward', x, plainStream, { threads: 1 })) as NativeTensor;
      expectClose((await capped.toArray()) as Float32Array, await out(m, x), 1e-6);
      capped.dispose();
    } finally {
      await plainStream.close();
      await shared.close();
      setNumThreads(before);
    }
  });

  it('each method is checked on its first small call; checked methods run the copy on its threads', async () => {
    const m = await loadModule('models/fashion-classifier.pt', { optimizeBelowRows: 16, optimizeThreads: 1 });
    const plain = await loadModule('models/fashion-classifier.pt');
    expect(m.optimization).toMatchObject({ state: 'pending', threads: 1, checked: [] });
    const x = tensor(randn(2 * 784), [2, 1, 28, 28]);
    const cls = tensor(BigInt64Array.from([3n, 7n]), [2]);
    for (const [method, inputs] of [
      ['logits', [x]],
      ['forward', [x, cls]],
      ['logits', [x]],
    ] as const) {
      const a = (await m.call(method, [...inputs])) as NativeTensor;
      const b = (await plain.call(method, [...inputs])) as NativeTensor;
      expectClose((await a.toArray()) as Float32Array, (await b.toArray()) as Float32Array, FREEZE_TOLERANCE);
    }
    expect(m.optimization).toMatchObject({ state: 'on', checked: ['logits', 'forward'] });
  });

  it('a method returning a tuple is checked element by element (a text encoder: embeddings, bool mask)', async () => {
    const m = await loadModule(path.join(__dirname, 'fixtures', 'cond-text.pt'), { optimizeBelowRows: 16 });
    const tokens = tensor(
      BigInt64Array.from({ length: 8 }, () => BigInt(Math.floor(Math.random() * 5))),
      [2, 4],
    );
    const [emb, mask] = (await m.call('forward', [tokens])) as NativeTensor[];
    expect([emb.shape, mask.dtype]).toEqual([[2, 4, 3], 'bool']);
    expect(m.optimization).toMatchObject({ state: 'on', checked: ['forward'], max_rel_diff: 0 });
  });

  it('the library loads every model it runs with the copy for small calls on CPU', async () => {
    const want = { state: 'pending', below_rows: OPTIMIZED_FORWARDS.belowRows, threads: OPTIMIZED_FORWARDS.threads };
    const verifier = (await loadVerifier(['classifier'])) as unknown as { module: TorchModule };
    expect(verifier.module.optimization).toMatchObject(want);
    expect((await Evaluator.load()).module.optimization).toMatchObject(want);
    expect((await TimePredictionModule.load('models/fashion-tpm.pt')).module.optimization).toMatchObject(want);
    expect((await TextEncoder.load('fashion-text')).module.optimization).toMatchObject(want);
  });

  it('a copy that disagrees beyond the tolerance is dropped, with the reason', async () => {
    // Tolerance −1: no output can pass, so the check must fall back to the module and say why.
    const m = await loadModule('fashion-flow', { optimizeBelowRows: 4, optimizeTolerance: -1 });
    const plain = await loadModule('fashion-flow');
    const x = flowInputs(2);
    expect(maxRelDiff(await out(m, x), await out(plain, x))).toBe(0);
    expect(m.optimization).toMatchObject({ state: 'off' });
    expect(m.optimization?.reason).toMatch(/over the tolerance/);
  });

  it('a module that changes its own state gets no copy (the copy would count apart from it)', async () => {
    // fault-k.pt counts its calls and fails on the 5th: a frozen copy would have its own count.
    const m = await loadModule(path.join(__dirname, 'fixtures', 'fault-k.pt'), { optimizeBelowRows: 16 });
    expect(m.optimization).toMatchObject({ state: 'off' });
    expect(m.optimization?.reason).toMatch(/changes its own state in a method \(calls\)/);
    expect((await loadModule('fashion-flow', { optimizeBelowRows: 16 })).optimization?.state).toBe('pending');
  });
});

describe('precision: typed errors in the wording of each entrance', () => {
  it('a bad value names the JSON key, the CLI flag or the engine option', async () => {
    const json = await expectCode(() => resolveRequest({ precision: 'fp16' as never }), 'ARGUMENT');
    expect(json.message).toMatch(/precision/);
    expect(json.message).not.toMatch(/--precision/);
    const cli = await expectCode(
      () => resolveRequest({ precision: 'fp16' as never }, null, { entrance: 'cli' }),
      'ARGUMENT',
    );
    expect(cli.message).toMatch(/--precision/);
    expect((await expectCode(() => precisionFlag('half'), 'ARGUMENT')).message).toMatch(/--precision .*'half'/);
    await expectCode(() => generate({ model: 'gmm2d', budget: 10, precision: 'fp16' as never }), 'ARGUMENT');
    await expectCode(() => createEngine({ precision: 'fp16' as never }), 'ARGUMENT');
    await expectCode(() => loadModule('gmm2d', { precision: 'fp16' as never }), 'ARGUMENT');
  });

  it('bf16 is refused off the CPU, and an engine refuses a request for another precision', async () => {
    expect(precisionRefusal('bf16', 'cuda:0')).toMatch(/CPU only/);
    expect(precisionRefusal('fp32', 'cuda:0')).toBeNull();
    const engine = createEngine({ precision: 'fp32' });
    try {
      const e = await expectCode(() => engine.generate({ model: 'gmm2d', budget: 10, precision: 'bf16' }), 'ARGUMENT');
      expect(e.message).toMatch(/runs its models in fp32; the request asks for bf16/);
    } finally {
      await engine.close();
    }
  });
});
