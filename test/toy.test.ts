/**
 * The EvoSearch paper's toy experiment on gmm2d: every algorithm at equal NFE, compared with the
 * closed-form target p*(x) ∝ p0(x)·exp(r(x)/α) stored in the model card (mode weights, mean reward).
 * What we measure differs in part from the paper (see the issue note and README): every search
 * maximises the reward of its best sample, and the strongest optimisers (beam, paths, EvoSearch)
 * land between the two rare modes, nearer the reward's centre, rather than on p*'s modes.
 */
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { Denoiser } from '../src/models/denoiser';
import { TorchScriptVerifier } from '../src/verifiers/torchscript';
import { algorithms, type AlgorithmName } from '../src/search';
import { uniform } from '../src/schedules';

const models = path.join(__dirname, '..', 'models');
const BUDGET = 3000,
  SEARCHES = 12;

interface Target {
  weights: number[];
  means: number[][];
  stds: number[];
}
interface Row {
  reward: number;
  modes: number[];
  off: number;
}

let results: Record<string, Row>;
let target: Target;

beforeAll(async () => {
  const d = await Denoiser.load(path.join(models, 'gmm2d.pt'));
  const v = await TorchScriptVerifier.load(path.join(models, 'gmm2d-reward.pt'));
  target = d.card.target as Target;
  results = {};
  for (const name of Object.keys(algorithms) as AlgorithmName[]) {
    const modes = new Array(target.means.length).fill(0);
    let off = 0,
      reward = 0;
    for (let s = 0; s < SEARCHES; s++) {
      const stochastic = name === 'particles' || name === 'beam';
      const r = await algorithms[name].run({
        denoiser: d,
        verifier: v,
        cls: 0,
        budget: BUDGET,
        sigmas: uniform(20),
        seed: 1000 + s,
        sampler: stochastic ? 'sde' : 'euler',
      });
      const [x, y] = Array.from((await r.sample.toArray()) as Float32Array);
      r.sample.dispose();
      reward += r.reward / SEARCHES;
      // A sample is on a mode of p* when within 3 standard deviations of its mean.
      const k = target.means.findIndex((m, i) => Math.hypot(x - m[0], y - m[1]) < 3 * target.stds[i]);
      if (k < 0) off++;
      else modes[k]++;
    }
    results[name] = { reward, modes: modes.map((c) => c / SEARCHES), off: off / SEARCHES };
  }
  const fmt = (xs: number[]) => xs.map((w) => w.toFixed(2)).join(' ');
  console.log(`gmm2d toy, ${BUDGET} NFE, ${SEARCHES} searches each; p* mode weights ${fmt(target.weights)}`);
  for (const [name, r] of Object.entries(results))
    console.log(
      `${name.padEnd(11)} mean best reward ${r.reward.toFixed(3).padStart(7)}  on p* modes ${fmt(r.modes)}  ` +
        `off-mode ${r.off.toFixed(2)}`,
    );
}, 300_000);

describe('gmm2d toy experiment (EvoSearch paper)', () => {
  it('p* puts almost all its mass on the modes the prior rarely samples', () => {
    const prior = [0.47, 0.47, 0.04, 0.02];
    expect(target.weights[2] + target.weights[3]).toBeGreaterThan(0.99);
    expect(prior[2] + prior[3]).toBeLessThan(0.1);
  });

  it('plain sampling stays on the prior: rarely on the target modes, low reward', () => {
    const b = results.baseline;
    expect(b.modes[2] + b.modes[3]).toBeLessThanOrEqual(0.25);
    expect(b.reward).toBeLessThan(-5);
  });

  it('every search raises the mean reward far above plain sampling at equal NFE', () => {
    for (const [name, r] of Object.entries(results))
      if (name !== 'baseline') expect(r.reward, name).toBeGreaterThan(results.baseline.reward + 5);
  });

  it('EvoSearch reaches a higher reward than best-of-N (as the paper reports)', () => {
    expect(results.evosearch.reward).toBeGreaterThan(results['best-of-n'].reward);
  });

  it('best-of-N samples land on p*’s modes, in roughly p*’s proportions', () => {
    const b = results['best-of-n'];
    expect(b.modes[2] + b.modes[3]).toBeGreaterThanOrEqual(0.8);
    expect(b.modes[2]).toBeGreaterThanOrEqual(b.modes[3]);
  });
});
