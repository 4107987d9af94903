/**
 * Soak, short: bench/soak.js's mix — gmm2d with every algorithm and small fashion-flow
 * searches, on one engine and through generate(), one at a time and 16 at once, a tenth of the
 * concurrent ones cancelled — sized by counts, not by time. After a warm-up, the resident memory
 * and the tensors' external memory stay within 5 % above the warm-up's baseline, and the threads
 * and file descriptors do not grow. `npm run soak -- --minutes 10` is the long one. Needs lib/
 * (npm test builds it first). And: a cancelled search frees its tensors (without batching at once,
 * no garbage collection needed) and runs at most the forward it was in.
 */
import { describe, expect, it } from 'vitest';
import { createEngine } from '../src/engine/engine';
import type { GenerateOptions } from '../src/generate';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const { soak } = require('../bench/soak.js') as { soak: (o: Record<string, unknown>) => Promise<SoakResult> };

interface Sample {
  label: string;
  rss: number;
  external: number;
  threads: number;
  fds: number;
}
interface SoakResult {
  searches: number;
  counts: Record<string, number>;
  base: Sample;
  windows: Sample[];
  closed: Sample;
  maxDeviation: { rss: number; external: number };
  minDeviation: { rss: number; external: number };
  failures: string[];
}

describe('soak (short)', () => {
  it('≈ 850 searches, sequential and 16 at once: RSS and external memory within 5 % of the baseline, no new ' +
    'threads or descriptors', async () => {
    if (!global.gc) throw new Error('run under vitest.config.ts (--expose-gc)');
    const lines: string[] = [];
    // Warm-up: 40 one at a time, 480 at once (glibc's arenas of the worker threads reach their
    // working size; with fewer, a late window on a loaded machine can still grow past the bound);
    // then 100 one at a time (every 5th through generate()) and 3 × 128 at once.
    const r = await soak({
      warmup: 40,
      warmupConcurrent: 480,
      sequential: 100,
      windows: 3,
      perWindow: 128,
      concurrency: 16,
      seed: 7,
      log: (l: string) => lines.push(l),
    });
    console.log(
      `soak (short):\n${lines.join('\n')}\n${r.searches} searches ${JSON.stringify(r.counts)}; max deviation rss ` +
        `${(100 * r.maxDeviation.rss).toFixed(2)} %, external ${(100 * r.maxDeviation.external).toFixed(2)} %`,
    );
    expect(r.failures).toEqual([]);
    expect(r.counts.failed).toBe(0);
    expect(r.counts.aborted).toBeGreaterThan(0); // cancellations happened
    expect(r.counts.generateCalls).toBeGreaterThanOrEqual(20);
    expect(r.windows.length).toBe(4);
    for (const w of r.windows) {
      expect(w.rss / r.base.rss).toBeLessThan(1.05);
      expect(w.external / r.base.external).toBeLessThan(1.05);
      expect(w.threads).toBeLessThanOrEqual(r.base.threads);
      expect(w.fds).toBeLessThanOrEqual(r.base.fds);
    }
    // The engine's threads end with it; no descriptor is left open.
    expect(r.closed.threads).toBeLessThan(r.base.threads);
    expect(r.closed.fds).toBeLessThanOrEqual(r.base.fds);
  }, 300_000);
});

describe('cancellation frees its memory within a step', () => {
  // Batching off: every tensor is disposed by the time the request fails. Batching on (the
  // default): a few KB of tensors of an aborted request are sometimes left to the GC; checked after
  // one collection until that is fixed.
  it.each([
    ['evosearch', true],
    ['particles', true],
    ['beam', true],
    ['best-of-n', true],
    ['evosearch', false],
    ['particles', false],
  ] as const)(
    '%s on fashion-flow, 4 searches, batching %s: ABORTED, at most one more forward each, tensors freed',
    async (algorithm, batching) => {
      const e = createEngine({ searchesPerRequest: 4, batching });
      try {
        // The tensors the addon holds (it reports each one's bytes to V8 as external memory).
        const tracked = () => {
          const m = process.memoryUsage();
          return m.external - m.arrayBuffers;
        };
        const forwards = () =>
          e
            .metrics()
            .models.filter((m) => m.kind === 'denoiser')
            .reduce((s, m) => s + m.forwards, 0);
        const req: GenerateOptions = {
          model: 'fashion-flow',
          class: 'Shirt',
          algorithm,
          budget: 1200,
          n: 4,
          steps: 10,
          eval: false,
        };
        // The same request, small and to the end: whatever it caches for good is cached.
        await e.generate({ ...req, n: 1, budget: 60 });
        const before = tracked();
        const ctl = new AbortController();
        let peak = 0;
        const p = e.generate(req, { signal: ctl.signal });
        p.catch(() => undefined);
        const f0 = forwards();
        while (forwards() - f0 < 4) {
          peak = Math.max(peak, tracked()); // a step or two in
          await new Promise((r) => setTimeout(r, 2));
        }
        const atAbort = forwards();
        ctl.abort();
        const err = await p.then(
          () => null,
          (x: { code?: string }) => x,
        );
        expect(err?.code).toBe('ABORTED');
        // Each of the 4 searches finishes at most the forward it was in (they merge: usually one).
        expect(forwards() - atAbort).toBeLessThanOrEqual(4);
        console.log(
          `${algorithm}: tensors before ${before} B, peak ${peak} B, after the abort ${tracked()} B; forwards ` +
            `after it ${forwards() - atAbort}`,
        );
        // Every tensor of the cancelled searches is disposed of by the time the request fails, not left to the GC.
        if (!batching) expect(tracked()).toBeLessThanOrEqual(before + 1024);
        // A few collections, each followed by a turn of the loop: N-API finalizers of collected tensors
        // may run after the collection, so one collection can leave some still tracked.
        for (let i = 0; i < 3; i++) {
          global.gc?.();
          await new Promise((r) => setTimeout(r, 10));
        }
        expect(tracked()).toBeLessThanOrEqual(before + 1024);
        expect(e.metrics()).toMatchObject({
          activeSearches: 0,
          activeRequests: 0,
          queuedRows: 0,
          queuedCalls: 0,
          reservedBytes: 0,
        });
      } finally {
        await e.close();
      }
    },
  );
});
