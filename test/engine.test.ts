/**
 * The engine: results independent of what else runs (within 1e-5: fashion-flow's
 * forward is not bit-identical across batch sizes, see README "Engine and serve"), cross-search
 * batching, round-robin lanes, cancellation, admission (BUSY, memory ceiling), isolation of a
 * failing verifier, a responsive event loop, models loaded once.
 */
import os from 'node:os';
import { describe, expect, it } from 'vitest';
import { createEngine } from '../src/engine/engine';
import { LaneRegistry, ModuleBatcher } from '../src/engine/batcher';
import { EngineMetrics } from '../src/engine/metrics';
import { Admission, NoRoomError } from '../src/engine/admission';
import { FunctionVerifier } from '../src/verifiers/verifier';
import { DiffusionSearchError } from '../src/errors';
import { tensor } from '../src/tensor';
import { slice } from '../src/tensor-ops';
import type { GenerateOptions } from '../src/generate';
import type { TorchModule } from '../src/module';
import { engineMaker } from './engine-helpers';
import { expectCode } from './helpers';
import { OPTIMIZED_FORWARDS } from '../src/request/defaults';

const make = engineMaker();

const maxDiff = (a: Float32Array, b: Float32Array) => {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
};

const gmm = (k: number): GenerateOptions => ({
  model: 'gmm2d',
  algorithm: (['best-of-n', 'evosearch', 'zero-order', 'beam'] as const)[k % 4],
  budget: 200 + 40 * (k % 3),
  n: 1 + (k % 2),
  seed: k,
  steps: 10,
  eval: false,
});

describe('concurrency determinism', () => {
  it('16 concurrent gmm2d requests give what each gives alone (within 1e-5), with merged forwards', async () => {
    const e = make();
    const alone = [];
    for (let k = 0; k < 16; k++) alone.push(await e.generate(gmm(k)));
    const together = await Promise.all(Array.from({ length: 16 }, (_, k) => e.generate(gmm(k))));
    for (let k = 0; k < 16; k++) {
      expect(maxDiff(together[k].samples, alone[k].samples)).toBeLessThanOrEqual(1e-5);
      expect(together[k].report.nfe_used).toBe(alone[k].report.nfe_used);
      together[k].rewards.forEach((r, i) => expect(Math.abs(r - alone[k].rewards[i])).toBeLessThanOrEqual(1e-5));
    }
    const d = e.metrics().models.find((m) => m.kind === 'denoiser')!;
    expect(d.merged).toBeGreaterThan(0);
    // NFE charged per search exactly: the rows through the denoiser are the NFE the reports sum to.
    const reported = [...alone, ...together].reduce((s, r) => s + (r.report.nfe_used as number), 0);
    expect(e.metrics().nfe).toBe(reported);
  });

  it('fashion-flow: 4 concurrent searches within 1e-5 of the same searches alone', async () => {
    const e = make();
    const req = (k: number): GenerateOptions => ({
      model: 'fashion-flow',
      algorithm: k % 2 ? 'evosearch' : 'best-of-n',
      class: k,
      budget: 40,
      steps: 4,
      seed: k,
      eval: false,
    });
    const alone = [];
    for (let k = 0; k < 4; k++) alone.push(await e.generate(req(k)));
    const together = await Promise.all(Array.from({ length: 4 }, (_, k) => e.generate(req(k))));
    for (let k = 0; k < 4; k++) expect(maxDiff(together[k].samples, alone[k].samples)).toBeLessThanOrEqual(1e-5);
    expect(e.metrics().models.find((m) => m.kind === 'denoiser')!.merged).toBeGreaterThan(0);
  });

  it('generate() and an engine give the same n samples (sample i does not depend on n)', async () => {
    const { generate } = await import('../src/generate');
    const a = await generate({ model: 'gmm2d', algorithm: 'evosearch', budget: 300, n: 3, seed: 5, steps: 10 });
    const b = await make().generate({ model: 'gmm2d', algorithm: 'evosearch', budget: 300, n: 1, seed: 5, steps: 10 });
    expect(maxDiff(a.samples.subarray(0, 2), b.samples)).toBeLessThanOrEqual(1e-5);
    expect(a.report).toMatchObject({ n: 3, complete: true, kept: [1, 1, 1] });
  });
});

/**
 * A module stand-in: records each forward's rows, how many ran at once and the thread cap it was
 * given (0: none); returns its first input, copied.
 */
function fakeModule(log: number[][], delayMs = 5, at = { now: 0, most: 0 }, threads: number[] = []): TorchModule {
  return {
    path: 'fake',
    device: 'cpu',
    async call(_m: string, inputs: unknown[], _s?: unknown, cap?: number) {
      const x = inputs[0] as ReturnType<typeof tensor>;
      threads.push(cap ?? 0);
      log.push(Array.from((await x.toArray()) as Float32Array));
      at.most = Math.max(at.most, ++at.now);
      await new Promise((r) => setTimeout(r, delayMs));
      at.now--;
      return slice(x, 0, x.shape[0]);
    },
  } as unknown as TorchModule;
}

describe('batcher', () => {
  it('merges calls, splits outputs back per caller, and serves lanes round-robin', async () => {
    const log: number[][] = [];
    const lanes = new LaneRegistry();
    const b = new ModuleBatcher(
      fakeModule(log),
      'denoiser',
      { maxBatch: 4, windowUs: 0, enabled: true },
      lanes,
      new EngineMetrics(4),
    );
    // Lane 1 (a big request) queues six 2-row calls, lane 2 (a small one) one call, all at once.
    const { createStream } = await import('../src/stream');
    const s1 = createStream(),
      s2 = createStream();
    lanes.set(s1, { id: 1 });
    lanes.set(s2, { id: 2 });
    const call = (v: number, s: typeof s1) => b.call('forward', [tensor(Float32Array.from([v, v]), [2])], s);
    const outs = await Promise.all([...[1, 2, 3, 4, 5, 6].map((v) => call(v, s1)), call(9, s2)]);
    for (const [i, o] of outs.entries())
      expect(Array.from((await (o as ReturnType<typeof tensor>).toArray()) as Float32Array)).toEqual(
        i < 6 ? [i + 1, i + 1] : [9, 9],
      );
    // At most 4 rows per forward; the small lane rides in the first merged forward, not after the big one's six.
    expect(log.every((rows) => rows.length <= 4)).toBe(true);
    const at = log.findIndex((rows) => rows.includes(9));
    expect(at).toBeLessThanOrEqual(1);
    await b.close();
    await s1.close();
    await s2.close();
  });

  it("a lane's abort drops its queued calls at once (ABORTED), others run", async () => {
    const log: number[][] = [];
    const lanes = new LaneRegistry();
    const b = new ModuleBatcher(
      fakeModule(log, 200),
      'denoiser',
      { maxBatch: 2, windowUs: 0, enabled: true },
      lanes,
      new EngineMetrics(2),
    );
    const { createStream } = await import('../src/stream');
    const s1 = createStream(),
      s2 = createStream();
    const ctl = new AbortController();
    lanes.set(s1, { id: 1 });
    lanes.set(s2, { id: 2, signal: ctl.signal });
    const first = b.call('forward', [tensor(Float32Array.from([1, 1]), [2])], s1); // runs 200 ms
    await new Promise((r) => setTimeout(r, 20));
    const queued = b.call('forward', [tensor(Float32Array.from([2, 2]), [2])], s2);
    expect(b.queued.rows).toBe(2);
    const t0 = performance.now();
    ctl.abort();
    await expectCode(() => queued, 'ABORTED');
    expect(performance.now() - t0).toBeLessThan(100);
    expect(b.queued.rows).toBe(0);
    await first;
    expect(log).toHaveLength(1);
    await b.close();
    await s1.close();
    await s2.close();
  });
});

describe('forward slots (parallelForwards): calls cut across slots, smaller requests first', () => {
  const call = (b: ModuleBatcher, vs: number[], s: Parameters<ModuleBatcher['call']>[2]) =>
    b.call('forward', [tensor(Float32Array.from(vs), [vs.length])], s);
  const values = async (o: unknown) => Array.from((await (o as ReturnType<typeof tensor>).toArray()) as Float32Array);

  it('a lone call is cut over the idle slots and joined back in row order', async () => {
    const log: number[][] = [];
    const lanes = new LaneRegistry();
    const at = { now: 0, most: 0 };
    const b = new ModuleBatcher(
      fakeModule(log, 100, at),
      'denoiser',
      { maxBatch: 64, windowUs: 0, enabled: true, parallel: 3, minRows: 2 },
      lanes,
      new EngineMetrics(64),
    );
    const { createStream } = await import('../src/stream');
    const s = createStream();
    lanes.set(s, { id: 1 });
    const xs = Array.from({ length: 10 }, () => Math.random());
    expect(await values(await call(b, xs, s))).toEqual(Array.from(Float32Array.from(xs)));
    // Three forwards of ≤ 4 rows each, side by side.
    expect(log.map((r) => r.length).sort()).toEqual([3, 3, 4]);
    expect(log.flat().sort()).toEqual(Array.from(Float32Array.from(xs)).sort());
    expect(at.most).toBe(3);
    // Below minRows a call is not cut.
    log.length = 0;
    await call(b, [1, 2, 3], s);
    expect(log).toEqual([[1, 2, 3]]);
    await b.close();
    await s.close();
  });

  it('forwards started together share the threads equally; one started beside running ones, no cap', async () => {
    const log: number[][] = [],
      threads: number[] = [];
    const lanes = new LaneRegistry();
    const b = new ModuleBatcher(
      fakeModule(log, 50, { now: 0, most: 0 }, threads),
      'denoiser',
      { maxBatch: 64, windowUs: 0, enabled: true, parallel: 3, minRows: 2, threads: 7 },
      lanes,
      new EngineMetrics(64),
    );
    const { createStream } = await import('../src/stream');
    const s = createStream();
    lanes.set(s, { id: 1 });
    const xs = Array.from({ length: 12 }, () => Math.random());
    expect(await values(await call(b, xs, s))).toEqual(Array.from(Float32Array.from(xs)));
    // A lone call cut over the 3 idle slots: 3 forwards started at once, ⌊7 / 3⌋ threads each.
    expect(threads).toEqual([2, 2, 2]);
    // One lane's 4 rows cut 2 + 2 over the idle slots (started together: ⌊7 / 2⌋ each), then another
    // lane's call starts alone beside them: no cap, the streams' sharing divides the threads.
    threads.length = 0;
    const s2 = createStream(),
      s3 = createStream();
    lanes.set(s2, { id: 2 });
    lanes.set(s3, { id: 3 });
    const first = call(b, [1, 2, 3, 4], s2);
    await new Promise((r) => setTimeout(r, 10));
    await Promise.all([first, call(b, [5, 6], s3)]);
    expect(threads).toEqual([3, 3, 0]);
    await b.close();
    await Promise.all([s, s2, s3].map((x) => x.close()));
  });

  it('without minRows, calls are cut to batchMinRows rows when the copy serves small calls, else 16', async () => {
    const { createStream } = await import('../src/stream');
    for (const [optimizes, pieces] of [
      [true, [5, 5]],
      [false, [10]],
    ] as const) {
      const log: number[][] = [];
      const lanes = new LaneRegistry();
      const m = Object.assign(fakeModule(log, 20), { optimizesSmallCalls: optimizes });
      const b = new ModuleBatcher(
        m,
        'denoiser',
        { maxBatch: 64, windowUs: 0, enabled: true, parallel: 2 },
        lanes,
        new EngineMetrics(64),
      );
      const s = createStream();
      lanes.set(s, { id: 1 });
      const xs = Array.from({ length: 10 }, () => Math.random());
      expect(await values(await call(b, xs, s))).toEqual(Array.from(Float32Array.from(xs)));
      expect(log.map((r) => r.length).sort()).toEqual(pieces);
      await b.close();
      await s.close();
    }
    expect(OPTIMIZED_FORWARDS.batchMinRows).toBeLessThanOrEqual(5);
  });

  it(
    'smaller requests first, only sizes within 4× share a forward; an abort mid-call drops its queued rows and ' +
      'rejects once its running piece is back',
    async () => {
      const log: number[][] = [];
      const lanes = new LaneRegistry();
      const b = new ModuleBatcher(
        fakeModule(log, 100),
        'denoiser',
        { maxBatch: 4, windowUs: 0, enabled: true, parallel: 1, minRows: 1 },
        lanes,
        new EngineMetrics(4),
      );
      const { createStream } = await import('../src/stream');
      const big = createStream(),
        mid = createStream(),
        small = createStream(),
        third = createStream();
      const ctl = new AbortController();
      lanes.set(big, { id: 1, work: 5000, signal: ctl.signal });
      lanes.set(mid, { id: 2, work: 300 });
      lanes.set(small, { id: 3, work: 100 });
      const head = call(b, [0, 0, 0, 0], third); // occupies the slot while the others queue
      await new Promise((r) => setTimeout(r, 10));
      const bigCall = call(b, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10], big);
      const midCall = call(b, [5, 5], mid);
      const smallCall = call(b, [7, 7], small);
      await head;
      // Work 100 first, then 300 (within 4×) in the same forward; 5000 waits for a forward of its own.
      expect(await values(await smallCall)).toEqual([7, 7]);
      expect(await values(await midCall)).toEqual([5, 5]);
      expect(log[1]).toEqual([7, 7, 5, 5]);
      while (log.length < 3) await new Promise((r) => setTimeout(r, 2)); // the big call's first forward has started
      expect(log[2]).toEqual([1, 2, 3, 4]);
      expect(b.queued.rows).toBe(6);
      ctl.abort();
      expect(b.queued.rows).toBe(0); // dropped at once
      await expectCode(() => bigCall, 'ABORTED');
      expect(log).toHaveLength(3);
      await b.close();
      await Promise.all([big.close(), mid.close(), small.close(), third.close()]);
    },
  );

  it(
    'express slot: with every slot busy, a request 4× smaller than all running ones starts at once; a bigger one ' +
      'waits',
    async () => {
      const log: number[][] = [];
      const at = { now: 0, most: 0 };
      const lanes = new LaneRegistry();
      const b = new ModuleBatcher(
        fakeModule(log, 150, at),
        'denoiser',
        { maxBatch: 2, windowUs: 0, enabled: true, parallel: 2, minRows: 2 },
        lanes,
        new EngineMetrics(2),
      );
      const { createStream } = await import('../src/stream');
      const [big1, big2, mid, small] = [createStream(), createStream(), createStream(), createStream()];
      lanes.set(big1, { id: 1, work: 5000 });
      lanes.set(big2, { id: 2, work: 5000 });
      lanes.set(mid, { id: 3, work: 2000 });
      lanes.set(small, { id: 4, work: 100 });
      const bigs = [call(b, [1, 1], big1), call(b, [2, 2], big2)];
      while (at.now < 2) await new Promise((r) => setTimeout(r, 2)); // both slots busy
      const midCall = call(b, [3, 3], mid); // 2000 × 4 > 5000: waits for a slot
      const smallCall = call(b, [4, 4], small); // 100 × 4 ≤ 5000: the express slot
      expect(await values(await smallCall)).toEqual([4, 4]);
      expect(at.most).toBe(3); // three forwards at once: both slots and the express one
      await Promise.all([...bigs, midCall]);
      // The small request started beside the two running ones; the mid one only when a slot freed.
      expect(log.map((r) => r[0])).toEqual([1, 2, 4, 3]);
      await b.close();
      await Promise.all([big1, big2, mid, small].map((s) => s.close()));
    },
  );

  it(
    'a slot kept for a small request: its later steps run beside one big forward, not two, and the slot is given ' +
      'back when it stops calling',
    async () => {
      const log: number[][] = [];
      const at = { now: 0, most: 0 };
      const lanes = new LaneRegistry();
      // A long hold (the default is 5 ms): a loaded test machine's event loop must not lose the slot.
      const b = new ModuleBatcher(
        fakeModule(log, 40, at),
        'denoiser',
        { maxBatch: 2, windowUs: 0, enabled: true, parallel: 2, minRows: 2, holdMs: 100 },
        lanes,
        new EngineMetrics(2),
      );
      const { createStream } = await import('../src/stream');
      const [big1, big2, small] = [createStream(), createStream(), createStream()];
      lanes.set(big1, { id: 1, work: 5000 });
      lanes.set(big2, { id: 2, work: 5000 });
      lanes.set(small, { id: 3, work: 100 });
      let stop = false;
      const bigLoop = (s: typeof big1, v: number) =>
        (async () => {
          while (!stop) await call(b, [v, v], s);
        })();
      const loops = [bigLoop(big1, 1), bigLoop(big2, 2)];
      while (at.now < 2) await new Promise((r) => setTimeout(r, 2)); // both slots busy with big forwards
      // The small request's steps, each a call right after the last one's answer (as a search's).
      const beside: number[] = [];
      for (let k = 0; k < 6; k++) {
        const c = call(b, [7, 7], small);
        await new Promise((r) => setTimeout(r, 5));
        beside.push(at.now); // forwards running while the small step runs
        expect(await values(await c)).toEqual([7, 7]);
      }
      // The first steps may use the express slot (three at once, until a regular slot frees and is
      // kept); from the third on, every step runs beside exactly one big forward.
      expect(beside.slice(2)).toEqual([2, 2, 2, 2]);
      // The big requests went on meanwhile, in one slot.
      const during = log.length;
      expect(log.filter((r) => r[0] !== 7).length).toBeGreaterThan(2);
      // Once the small request stops calling, the held slot goes back to big forwards after holdMs.
      await new Promise((r) => setTimeout(r, 160));
      let both = 0;
      for (let i = 0; i < 20 && both === 0; i++) {
        await new Promise((r) => setTimeout(r, 5));
        if (at.now === 2) both++;
      }
      expect(both).toBe(1);
      expect(log.length).toBeGreaterThan(during);
      stop = true;
      await Promise.all(loops);
      await b.close();
      await Promise.all([big1, big2, small].map((s) => s.close()));
    },
  );

  it(
    'a second forward waits for minRows queued rows while one runs (few rows join the next forward), starts at ' +
      'once for minRows rows or a request 4× smaller, and after spreadMs; spreadMs 0 starts it at once',
    async () => {
      const { createStream } = await import('../src/stream');
      const run = async (spreadMs: number, delayMs: number) => {
        const log: number[][] = [];
        const at = { now: 0, most: 0 };
        const lanes = new LaneRegistry();
        const b = new ModuleBatcher(
          fakeModule(log, delayMs, at),
          'denoiser',
          { maxBatch: 32, windowUs: 0, enabled: true, parallel: 2, minRows: 4, spreadMs },
          lanes,
          new EngineMetrics(32),
        );
        const s = Array.from({ length: 6 }, () => createStream());
        s.forEach((x, i) => lanes.set(x, { id: i + 1, work: i === 5 ? 5 : 20 }));
        const busy = async () => {
          while (at.now < 1) await new Promise((r) => setTimeout(r, 1));
        };
        const done = async () => (await b.close(), await Promise.all(s.map((x) => x.close())));
        return { log, at, b, s, busy, done };
      };
      const rnd = () => Math.round(Math.random() * 1000);
      // Three 1-row calls (3 < minRows) arrive while a forward runs: no forward beside it; they
      // make one forward of 3 rows once it ends.
      let t = await run(60_000, 60);
      const v = [rnd(), rnd(), rnd(), rnd()];
      let first = call(t.b, [v[0]], t.s[0]);
      await t.busy();
      let rest = [1, 2, 3].map((k) => call(t.b, [v[k]], t.s[k]));
      for (const [k, c] of [first, ...rest].entries()) expect(await values(await c)).toEqual([v[k]]);
      expect(t.log).toEqual([[v[0]], v.slice(1)]);
      expect(t.at.most).toBe(1);
      // Four rows queued (a 2-row call and two 1-row calls): the second slot starts at once.
      first = call(t.b, [1], t.s[0]);
      await t.busy();
      rest = [call(t.b, [2, 2], t.s[1]), call(t.b, [3], t.s[2]), call(t.b, [4], t.s[3])];
      while (t.at.now < 2) await new Promise((r) => setTimeout(r, 1));
      await Promise.all([first, ...rest]);
      expect(t.log.slice(2)).toEqual([[1], [2, 2, 3, 4]]);
      // A request 4× smaller than the running one (work 5 against 20) starts beside it at once.
      first = call(t.b, [1], t.s[0]);
      await t.busy();
      const small = call(t.b, [9], t.s[5]);
      while (t.at.now < 2) await new Promise((r) => setTimeout(r, 1));
      await Promise.all([first, small]);
      await t.done();
      // After spreadMs a forward of fewer rows starts beside the running one, before that one ends.
      for (const spreadMs of [50, 0]) {
        t = await run(spreadMs, 2000);
        // spreadMs counts from the running forward's start, which is after t0 (not after busy()).
        const t0 = performance.now();
        first = call(t.b, [1], t.s[0]);
        await t.busy();
        const second = call(t.b, [2], t.s[1]);
        while (t.at.now < 2) await new Promise((r) => setTimeout(r, 1));
        expect(performance.now() - t0).toBeGreaterThanOrEqual(spreadMs - 1);
        expect(performance.now() - t0).toBeLessThan(1500);
        await Promise.all([first, second]);
        expect(t.log).toEqual([[1], [2]]);
        await t.done();
      }
    },
  );

  it(
    'an engine with 3 forward slots gives what an engine without batching gives (within 1e-5), alone and 16 at ' +
      'once',
    async () => {
      const ref = make({ batching: false });
      const e = make({ parallelForwards: 3 });
      expect(e.parallelForwards).toBe(3);
      // The default on CPU: a forward slot per core, whatever the threads (generate() and serve alike).
      expect(make({}).parallelForwards).toBe(os.cpus().length);
      expect(make({ threads: 1 }).parallelForwards).toBe(os.cpus().length);
      const reqs = Array.from({ length: 16 }, (_, k) => gmm(k + 3));
      const want = [];
      for (const r of reqs) want.push(await ref.generate(r));
      const lone = await e.generate(reqs[0]);
      const together = await Promise.all(reqs.map((r) => e.generate(r)));
      for (const [k, got] of [[0, lone] as const, ...together.map((t, k) => [k, t] as const)]) {
        expect(maxDiff(got.samples, want[k].samples)).toBeLessThanOrEqual(1e-5);
        got.rewards.forEach((r, i) => expect(Math.abs(r - want[k].rewards[i])).toBeLessThanOrEqual(1e-5));
        expect(got.report.nfe_used).toBe(want[k].report.nfe_used);
      }
      // NFE charged per search exactly, also when calls are cut in pieces.
      expect(e.metrics().nfe).toBe([lone, ...together].reduce((s, r) => s + (r.report.nfe_used as number), 0));
      const d = e.metrics().models.find((m) => m.kind === 'denoiser')!;
      expect(d.merged).toBeGreaterThan(0);
    },
  );

  it(
    'fashion-flow with 2 forward slots: 4 concurrent searches within 1e-5 of the same searches without ' + 'batching',
    async () => {
      const ref = make({ batching: false });
      const e = make({ parallelForwards: 2 });
      const req = (k: number): GenerateOptions => ({
        model: 'fashion-flow',
        algorithm: k % 2 ? 'evosearch' : 'best-of-n',
        class: k + 2,
        budget: 40,
        steps: 4,
        seed: 10 + k,
        eval: false,
      });
      const want = [];
      for (let k = 0; k < 4; k++) want.push(await ref.generate(req(k)));
      const together = await Promise.all(Array.from({ length: 4 }, (_, k) => e.generate(req(k))));
      for (let k = 0; k < 4; k++) expect(maxDiff(together[k].samples, want[k].samples)).toBeLessThanOrEqual(1e-5);
    },
  );
});

describe('cancellation, admission, failures', () => {
  it('cancelling a request frees its rows, its searches and its memory reservation', async () => {
    const e = make({ searchesPerRequest: 4 });
    const ctl = new AbortController();
    const p = e.generate(
      { model: 'fashion-flow', algorithm: 'evosearch', class: 'Shirt', budget: 2000, n: 4, steps: 10, eval: false },
      { signal: ctl.signal },
    );
    await new Promise((r) => setTimeout(r, 2000));
    expect(e.metrics().activeSearches).toBe(4);
    const t0 = performance.now();
    ctl.abort();
    await expectCode(() => p, 'ABORTED');
    // Within a step: one forward of the 4 searches' rows (~40 each) and the step's kernels.
    expect(performance.now() - t0).toBeLessThan(5_000);
    const m = e.metrics();
    expect(m).toMatchObject({ activeRequests: 0, activeSearches: 0, queuedRows: 0, queuedCalls: 0, reservedBytes: 0 });
    expect(m.requests.aborted).toBe(1);
    // The engine still works.
    const ok = await e.generate({ model: 'gmm2d', algorithm: 'best-of-n', budget: 50, steps: 5 });
    expect(ok.complete).toBe(true);
  });

  it('a full queue refuses at once with BUSY; waiting requests run in order', async () => {
    const e = make({ maxActive: 1, maxQueue: 1 });
    // Long enough (~0.5 s warm) that a still runs after 50 ms on a fast machine.
    const slow = { model: 'gmm2d', algorithm: 'evosearch' as const, budget: 30000, steps: 20 };
    const a = e.generate(slow);
    const b = e.generate(slow);
    await new Promise((r) => setTimeout(r, 50)); // a loads and runs; b waits
    const t0 = performance.now();
    const err = await expectCode(() => e.generate(slow), 'BUSY');
    expect(performance.now() - t0).toBeLessThan(100);
    expect(err.message).toMatch(/1 waiting/);
    expect((await a).complete && (await b).complete).toBe(true);
    expect(e.metrics().requests).toMatchObject({ ok: 2, busy: 1 });
  });

  it('a request larger than the memory ceiling is refused with OUT_OF_MEMORY, naming the limit', async () => {
    const e = make({ memoryLimit: 1024 * 1024 });
    const err = await expectCode(
      () => e.generate({ model: 'fashion-flow', algorithm: 'best-of-n', budget: 2000, n: 8, steps: 10 }),
      'OUT_OF_MEMORY',
    );
    expect(err.message).toMatch(/memory limit of 1\.0 MiB/);
    expect(e.metrics().reservedBytes).toBe(0);
  });

  it('a failing verifier fails only its own request', async () => {
    const e = make();
    const bad = new FunctionVerifier('broken', async () => {
      throw new DiffusionSearchError('grader down', 'VERIFIER');
    });
    const base = { model: 'gmm2d', algorithm: 'best-of-n' as const, budget: 100, steps: 10 };
    const [ok1, failed, ok2] = await Promise.allSettled([
      e.generate({ ...base, seed: 1, n: 2 }),
      e.generate({ ...base, verifier: [bad], n: 3 }),
      e.generate({ ...base, seed: 2 }),
    ]);
    expect(ok1.status).toBe('fulfilled');
    expect(ok2.status).toBe('fulfilled');
    expect(failed.status).toBe('rejected');
    expect((failed as PromiseRejectedResult).reason.code).toBe('VERIFIER');
    expect(e.metrics()).toMatchObject({ activeSearches: 0, requests: { ok: 2, 'error:VERIFIER': 1 } });
  });

  it('admission unit: FIFO, BUSY beyond the queue, abort while queued', async () => {
    const a = new Admission({ maxActive: 1, maxQueue: 2, memoryLimit: 100 });
    const r1 = await a.admit(60);
    const ctl = new AbortController();
    const w1 = a.admit(60, ctl.signal);
    const w2 = a.admit(10);
    await expectCode(() => a.admit(1), 'BUSY');
    ctl.abort();
    await expectCode(() => w1, 'ABORTED');
    r1();
    (await w2)();
    expect(a.active).toBe(0);
    expect(a.reserved).toBe(0);
  });

  it('admission unit: wait false refuses at once (NoRoomError, BUSY) what would wait, reserving nothing', async () => {
    const a = new Admission({ maxActive: 2, maxQueue: 2, memoryLimit: 100 });
    const r1 = await a.admit(60, undefined, Infinity, false);
    // Two callers deciding at once: the decision and the reservation are one step, so only one fits.
    const [x, y] = await Promise.allSettled([
      a.admit(30, undefined, Infinity, false),
      a.admit(30, undefined, Infinity, false),
    ]);
    expect([x.status, y.status]).toEqual(['fulfilled', 'rejected']);
    expect((y as PromiseRejectedResult).reason).toBeInstanceOf(NoRoomError);
    expect((y as PromiseRejectedResult).reason.code).toBe('BUSY');
    expect(a).toMatchObject({ active: 2, reserved: 90, queueDepth: 0 });
    r1();
    (x as PromiseFulfilledResult<() => void>).value();
    expect(a).toMatchObject({ active: 0, reserved: 0 });
  });

  it(
    'engine: with its one place taken by a big request, a small one is admitted at once and ends first; a second ' +
      'big one waits its turn',
    async () => {
      const e = make({ maxActive: 1 });
      const ended: string[] = [];
      const run = (name: string, budget: number, seed: number) =>
        e
          .generate({ model: 'gmm2d', algorithm: 'evosearch', budget, steps: 10, seed, eval: false })
          .then((r) => (ended.push(name), r));
      const big = run('big', 40000, 1);
      while (e.metrics().activeRequests === 0) await new Promise((r) => setTimeout(r, 1));
      const big2 = run('big2', 40000, 2); // not small: queued behind the first
      const small = run('small', 100, 3); // 100 × 4 ≤ 40000: beyond maxActive, at once
      await new Promise((r) => setImmediate(r));
      expect(e.metrics()).toMatchObject({ activeRequests: 2, queueDepth: 1 });
      await small;
      expect(ended).toEqual(['small']);
      await Promise.all([big, big2]);
      expect(ended).toEqual(['small', 'big', 'big2']);
    },
  );

  it(
    'express admission: with every place taken, a request 4× smaller than all running starts at once (up to ' +
      '⌈maxActive/4⌉ of them); others wait in order',
    async () => {
      const a = new Admission({ maxActive: 4, maxQueue: 8, memoryLimit: 1000 });
      const bigs = [];
      for (let i = 0; i < 4; i++) bigs.push(await a.admit(10, undefined, 5000));
      const order: string[] = [];
      const track = (name: string, p: Promise<() => void>) => p.then((r) => (order.push(name), r));
      const queuedBig = track('big', a.admit(10, undefined, 5000));
      const mid = track('mid', a.admit(10, undefined, 2000)); // 2000 × 4 > 5000: waits
      const small = await a.admit(10, undefined, 1000); // 1000 × 4 ≤ 5000: at once, beyond maxActive
      expect(a.active).toBe(5);
      expect(a.express).toBe(1);
      const small2 = track('small2', a.admit(10, undefined, 100)); // the one express place is taken: waits
      const huge = a.admit(990, undefined, 10); // small, but over the memory ceiling: waits
      await new Promise((r) => setImmediate(r));
      expect(order).toEqual([]);
      small(); // the express place frees: the small request waiting takes it, ahead of no regular place
      await new Promise((r) => setImmediate(r));
      expect(order).toEqual(['small2']);
      expect(a.express).toBe(1);
      bigs[0](); // a regular place frees: the queue's first
      await new Promise((r) => setImmediate(r));
      expect(order).toEqual(['small2', 'big']);
      for (const r of bigs.slice(1)) r();
      (await queuedBig)();
      (await mid)();
      (await small2)();
      (await huge)();
      expect(order).toEqual(['small2', 'big', 'mid']);
      expect([a.active, a.express, a.reserved]).toEqual([0, 0, 0]);
    },
  );
});

describe('service behaviour', () => {
  it('the event loop stays responsive under 16 concurrent searches (timer drift)', async () => {
    const e = make();
    await e.generate({ model: 'fashion-flow', algorithm: 'best-of-n', budget: 4, steps: 2, eval: false }); // load first
    global.gc?.(); // the garbage of earlier tests is not what this measures
    let worst = 0,
      last = performance.now();
    const timer = setInterval(() => {
      const now = performance.now();
      worst = Math.max(worst, now - last - 10);
      last = now;
    }, 10);
    try {
      await Promise.all(
        Array.from({ length: 16 }, (_, k) =>
          e.generate({
            model: 'fashion-flow',
            algorithm: k % 2 ? 'evosearch' : 'best-of-n',
            class: k % 10,
            budget: 30,
            steps: 3,
            seed: k,
            eval: false,
          }),
        ),
      );
    } finally {
      clearInterval(timer);
    }
    // The searches run on native threads; JS only orchestrates. (Generous: the machine is shared.)
    expect(worst).toBeLessThan(250);
  });

  it('models load once: repeated and concurrent requests share them (metrics)', async () => {
    const e = make();
    const req = { model: 'gmm2d', algorithm: 'best-of-n' as const, budget: 40, steps: 4 };
    await e.generate(req);
    await Promise.all([e.generate(req), e.generate(req), e.generate({ ...req, verifier: ['gmm2d-reward'] })]);
    const m = e.metrics();
    expect(m.loads).toBe(2); // gmm2d and gmm2d-reward
    expect(m.loaded).toBe(2);
    expect(e.prometheus()).toMatch(/diffusion_search_model_loads_total 2/);
    expect(e.prometheus()).toMatch(/diffusion_search_requests_total\{outcome="ok"\} 4/);
    expect(e.prometheus()).toMatch(
      /diffusion_search_rows_per_forward_bucket\{model="gmm2d",kind="denoiser",le="\+Inf"\} \d+/,
    );
  });

  it('batching off: same results, no merged forwards', async () => {
    const e = make({ batching: false });
    const on = make();
    const rs = await Promise.all([0, 1, 2].map((k) => e.generate(gmm(k))));
    const again = await Promise.all([0, 1, 2].map((k) => on.generate(gmm(k))));
    rs.forEach((r, k) => expect(maxDiff(r.samples, again[k].samples)).toBeLessThanOrEqual(1e-5));
    expect(e.metrics().models.every((m) => m.merged === 0)).toBe(true);
  });

  it('a closed engine refuses with BUSY', async () => {
    const e = createEngine();
    await e.close();
    await expectCode(() => e.generate({ model: 'gmm2d' }), 'BUSY');
  });
});
