import { describe, expect, it } from 'vitest';
import { Denoiser } from '../src/models/denoiser';
import { loadVerifier } from '../src/models/registry';
import { algorithms } from '../src/search';
import { SearchRun } from '../src/search/run';
import { uniform } from '../src/schedules';
import { tensor } from '../src/tensor';
import { generate } from '../src/generate';
import { randn } from './helpers';

const seed = () => BigInt((Math.random() * 2 ** 31) | 0);

describe('top-k: a search keeps the K best distinct samples it scored', () => {
  it(
    'best-of-n: top holds the K highest of every reward it gave, best first, each re-scoring to its ' + 'reward',
    async () => {
      const denoiser = await Denoiser.load('gmm2d');
      const verifier = await loadVerifier(['gmm2d-reward']);
      const K = 7;
      const r = await algorithms['best-of-n'].run(
        { denoiser, verifier, cls: 0, budget: 400, sigmas: uniform(10), seed: seed(), keep: K },
        {},
      );
      expect(r.top).toHaveLength(K);
      expect(r.top[0].sample).toBe(r.sample);
      expect(r.top[0].reward).toBe(r.reward);
      const expected = [...r.rewards].sort((a, b) => b - a).slice(0, K);
      expect(r.top.map((t) => t.reward)).toEqual(expected.map((x) => Math.fround(x)));
      // Each kept sample is the sample that earned its reward: the verifier gives it again.
      for (const t of r.top) {
        const again = await verifier.score(t.sample, [0]);
        expect(again[0]).toBe(t.reward);
      }
      const rows = await Promise.all(r.top.map(async (t) => Array.from((await t.sample.toArray()) as Float32Array)));
      expect(new Set(rows.map((x) => x.join(','))).size).toBe(K);
    },
  );

  it('keep = 1 returns what the search returned before (the best sample only)', async () => {
    const denoiser = await Denoiser.load('gmm2d');
    const verifier = await loadVerifier(['gmm2d-reward']);
    const s = seed();
    const one = await algorithms.evosearch.run(
      { denoiser, verifier, cls: 0, budget: 300, sigmas: uniform(10), seed: s },
      {},
    );
    const five = await algorithms.evosearch.run(
      { denoiser, verifier, cls: 0, budget: 300, sigmas: uniform(10), seed: s, keep: 5 },
      {},
    );
    expect(one.top).toHaveLength(1);
    expect(five.reward).toBe(one.reward);
    expect(Array.from((await five.sample.toArray()) as Float32Array)).toEqual(
      Array.from((await one.sample.toArray()) as Float32Array),
    );
    expect(five.top.map((t) => t.reward)).toEqual([...five.top.map((t) => t.reward)].sort((a, b) => b - a));
  });

  it('a sample scored twice (an elite, a resampled copy) fills one place, not two', async () => {
    const denoiser = await Denoiser.load('gmm2d');
    const verifier = await loadVerifier(['gmm2d-reward']);
    const run = new SearchRun('test', { denoiser, verifier, cls: 0, budget: 10, sigmas: uniform(4), keep: 3 });
    const a = randn(2),
      b = randn(2);
    // Rows: a, a, b, a: the archive must hold a and b once each.
    const x = tensor(Float32Array.from([...a, ...a, ...b, ...a]), [4, 2]);
    const rewards = await run.score(x);
    const again = await run.score(tensor(Float32Array.from([...b, ...a]), [2, 2]));
    const r = run.finish();
    expect(r.top).toHaveLength(2);
    const got = await Promise.all(r.top.map(async (t) => Array.from((await t.sample.toArray()) as Float32Array)));
    const want = rewards[0] >= rewards[2] ? [a, b] : [b, a];
    expect(got).toEqual(want.map((v) => Array.from(v)));
    expect(again[0]).toBe(rewards[2]);
  });

  it('generate --keep K: n·K rows, per-row rewards best first within each search, counts in the report', async () => {
    const r = await generate({
      model: 'gmm2d',
      algorithm: 'best-of-n',
      budget: 200,
      n: 2,
      keep: 3,
      steps: 10,
      seed: Number(seed() % 1000n),
    });
    expect(r.shape).toEqual([6, 2]);
    expect(r.rewards).toHaveLength(6);
    expect(r.report).toMatchObject({ keep: 3, kept: [3, 3], n: 2 });
    for (const s of [0, 3]) {
      const g = r.rewards.slice(s, s + 3);
      expect(g).toEqual([...g].sort((p, q) => q - p));
      expect(g[0]).toBe(r.results[s / 3].reward);
    }
    // The rows are the samples that earned those rewards.
    const verifier = await loadVerifier(['gmm2d-reward']);
    const again = await verifier.score(tensor(r.samples, r.shape), new Array(6).fill(0));
    expect(Array.from(again)).toEqual(r.rewards);
  });
});
