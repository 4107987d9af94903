/**
 * The engine's step pool (src/engine/step-pool.ts): Euler segments of several searches, joining at
 * different times and σ, give what each gives stepped alone (one eulerStep per step on the plain
 * denoiser, every element, fresh random inputs), share forwards, charge each search its own NFE,
 * return the mid and last x̂0 as SearchRun.advance does, and let a cancelled search leave while the
 * others finish.
 */
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Denoiser } from '../src/models/denoiser';
import { LaneRegistry } from '../src/engine/batcher';
import { StepPools } from '../src/engine/step-pool';
import { eulerStep } from '../src/samplers';
import { uniform } from '../src/schedules';
import { Budget } from '../src/search/budget';
import type { EulerSegment } from '../src/search/types';
import { createStream, type Stream } from '../src/stream';
import { tensor } from '../src/tensor';
import type { NativeTensor } from '../src/native';

const models = path.join(__dirname, '..', 'models');
let gmm: Denoiser;
let flow: Denoiser;
let stream: Stream;

beforeAll(async () => {
  gmm = await Denoiser.load(path.join(models, 'gmm2d.pt'));
  flow = await Denoiser.load(path.join(models, 'fashion-flow.pt'));
  stream = createStream();
});
afterAll(async () => {
  await stream.close();
});

const gauss = (n: number) =>
  Float32Array.from(
    { length: n },
    () => Math.sqrt(-2 * Math.log(1 - Math.random())) * Math.cos(6.2832 * Math.random()),
  );
const values = async (t: NativeTensor | null) => (t ? ((await t.toArray()) as Float32Array) : null);

/** Counts the rows and calls through a denoiser's forward (what the pool merges). */
function countForward(d: Denoiser): { rows: number; calls: number } {
  const counter = { rows: 0, calls: 0 };
  const m = d.module as unknown as { call: (method: string, inputs: unknown[], s?: unknown) => Promise<unknown> };
  const call = m.call.bind(m);
  m.call = (method, inputs, s) => {
    counter.calls++;
    counter.rows += (inputs[0] as NativeTensor).shape[0];
    return call(method, inputs, s);
  };
  return counter;
}

interface Case {
  d: Denoiser;
  x: Float32Array;
  rows: number;
  from: number;
  to: number;
  midAt: number;
  cond: number;
  guidance: number;
}

/** The segment alone: one Euler step at a time on the denoiser, as SearchRun.advance runs it without a pool. */
async function alone(c: Case, sigmas: number[]) {
  const meter = new Budget(1e6);
  let x = tensor(c.x, [c.rows, ...c.d.sampleShape]);
  let x0: Float32Array | null = null,
    x0Mid: Float32Array | null = null;
  for (let i = c.from; i < c.to; i++) {
    const ctx = { denoiser: c.d, cond: new Array(c.rows).fill(c.cond), guidance: c.guidance, meter, stream };
    const r = await eulerStep(ctx, x, new Array(c.rows).fill(sigmas[i]), new Array(c.rows).fill(sigmas[i + 1]));
    x.dispose();
    x = r.x;
    if (i === c.midAt) x0Mid = await values(r.x0);
    else x0 = await values(r.x0);
    r.x0.dispose();
  }
  const out = await values(x);
  x.dispose();
  return { x: out!, x0, x0Mid, nfe: meter.used };
}

function pools(lanes = new LaneRegistry()) {
  let id = 100;
  return { lanes, pools: new StepPools({ lanes, stream: () => stream.view(), laneId: () => id++ }) };
}

function segment(c: Case, sigmas: number[], meter: Budget, check = () => undefined): EulerSegment {
  return {
    denoiser: c.d,
    guidance: c.guidance,
    x: tensor(c.x, [c.rows, ...c.d.sampleShape]),
    sigmas,
    from: c.from,
    to: c.to,
    midAt: c.midAt,
    cond: c.cond,
    meter,
    check,
  };
}

function expectClose(a: Float32Array | null, b: Float32Array | null, what: string) {
  expect(a === null, what).toBe(b === null);
  if (!a || !b) return;
  expect(a.length, what).toBe(b.length);
  let scale = 1;
  for (const v of b) scale = Math.max(scale, Math.abs(v));
  for (let i = 0; i < a.length; i++) expect(Math.abs(a[i] - b[i]), `${what}[${i}]`).toBeLessThanOrEqual(1e-5 * scale);
}

describe('step pool', () => {
  it('segments joining at different times and σ give what each gives alone, in shared forwards', async () => {
    const sigmas = uniform(12);
    const cases: Case[] = Array.from({ length: 6 }, (_, k) => {
      const rows = 1 + Math.floor(Math.random() * 3);
      const from = Math.floor(Math.random() * 5);
      const to = Math.min(12, from + 4 + Math.floor(Math.random() * 6));
      const midAt = k % 2 ? from + Math.floor(Math.random() * (to - from)) : -1;
      return { d: gmm, x: gauss(rows * 2), rows, from, to, midAt, cond: 0, guidance: 1 };
    });
    const want = [];
    for (const c of cases) want.push(await alone(c, sigmas));
    const { lanes, pools: p } = pools();
    const count = countForward(gmm);
    const meters = cases.map(() => new Budget(1e6));
    // Half start now; the rest join while the first ones are mid-segment.
    const got = cases.slice(0, 3).map((c, k) => p.euler(segment(c, sigmas, meters[k])));
    await new Promise((r) => setTimeout(r, 2));
    got.push(...cases.slice(3).map((c, k) => p.euler(segment(c, sigmas, meters[k + 3]))));
    const res = await Promise.all(got);
    for (const [k, r] of res.entries()) {
      expectClose(await values(r.x), want[k].x, `case ${k} x`);
      expectClose(await values(r.x0), want[k].x0, `case ${k} x0`);
      expectClose(await values(r.x0Mid), want[k].x0Mid, `case ${k} x0Mid`);
      expect(meters[k].used).toBe(want[k].nfe);
      expect(meters[k].used).toBe(cases[k].rows * (cases[k].to - cases[k].from));
      [r.x, r.x0, r.x0Mid].forEach((t) => t?.dispose());
    }
    const steps = cases.reduce((s, c) => s + c.to - c.from, 0);
    expect(count.rows).toBe(cases.reduce((s, c) => s + c.rows * (c.to - c.from), 0));
    expect(count.calls).toBeLessThan(steps); // rows of several searches shared forwards
    await new Promise((done) => setImmediate(done)); // the pool's loop ends after its last member left
    expect(lanes.active).toBe(0); // each search counted back once it left, the pool's lane gone
  });

  it('with guidance: each row guided as alone, charged twice its rows per step (fashion-flow)', async () => {
    const sigmas = uniform(6);
    const cases: Case[] = [3, 7].map((cond, k) => ({
      d: flow,
      x: gauss(784 * (1 + k)),
      rows: 1 + k,
      from: k,
      to: 6,
      midAt: -1,
      cond,
      guidance: 2,
    }));
    const want = [];
    for (const c of cases) want.push(await alone(c, sigmas));
    const { pools: p } = pools();
    const meters = cases.map(() => new Budget(1e6));
    const res = await Promise.all(cases.map((c, k) => p.euler(segment(c, sigmas, meters[k]))));
    for (const [k, r] of res.entries()) {
      expectClose(await values(r.x), want[k].x, `case ${k} x`);
      expect(meters[k].used).toBe(2 * cases[k].rows * (cases[k].to - cases[k].from));
      [r.x, r.x0].forEach((t) => t?.dispose());
    }
  });

  it('the last step on the mid step: x0 is the step before it, as advance returns it', async () => {
    const sigmas = uniform(8);
    const c: Case = { d: gmm, x: gauss(4), rows: 2, from: 1, to: 6, midAt: 5, cond: 0, guidance: 1 };
    const want = await alone(c, sigmas);
    const r = await pools().pools.euler(segment(c, sigmas, new Budget(100)));
    expectClose(await values(r.x0), want.x0, 'x0');
    expectClose(await values(r.x0Mid), want.x0Mid, 'x0Mid');
    [r.x, r.x0, r.x0Mid].forEach((t) => t?.dispose());
  });

  it('a cancelled search leaves at its next step with its own error, charged its steps; others finish', async () => {
    const sigmas = uniform(10);
    const a: Case = { d: gmm, x: gauss(2), rows: 1, from: 0, to: 10, midAt: -1, cond: 0, guidance: 1 };
    const b: Case = { d: gmm, x: gauss(6), rows: 3, from: 0, to: 10, midAt: -1, cond: 0, guidance: 1 };
    const want = await alone(b, sigmas);
    const { lanes, pools: p } = pools();
    let checks = 0;
    const stop = new Error('stopped');
    const ma = new Budget(100),
      mb = new Budget(100);
    const ra = p.euler(
      segment(a, sigmas, ma, () => {
        if (++checks > 3) throw stop;
      }),
    );
    const rb = p.euler(segment(b, sigmas, mb));
    await expect(ra).rejects.toBe(stop);
    expect(ma.used).toBe(3);
    const r = await rb;
    expectClose(await values(r.x), want.x, 'x');
    expect(mb.used).toBe(30);
    [r.x, r.x0].forEach((t) => t?.dispose());
    await new Promise((done) => setImmediate(done)); // the pool's loop ends after its last member left
    expect(lanes.active).toBe(0);
  });
});
