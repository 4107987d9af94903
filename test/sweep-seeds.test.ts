import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { aggregate, type CellMeasures, MEASURES, scalingSvg, sweepTable } from '../src/cli/sweep-stats';
import { studentTQuantile, tInterval } from '../src/eval/interval';

/** Γ(ν/2) for integer ν by the half-integer recurrence (Γ(1/2) = √π, Γ(1) = 1), independent of any lnΓ. */
function gammaHalf(nu: number): number {
  let g = nu % 2 === 0 ? 1 : Math.sqrt(Math.PI);
  for (let x = nu % 2 === 0 ? 1 : 0.5; x < nu / 2 - 1e-9; x += 1) g *= x;
  return g;
}

/** P(0 ≤ T ≤ t) by composite Simpson over the t density. */
function tMass(t: number, nu: number): number {
  const c = gammaHalf(nu + 1) / (Math.sqrt(nu * Math.PI) * gammaHalf(nu));
  const f = (x: number) => c * (1 + (x * x) / nu) ** (-(nu + 1) / 2);
  const m = 4000,
    h = t / m;
  let s = f(0) + f(t);
  for (let i = 1; i < m; i++) s += (i % 2 ? 4 : 2) * f(i * h);
  return (s * h) / 3;
}

/** The reference 0.975 quantile: bisection on 0.5 + P(0 ≤ T ≤ t) = 0.975. */
function refQuantile(nu: number): number {
  let lo = 0,
    hi = 20;
  while (hi < 1e3 && 0.5 + tMass(hi, nu) < 0.975) hi *= 2;
  for (let i = 0; i < 60; i++) {
    const mid = (lo + hi) / 2;
    if (0.5 + tMass(mid, nu) < 0.975) lo = mid;
    else hi = mid;
  }
  return (lo + hi) / 2;
}

/** Reference mean and half-width in float64, two-pass. */
function refInterval(v: number[]): { mean: number; half: number } {
  let sum = 0;
  for (const x of v) sum += x;
  const mean = sum / v.length;
  let ss = 0;
  for (const x of v) ss += (x - mean) * (x - mean);
  return { mean, half: (refQuantile(v.length - 1) * Math.sqrt(ss / (v.length - 1))) / Math.sqrt(v.length) };
}

function randomRun(): CellMeasures {
  const r = () => Math.random() * 10 - 5;
  return {
    nfe_used: 100 + Math.floor(Math.random() * 50),
    mean_reward: r(),
    eval_accuracy: Math.random(),
    eval_log_prob: r(),
    fid: r() + 10,
    prompt_class_accuracy: null,
    prompt_attribute_accuracy: null,
    vendi: 1 + Math.random() * 3,
    mean_cosine_distance: Math.random(),
    wall_seconds: Math.random(),
  };
}

describe('t-interval over seeds', () => {
  it('the 0.975 quantile of Student t matches Simpson integration of the density (df 1–30, 40, 100)', () => {
    for (const nu of [...Array.from({ length: 30 }, (_, i) => i + 1), 40, 100])
      expect(Math.abs(studentTQuantile(0.975, nu) - refQuantile(nu)) / refQuantile(nu)).toBeLessThan(1e-7);
    expect(studentTQuantile(0.975, 1)).toBeCloseTo(12.7062047, 6);
  });

  it('mean and half-width equal an independent float64 computation on fresh per-seed values', () => {
    for (let S = 2; S <= 12; S++) {
      const v = Array.from({ length: S }, () => (Math.random() - 0.3) * 10 ** (Math.random() * 4 - 2));
      const got = tInterval(v);
      const want = refInterval(v);
      expect(got.n).toBe(S);
      expect(Math.abs(got.mean - want.mean)).toBeLessThanOrEqual(1e-12 * Math.max(1, Math.abs(want.mean)));
      expect(Math.abs(got.half! - want.half) / want.half).toBeLessThan(1e-7);
    }
  });

  it('one seed gives no interval; NaN and null values are left out', () => {
    expect(tInterval([3.5])).toEqual({ mean: 3.5, half: null, n: 1 });
    expect(tInterval([NaN, null, 2])).toEqual({ mean: 2, half: null, n: 1 });
    expect(tInterval([]).half).toBeNull();
  });

  it('a sweep row holds every measure’s mean and interval over its seeds', () => {
    const runs = Array.from({ length: 5 }, randomRun);
    const row = aggregate('evosearch', 200, runs);
    expect(row.seeds).toBe(5);
    expect(row.per_seed).toEqual(runs);
    for (const m of MEASURES) {
      const vals = runs.map((r) => r[m]);
      if (vals[0] === null) {
        expect(row[m]).toBeNull();
        expect(row.ci95[m]).toBeNull();
        continue;
      }
      const want = refInterval(vals as number[]);
      expect(Math.abs((row[m] as number) - want.mean)).toBeLessThan(1e-12 * Math.max(1, Math.abs(want.mean)));
      expect(Math.abs(row.ci95[m]! - want.half) / want.half).toBeLessThan(1e-7);
    }
  });

  it('the table shows mean ± half-width with a note, and one seed shows no ± and no note', () => {
    const many = aggregate('best-of-n', 100, Array.from({ length: 3 }, randomRun));
    const table = sweepTable([many]);
    expect(table).toContain(`${many.mean_reward.toFixed(4)} ± ${many.ci95.mean_reward!.toFixed(4)}`);
    expect(table).toMatch(/3 seeds per cell: .*Student-t/);
    const one = sweepTable([aggregate('best-of-n', 100, [randomRun()])]);
    expect(one).not.toContain('±');
    expect(one).not.toContain('seeds per cell');
  });

  it('the scaling plot draws one error bar per point with an interval, none with one seed', () => {
    const rows = [100, 200, 400].map((b) => aggregate('best-of-n', b, Array.from({ length: 4 }, randomRun)));
    const svg = scalingSvg(rows);
    // panels with a value: reward, eval accuracy, eval log-prob, Vendi
    expect(svg.match(/class="error-bar"/g)).toHaveLength(3 * 4);
    expect(svg).toContain('95 % t-interval over 4 seeds');
    const single = scalingSvg([aggregate('best-of-n', 100, [randomRun()])]);
    expect(single).not.toContain('error-bar');
  });
});

describe('sweep --seeds (CLI, gmm2d)', () => {
  const cli = path.join(__dirname, '..', 'lib', 'cli', 'index.js');
  const run = (...args: string[]) =>
    spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8', timeout: 120_000 });

  it('repeats each cell over seeds seed…seed+S−1 and reports the interval of the per-seed values', () => {
    const out = fs.mkdtempSync(path.join(os.tmpdir(), 'ds-sweep-seeds-'));
    const common = ['--model', 'gmm2d', '--algorithms', 'best-of-n', '--budgets', '50', '--n', '4', '--steps', '10'];
    const r = run('sweep', ...common, '--seeds', '3', '--seed', '7', '--out', out, '--json');
    expect(r.status, r.stderr).toBe(0);
    const rep = JSON.parse(fs.readFileSync(path.join(out, 'report.json'), 'utf8'));
    expect(rep.config.seeds).toBe(3);
    const row = rep.rows[0];
    expect(row.per_seed).toHaveLength(3);
    const rewards = row.per_seed.map((p: CellMeasures) => p.mean_reward);
    const want = refInterval(rewards);
    expect(Math.abs(row.mean_reward - want.mean)).toBeLessThan(1e-9);
    expect(Math.abs(row.ci95.mean_reward - want.half) / want.half).toBeLessThan(1e-7);
    // The second seed's run is the single-seed sweep at --seed 8.
    const one = run('sweep', ...common, '--seed', '8', '--out', path.join(out, 'one'), '--json');
    expect(one.status, one.stderr).toBe(0);
    const single = JSON.parse(fs.readFileSync(path.join(out, 'one', 'report.json'), 'utf8')).rows[0];
    expect(single.mean_reward).toBe(rewards[1]);
    expect(single.ci95.mean_reward).toBeNull();
  });

  it('refuses --seeds outside 1…10000 with an ARGUMENT error naming the flag, before any run', () => {
    for (const bad of ['0', '-2', '1.5', 'abc']) {
      const r = run('sweep', '--model', 'gmm2d', '--seeds', bad, '--out', path.join(os.tmpdir(), 'ds-never'), '--json');
      expect(r.status).toBe(2);
      expect(r.stderr).toContain(`[ARGUMENT]: --seeds must be an integer from 1 to 10000, got '${bad}'`);
    }
  });
});
