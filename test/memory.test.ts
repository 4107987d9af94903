import { describe, expect, it } from 'vitest';
import { tensor } from '../src/tensor';
import { randn } from './helpers';

const MB = 1024 * 1024;

describe('memory', () => {
  it('20,000 create/dispose cycles keep the resident memory bounded', async () => {
    const data = randn(64 * 1024); // 256 KiB per tensor: 5 GB in all if nothing were freed
    const cycle = async (n: number) => {
      for (let i = 0; i < n; i++) {
        const t = tensor(data, [64, 1024]);
        if (i % 1000 === 0) await t.toArray();
        t.dispose();
      }
    };
    await cycle(2000); // warm up allocator and JIT
    global.gc?.();
    const before = process.memoryUsage().rss;
    await cycle(20_000);
    global.gc?.();
    const growth = (process.memoryUsage().rss - before) / MB;
    expect(growth).toBeLessThan(64);
  });

  it('disposing out of order, between small JS allocations, keeps the resident memory bounded', async () => {
    // The pattern of a search: a few live tensors, freed out of order, with small allocations
    // in between. On glibc's heap each freed aligned buffer would be too small for the next one
    // (unbounded growth); the addon's allocator keeps large buffers off the heap.
    const data = randn(64 * 1024);
    const cycle = async (n: number) => {
      const live = [];
      const keep: unknown[] = [];
      for (let i = 0; i < n; i++) {
        live.push(tensor(data, [64, 1024]));
        keep.push(Array.from({ length: 20 }, (_, k) => ({ k, s: 'x'.repeat(k) })));
        if (keep.length > 50) keep.shift();
        if (live.length > 8) live.splice((i * 7) % live.length, 1)[0].dispose();
        if (i % 1000 === 0) await live[0].toArray();
      }
      for (const t of live) t.dispose();
    };
    await cycle(2000);
    global.gc?.();
    const before = process.memoryUsage().rss;
    await cycle(20_000);
    global.gc?.();
    expect((process.memoryUsage().rss - before) / MB).toBeLessThan(64);
  });

  it('handles that are never disposed are freed by the garbage collector', async () => {
    if (!global.gc) return;
    const data = randn(64 * 1024);
    for (let i = 0; i < 1000; i++) tensor(data, [64, 1024]);
    global.gc();
    await new Promise((r) => setTimeout(r, 10));
    global.gc();
    const before = process.memoryUsage().rss;
    for (let round = 0; round < 10; round++) {
      for (let i = 0; i < 1000; i++) tensor(data, [64, 1024]);
      global.gc();
      await new Promise((r) => setTimeout(r, 0));
    }
    global.gc();
    expect((process.memoryUsage().rss - before) / MB).toBeLessThan(128);
  });
});
