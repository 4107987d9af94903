import { describe, expect, it } from 'vitest';
import { transferRow } from '../src/bench/hacking';
import { smallVsLarge } from '../src/bench/small-vs-large';
import { generate } from '../src/generate';

/** Two-pass float64 mean and sample standard deviation. */
function meanSd(v: number[]) {
  const m = v.reduce((a, b) => a + b, 0) / v.length;
  return { m, s: Math.sqrt(v.reduce((a, b) => a + (b - m) ** 2, 0) / (v.length - 1)) };
}

describe('verifier hacking table', () => {
  it('gains and transfers are per-seed means with intervals; an ensemble’s own gain is its members’ mean', () => {
    const judges = ['classifier', 'realism', 'detail', 'oracle'];
    const seeds = 5;
    const gains = Array.from({ length: seeds }, () =>
      Object.fromEntries(judges.map((j) => [j, 0.5 + Math.random() * 3])),
    );
    const accuracy = gains.map(() => Math.random());
    const row = transferRow({ sv: 'classifier+realism', algorithm: 'evosearch', budget: 200 }, judges, {
      gains,
      accuracy,
    });
    const t4 = 2.7764451051977987; // t_{0.975, 4}
    for (const j of judges) {
      const g = meanSd(gains.map((x) => x[j]));
      expect(row.gain[j].mean).toBeCloseTo(g.m, 12);
      expect(row.gain[j].half!).toBeCloseTo((t4 * g.s) / Math.sqrt(seeds), 9);
      const ratios = gains.map((x) => x[j] / ((x.classifier + x.realism) / 2));
      const r = meanSd(ratios);
      expect(row.transfer[j].mean).toBeCloseTo(r.m, 12);
      expect(row.transfer[j].half!).toBeCloseTo((t4 * r.s) / Math.sqrt(seeds), 9);
    }
    const single = transferRow({ sv: 'detail', algorithm: 'best-of-n', budget: 200 }, judges, { gains, accuracy });
    expect(single.transfer.detail).toEqual({ mean: 1, half: 0 });
  });
});

describe('small vs large compute accounting', () => {
  it('counts every verifier row: best-of-n at 40 NFE on 20 steps scores 2 candidates per sample', async () => {
    const macs = { 'fashion-flow': 1000 + Math.floor(Math.random() * 1e6) };
    const verifierMacs = 1 + Math.floor(Math.random() * 1e5);
    const rows = await smallVsLarge({
      classes: ['Shirt'],
      cells: [{ model: 'fashion-flow', algorithm: 'best-of-n', budget: 40 }],
      n: 2,
      seeds: 1,
      macsPerNfe: macs,
      verifierMacs,
      verifier: 'classifier',
    });
    expect(rows).toHaveLength(1);
    expect(rows[0].nfe.mean).toBe(40);
    expect(rows[0].gmacs.mean * 1e9).toBeCloseTo(40 * macs['fashion-flow'] + 2 * verifierMacs, 3);
    expect(rows[0].gmacs.half).toBeNull();
    expect(rows[0].eval_accuracy.mean).toBeGreaterThanOrEqual(0);
  }, 120_000);
});

describe('fashion-flow-small, the shipped small model', () => {
  it('loads by name, samples a class and is judged by the eval model by default', async () => {
    const r = await generate({ model: 'fashion-flow-small', class: 'Coat', algorithm: 'best-of-n', budget: 40, n: 2 });
    expect(r.report.model_file.endsWith('models/fashion-flow-small.pt')).toBe(true);
    expect(r.report.nfe_used).toBe(80);
    expect(r.shape).toEqual([2, 1, 28, 28]);
    expect(r.report.eval).not.toBeNull();
    expect(r.report.eval!.accuracy).toBeGreaterThanOrEqual(0);
    expect(r.samples.every((v) => Number.isFinite(v))).toBe(true);
  }, 120_000);
});
