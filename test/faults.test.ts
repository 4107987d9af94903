/**
 * Faults mid-search: a verifier that throws or never answers, an HTTP verifier on
 * loopback that stalls after a few answers, a TorchScript model that raises on its k-th call
 * (test/fixtures/fault-k.pt, made by make_fault_fixtures.py). Each time: a typed error with its
 * code (or ABORTED), the other requests running on the same engine finish as they would alone,
 * the engine takes the next request, nothing hangs and no file descriptor is left open.
 * (A full disk is test/outputs-atomic.test.ts; a DiffusionSearchError from a verifier is
 * test/engine.test.ts.)
 */
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import type { Engine } from '../src/engine/engine';
import { generate, type GenerateOptions } from '../src/generate';
import { FunctionVerifier } from '../src/verifiers/verifier';
import { HttpVerifier } from '../src/verifiers/http';
import { DiffusionSearchError } from '../src/errors';
import { engineMaker } from './engine-helpers';
import { expectCode, fixture } from './helpers';

const make = engineMaker();

const fds = () => fs.readdirSync('/proc/self/fd').length;
/** gmm2d requests whose results the concurrent fault must not change. */
const gmm = (seed: number): GenerateOptions => ({
  model: 'gmm2d',
  algorithm: (['evosearch', 'best-of-n', 'beam'] as const)[seed % 3],
  budget: 300,
  steps: 10,
  seed,
  eval: false,
});
const same = (a: { samples: Float32Array; rewards: number[] }, b: { samples: Float32Array; rewards: number[] }) => {
  expect(a.samples.length).toBe(b.samples.length);
  for (let i = 0; i < a.samples.length; i++) expect(Math.abs(a.samples[i] - b.samples[i])).toBeLessThan(1e-5);
  expect(a.rewards).toEqual(b.rewards.map((r) => expect.closeTo(r, 4)));
};

/** A verifier of 16-feature samples (fault-k.pt, tiny.pt): minus the squared norm. */
async function norm2(x: { toArray(): Promise<ArrayLike<number>>; shape: number[] }): Promise<number[]> {
  const a = await x.toArray();
  const n = x.shape[0],
    d = a.length / n;
  return Array.from({ length: n }, (_, i) => {
    let s = 0;
    for (let j = 0; j < d; j++) s -= a[i * d + j] ** 2;
    return s;
  });
}

/** Runs `faulty` beside three gmm2d requests on `e`; checks them against the same requests alone. */
async function besideOthers(e: Engine, faulty: () => Promise<unknown>) {
  const alone = await Promise.all([1, 2, 3].map((s) => generate(gmm(s))));
  const [bad, ...others] = await Promise.allSettled([faulty(), ...[1, 2, 3].map((s) => e.generate(gmm(s)))]);
  others.forEach((o, i) => {
    expect(o.status, String((o as PromiseRejectedResult).reason)).toBe('fulfilled');
    same((o as PromiseFulfilledResult<{ samples: Float32Array; rewards: number[] }>).value, alone[i]);
  });
  expect(e.metrics()).toMatchObject({
    activeRequests: 0,
    activeSearches: 0,
    queuedCalls: 0,
    queuedRows: 0,
    reservedBytes: 0,
  });
  // The engine takes the next request.
  expect((await e.generate(gmm(4))).complete).toBe(true);
  return bad;
}

describe('a verifier that fails mid-search', () => {
  it(
    'a JS verifier throwing a plain Error on its 3rd call: a VERIFIER error naming it, with the cause; the others ' +
      'unaffected',
    async () => {
      const e = make();
      let calls = 0;
      const boom = new Error('grader crashed');
      const v = new FunctionVerifier('flaky', async (x) => {
        if (++calls === 3) throw boom;
        return norm2(x);
      });
      const bad = await besideOthers(e, () =>
        e.generate({
          model: 'gmm2d',
          algorithm: 'evosearch',
          budget: 300,
          steps: 10,
          n: 2,
          verifier: [v],
          eval: false,
        }),
      );
      expect(bad.status).toBe('rejected');
      const err = (bad as PromiseRejectedResult).reason;
      expect(err).toBeInstanceOf(DiffusionSearchError);
      expect(err.code).toBe('VERIFIER');
      expect(err.message).toMatch(/verifier 'flaky' failed: grader crashed/);
      expect(err.cause).toBe(boom);
      expect(calls).toBeGreaterThanOrEqual(3);
      expect(e.metrics().requests['error:VERIFIER']).toBe(1);
    },
  );

  it(
    'a JS verifier that never answers (and ignores the signal): cancelling ends the request at once with ABORTED; ' +
      'others unaffected; close() does not hang',
    async () => {
      const e = make();
      let entered!: () => void;
      const inVerifier = new Promise<void>((r) => (entered = r));
      let calls = 0;
      const v = new FunctionVerifier('stuck', async (x) => {
        if (++calls < 3) return norm2(x);
        entered();
        return new Promise<number[]>(() => undefined); // never settles
      });
      const ctl = new AbortController();
      let abortedAfterMs = -1;
      const bad = await besideOthers(e, async () => {
        const p = e.generate(
          { model: 'gmm2d', algorithm: 'evosearch', budget: 300, steps: 10, verifier: [v], eval: false },
          { signal: ctl.signal },
        );
        await inVerifier;
        const t0 = performance.now();
        ctl.abort();
        try {
          return await p;
        } finally {
          abortedAfterMs = performance.now() - t0;
        }
      });
      expect(bad.status).toBe('rejected');
      expect((bad as PromiseRejectedResult).reason.code).toBe('ABORTED');
      // No step of the search runs after the abort: the request ends as soon as the event loop turns.
      expect(abortedAfterMs).toBeLessThan(1000);
      expect(e.metrics().requests.aborted).toBe(1);

      // The same verifier as a timeout: the caller's AbortSignal.timeout, and the engine closing.
      const e2 = make();
      calls = 0;
      await expectCode(
        () =>
          e2.generate(
            { model: 'gmm2d', algorithm: 'evosearch', budget: 300, steps: 10, verifier: [v], eval: false },
            { signal: AbortSignal.timeout(500) },
          ),
        'ABORTED',
      );
      expect(calls).toBe(3);
      calls = 0;
      const pending = e2.generate({
        model: 'gmm2d',
        algorithm: 'evosearch',
        budget: 300,
        steps: 10,
        verifier: [v],
        eval: false,
      });
      pending.catch(() => undefined);
      while (calls < 3) await new Promise((r) => setTimeout(r, 10));
      await e2.close();
      await expectCode(() => pending, 'ABORTED');
    },
  );
});

describe('an HTTP verifier on loopback that stalls mid-search', () => {
  it(
    'answers twice, then never: a VERIFIER error naming the URL after its timeout; the others unaffected; no ' +
      'socket left open',
    async () => {
      let answered = 0;
      const server = http.createServer((req, res) => {
        let body = '';
        req.on('data', (d) => (body += d));
        req.on('end', () => {
          if (answered >= 2) return; // stall: read the request, never answer
          answered++;
          const r = JSON.parse(body) as { ids: number[]; data: string; shape: number[] };
          const buf = Buffer.from(r.data, 'base64');
          const a = new Float32Array(buf.buffer, buf.byteOffset, buf.byteLength / 4);
          const d = a.length / r.ids.length;
          const scores = r.ids.map((_, i) => -(a[i * d] ** 2) - a[i * d + 1] ** 2);
          res.setHeader('content-type', 'application/json');
          res.end(JSON.stringify({ ids: r.ids, scores }));
        });
      });
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/score`;
      const e = make();
      await e.generate(gmm(9)); // models loaded before the descriptors are counted
      const before = fds();
      try {
        const v = new HttpVerifier(url, { timeoutMs: 300, retries: 1, backoffMs: 10 });
        const bad = await besideOthers(e, () =>
          e.generate({ model: 'gmm2d', algorithm: 'evosearch', budget: 300, steps: 10, verifier: [v], eval: false }),
        );
        expect(bad.status).toBe('rejected');
        const err = (bad as PromiseRejectedResult).reason;
        expect(err.code).toBe('VERIFIER');
        expect(err.message).toContain(url);
        expect(err.message).toMatch(/no answer within 300 ms/);
        expect(answered).toBe(2);
        expect(e.metrics().requests['error:VERIFIER']).toBe(1);
      } finally {
        server.closeAllConnections();
        await new Promise((r) => server.close(r));
      }
      // The client's sockets are closed (the server's too, now): no descriptor is left behind.
      for (let i = 0; i < 50 && fds() > before; i++) await new Promise((r) => setTimeout(r, 20));
      expect(fds()).toBeLessThanOrEqual(before);
    },
  );
});

describe('a model that fails on its k-th call', () => {
  const faultK = fixture('fault-k.pt');
  const faulty = (seed = 0): GenerateOptions => ({
    model: faultK,
    verifier: [new FunctionVerifier('norm', norm2)],
    algorithm: 'best-of-n',
    budget: 40,
    steps: 10,
    seed,
    eval: false,
  });

  it(
    'a NATIVE error with the TorchScript message; the others on the engine unaffected; the model answers the next ' +
      'request',
    async () => {
      const e = make();
      const bad = await besideOthers(e, () => e.generate(faulty()));
      expect(bad.status).toBe('rejected');
      const err = (bad as PromiseRejectedResult).reason;
      expect(err).toBeInstanceOf(DiffusionSearchError);
      expect(err.code).toBe('NATIVE');
      expect(err.message).toMatch(/injected fault: call 5/);
      // The module stays loaded (its counter is past k): the same request now succeeds.
      const ok = await e.generate(faulty());
      expect(ok.complete).toBe(true);
      expect(ok.shape).toEqual([1, 16]);
      expect(e.metrics().requests).toMatchObject({ 'error:NATIVE': 1 });
      expect(e.metrics().loads).toBe(3); // gmm2d, its reward, fault-k.pt: loaded once each
    },
  );

  it(
    '4 requests on it at once: the merged forward that fails is run again piece by piece, so all 4 get what they ' +
      'get alone',
    async () => {
      // Reference: an engine whose module is past its failing call.
      const ref = make();
      await expectCode(() => ref.generate(faulty(0)), 'NATIVE');
      const alone = [];
      for (let s = 0; s < 4; s++) alone.push(await ref.generate(faulty(s)));
      const e = make();
      const together = await Promise.allSettled([0, 1, 2, 3].map((s) => e.generate(faulty(s))));
      together.forEach((t, i) => {
        expect(t.status, String((t as PromiseRejectedResult).reason)).toBe('fulfilled');
        same((t as PromiseFulfilledResult<{ samples: Float32Array; rewards: number[] }>).value, alone[i]);
      });
      const m = e.metrics().models.find((x) => x.model.endsWith('fault-k.pt'))!;
      expect(m.merged).toBeGreaterThan(0); // the calls did merge (so the 5th was a merged one)
      expect(e.metrics().requests).toMatchObject({ ok: 4 });
    },
  );

  it(
    'through generate(): the same error, and the process goes on (a fresh engine loads the model ' + 'afresh)',
    async () => {
      const err = await expectCode(() => generate(faulty(1)), 'NATIVE');
      expect(err.message).toMatch(/injected fault: call 5/);
      const again = await expectCode(() => generate(faulty(1)), 'NATIVE');
      expect(again.message).toMatch(/injected fault: call 5/);
      expect((await generate(gmm(5))).complete).toBe(true);
    },
  );
});
