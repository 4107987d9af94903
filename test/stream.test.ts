import v8 from 'node:v8';
import vm from 'node:vm';
import { describe, expect, it } from 'vitest';
import { loadModule } from '../src/module';
import * as ops from '../src/ops';
import { createStream } from '../src/stream';
import { tensor } from '../src/tensor';
import type { NativeTensor } from '../src/native';
import { expectCode, fixture, randn } from './helpers';

describe('streams', () => {
  it('the event loop keeps ticking during a long forward', async () => {
    const m = await loadModule(fixture('tiny.pt'));
    const x = tensor(randn(384 * 384), [384, 384]);
    const ticks: number[] = [];
    const timer = setInterval(() => ticks.push(performance.now()), 10);
    const start = performance.now();
    await m.call('slow', [x, 60]);
    const elapsed = performance.now() - start;
    clearInterval(timer);
    expect(elapsed).toBeGreaterThan(200); // long enough for the check to mean something
    ticks.unshift(start);
    ticks.push(performance.now());
    const gaps = ticks.slice(1).map((t, i) => t - ticks[i]);
    // A blocked loop would show one gap as long as the forward itself; a busy machine may delay a
    // timer now and then, so allow a quarter of the forward (and at least 250 ms) per gap.
    expect(Math.max(...gaps)).toBeLessThan(Math.max(250, elapsed / 4));
    expect(ticks.length).toBeGreaterThan(elapsed / 10 / 5);
  });

  it('calls on one stream run and settle in submission order', async () => {
    const m = await loadModule(fixture('tiny.pt'));
    const s = createStream();
    const order: number[] = [];
    const jobs = [60, 1, 30, 0, 5].map((iters, i) =>
      m.call('slow', [tensor(randn(128 * 128), [128, 128]), iters], s).then(() => order.push(i)),
    );
    await Promise.all(jobs);
    expect(order).toEqual([0, 1, 2, 3, 4]);
    await s.close();
  });

  it('small CPU work waits behind queued work on its stream, and equals the same work run at once', async () => {
    const m = await loadModule(fixture('tiny.pt'));
    const s = createStream();
    const [x, y] = [tensor(randn(4 * 64), [4, 64]), tensor(randn(4 * 64), [4, 64])];
    const coef = Float64Array.from({ length: 16 }, () => Math.random() * 2 - 1);
    // Idle stream: the op settles at once, within microtasks (a worker's answer needs a turn of the loop).
    let settled = false;
    const idle = ops.rowCombine(x, y, coef, 2, s).finally(() => (settled = true));
    for (let i = 0; i < 3; i++) await Promise.resolve();
    expect(settled).toBe(true);
    const [now] = await idle;
    // Busy stream: the same op queues behind a slow call and settles after it.
    const order: string[] = [];
    const slow = m.call('slow', [tensor(randn(128 * 128), [128, 128]), 40], s).then(() => order.push('slow'));
    const later = ops.rowCombine(x, y, coef, 2, s).then((r) => (order.push('small'), r));
    const [queued] = await later;
    await slow;
    expect(order).toEqual(['slow', 'small']);
    expect(Array.from((await queued.toArray()) as Float32Array)).toEqual(
      Array.from((await now.toArray()) as Float32Array),
    );
    await s.close();
  });

  it("a view shares its stream's queue; closing or dropping a view leaves the queue open", async () => {
    const m = await loadModule(fixture('tiny.pt'));
    const s = createStream();
    const v = s.view();
    expect(v.device).toBe(s.device);
    const order: string[] = [];
    const slow = m.call('slow', [tensor(randn(128 * 128), [128, 128]), 40], s).then(() => order.push('stream'));
    const onView = m.call('slow', [tensor(randn(128 * 128), [128, 128]), 0], v).then(() => order.push('view'));
    await Promise.all([slow, onView]);
    expect(order).toEqual(['stream', 'view']);
    await v.close();
    expect(s.closed).toBe(false);
    for (let i = 0; i < 50; i++) s.view();
    v8.setFlagsFromString('--expose-gc');
    const gc = vm.runInNewContext('gc') as () => void;
    gc(); // the dropped views' handles are freed: the queue stays open
    await new Promise((r) => setTimeout(r, 20));
    expect(s.closed).toBe(false);
    expect(await m.call('slow', [tensor(randn(16), [4, 4]), 0], v)).toBeTruthy();
    await s.close();
    expect(v.closed).toBe(true);
    expect(() => s.view()).toThrow(/closed/);
  });

  it('two streams run independently and give the same results as the default stream', async () => {
    const m = await loadModule(fixture('tiny.pt'));
    const a = createStream();
    const b = createStream();
    const x = tensor(randn(64 * 64), [64, 64]);
    const [ya, yb, yd] = (await Promise.all([
      m.call('slow', [x, 4], a),
      m.call('slow', [x, 4], b),
      m.call('slow', [x, 4]),
    ])) as NativeTensor[];
    const [va, vb, vd] = await Promise.all([ya.toArray(a), yb.toArray(b), yd.toArray()]);
    expect(Array.from(va)).toEqual(Array.from(vd));
    expect(Array.from(vb)).toEqual(Array.from(vd));
    await Promise.all([a.close(), b.close()]);
  });

  it(
    "thread-sharing streams (the engine's forward slots) give the same results, alone and side by side; a bad " +
      'option is ARGUMENT',
    async () => {
      const m = await loadModule(fixture('tiny.pt'));
      const s = [
        createStream({ shareThreads: true }),
        createStream({ shareThreads: true }),
        createStream({ shareThreads: true }),
      ];
      const x = tensor(randn(64 * 64), [64, 64]);
      const want = Array.from((await ((await m.call('slow', [x, 4])) as NativeTensor).toArray()) as Float32Array);
      const alone = (await m.call('slow', [x, 4], s[0])) as NativeTensor;
      const together = (await Promise.all(s.map((st) => m.call('slow', [x, 4], st)))) as NativeTensor[];
      for (const [i, y] of [alone, ...together].entries())
        expect(Array.from((await y.toArray(s[i % 3])) as Float32Array)).toEqual(want);
      await Promise.all(s.map((st) => st.close()));
      await expectCode(() => createStream({ shareThreads: 'yes' as unknown as boolean }), 'ARGUMENT');
    },
  );

  it('a closed stream refuses work with STREAM_CLOSED; close resolves after queued work', async () => {
    const m = await loadModule(fixture('tiny.pt'));
    const s = createStream();
    let done = false;
    const pending = m.call('slow', [tensor(randn(128 * 128), [128, 128]), 20], s).then(() => (done = true));
    await s.close();
    expect(done).toBe(true);
    await pending;
    expect(s.closed).toBe(true);
    await expectCode(() => m.call('slow', [tensor(randn(4), [2, 2]), 1], s), 'STREAM_CLOSED');
    await s.close(); // twice is fine
  });

  it('rejects what is not a stream', async () => {
    const m = await loadModule(fixture('tiny.pt'));
    await expectCode(() => m.call('slow', [tensor(randn(4), [2, 2]), 1], {} as never), 'ARGUMENT');
  });
});
