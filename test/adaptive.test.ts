/**
 * Adaptive schedules (TPDM): the Time Prediction Module shipped in models/fashion-tpm.pt, the
 * adaptive sampler, and a short run of its training script.
 * Needs models/fashion-flow.pt (the denoiser whose features the TPM reads); skipped without it.
 * DS_TEST_FLOW / DS_TEST_TPM point the tests at other files (development).
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { Denoiser, type NfeMeter } from '../src/models/denoiser';
import { tensor } from '../src/tensor';
import { floatTensor } from '../src/tensor-ops';
import type { NativeTensor } from '../src/native';
import { Budget } from '../src/search/budget';
import {
  TimePredictionModule,
  ab2Coefficients,
  adaptiveSettings,
  betaMode,
  sampleAdaptive,
  validateTpmCard,
  type AdaptiveSolver,
  type TimePredictor,
} from '../src/samplers/adaptive';
import { readNpy, writeNpy } from '../src/io/npy';
import { randn, expectCode } from './helpers';

// Spinning OpenMP workers make libtorch several times slower when the cores are shared with other
// processes; this must be set before the addon (and its libgomp) loads, which is lazy.
process.env.OMP_WAIT_POLICY ??= 'PASSIVE';

const root = path.join(__dirname, '..');
const flowFile = process.env.DS_TEST_FLOW ?? path.join(root, 'models/fashion-flow.pt');
const tpmFile = process.env.DS_TEST_TPM ?? path.join(root, 'models/fashion-tpm.pt');
const python = '/usr/bin/python3';
const haveFlow = fs.existsSync(flowFile);
const haveTpm = haveFlow && fs.existsSync(tpmFile);
if (!haveFlow) console.warn(`adaptive.test: skipped — ${flowFile} is missing (train it: scripts/train/train_flow.py)`);
else if (!haveTpm)
  console.warn(`adaptive.test: TPM tests skipped — ${tpmFile} is missing (train it: scripts/train/train_tpm.py)`);

/** Counts rows through the denoiser's features method, independently of the sampler's meter. */
function countRows(d: Denoiser): { rows: number } {
  const counter = { rows: 0 };
  const m = d.module as unknown as { call: (method: string, inputs: unknown[], s?: unknown) => Promise<unknown> };
  const call = m.call.bind(m);
  m.call = (method, inputs, s) => {
    if (method === 'forward_features' || method === 'forward') counter.rows += (inputs[0] as NativeTensor).shape[0];
    return call(method, inputs, s);
  };
  return counter;
}

const meter = (): NfeMeter & { used: number } => ({
  used: 0,
  charge(n: number) {
    this.used += n;
  },
  addModelTime() {},
});

/** Predictors that return garbage: the sampler must still end every sample within maxSteps. */
const garbage: Record<string, (n: number) => { alpha: Float32Array; beta: Float32Array }> = {
  nan: (n) => ({ alpha: new Float32Array(n).fill(NaN), beta: new Float32Array(n).fill(NaN) }),
  infinite: (n) => ({ alpha: new Float32Array(n).fill(Infinity), beta: new Float32Array(n).fill(-Infinity) }),
  'below one': (n) => ({ alpha: new Float32Array(n).fill(-3), beta: new Float32Array(n).fill(0) }),
  'uniform (no mode)': (n) => ({ alpha: new Float32Array(n).fill(1), beta: new Float32Array(n).fill(1) }),
  'r -> 1 (never stops by itself)': (n) => ({
    alpha: new Float32Array(n).fill(1e30),
    beta: new Float32Array(n).fill(1.0000001),
  }),
  'r -> 0': (n) => ({ alpha: new Float32Array(n).fill(1), beta: new Float32Array(n).fill(1e30) }),
  random: (n) => {
    const a = randn(2 * n);
    return {
      alpha: Float32Array.from(a.subarray(0, n), (v) => Math.exp(5 * v)),
      beta: Float32Array.from(a.subarray(n), (v) => v * 1e6),
    };
  },
};
const garbagePredictor = (name: string, maxSteps?: number): TimePredictor => ({
  name,
  defaults: { maxSteps },
  predict: async (f) => garbage[name](f.shape[0]),
});

describe.skipIf(!haveFlow)('adaptive sampler', () => {
  let flow: Denoiser;
  let tpm: TimePredictionModule | null = null;
  const shape = [1, 28, 28];
  const noise = (n: number, scale = 1, seed?: number) =>
    tensor(
      Float32Array.from(randn(n * 784, seed), (v) => v * scale),
      [n, ...shape],
    );

  beforeAll(async () => {
    flow = await Denoiser.load(flowFile, { maxBatch: 16 });
    if (haveTpm) tpm = await TimePredictionModule.load(tpmFile);
  });

  it('betaMode: the mode, clamped; degenerate (α, β) never give NaN', () => {
    expect(betaMode(3, 2, 1e-3, 0.999)).toBeCloseTo(2 / 3, 12);
    expect(betaMode(1, 5, 1e-3, 0.999)).toBe(1e-3);
    expect(betaMode(5, 1, 1e-3, 0.999)).toBe(0.999);
    for (const [a, b] of [
      [NaN, 2],
      [2, Infinity],
      [0.5, 3],
      [1, 1],
      [-1, -1],
    ])
      expect(Number.isFinite(betaMode(a, b, 1e-3, 0.999))).toBe(true);
  });

  it.skipIf(!haveTpm)('the TPM loads; its card parses and records its training; forward gives α, β > 1', async () => {
    const t = tpm!;
    const card = validateTpmCard(t.module.card, tpmFile);
    expect(card.name).toBe('fashion-tpm');
    expect(card.feature_dim).toBe((flow.card as { feature_dim?: number }).feature_dim ?? card.feature_dim);
    expect(typeof card.training?.gamma).toBe('number');
    expect(String(card.training?.command)).toMatch(/train_tpm\.py/);
    expect(card.sampler?.max_steps).toBeGreaterThan(1);
    expect(card.license).toBeTruthy();
    expect(t.module.hasMethod('mode')).toBe(true);
    const n = 6;
    const f = tensor(randn(n * card.feature_dim!), [n, card.feature_dim!]);
    const sig = [1, 0.8, 0.5, 0.2, 0.05, 0.011];
    const { alpha, beta } = await t.predict(f, sig);
    const mode = (await (
      (await t.module.call('mode', [f, floatTensor(sig)])) as NativeTensor
    ).toArray()) as Float32Array;
    for (let i = 0; i < n; i++) {
      expect(alpha[i]).toBeGreaterThan(1);
      expect(beta[i]).toBeGreaterThan(1);
      // The module's own mode and the sampler's agree.
      expect(betaMode(alpha[i], beta[i], 1e-3, 1 - 1e-3)).toBeCloseTo(mode[i], 5);
    }
    await expectCode(() => t.predict(tensor(randn(12), [2, 6]), [1, 1]), 'SHAPE');
  });

  it.skipIf(!haveTpm)(
    'terminates for any input (garbage states too), within maxSteps; NFE = steps, counted independently',
    async () => {
      const inputs: Record<string, NativeTensor> = {
        normal: noise(5),
        huge: noise(5, 1e6),
        zeros: tensor(new Float32Array(5 * 784), [5, ...shape]),
        nan: tensor(new Float32Array(5 * 784).fill(NaN), [5, ...shape]),
        inf: tensor(
          Float32Array.from({ length: 5 * 784 }, (_, i) => (i % 2 ? Infinity : -Infinity)),
          [5, ...shape],
        ),
      };
      for (const [name, x] of Object.entries(inputs))
        for (const maxSteps of name === 'normal' || name === 'nan' ? [1, 3, 60] : [1, 3]) {
          const counter = countRows(flow);
          const m = meter();
          const r = await sampleAdaptive(x, {
            denoiser: flow,
            predictor: tpm!,
            cond: [0, 3, 5, 7, 9],
            meter: m,
            maxSteps,
          });
          const steps = Array.from(r.steps);
          expect(r.x.shape, name).toEqual([5, ...shape]);
          for (const s of steps) expect(s >= 1 && s <= maxSteps, `${name}: ${s} steps, max ${maxSteps}`).toBe(true);
          expect(m.used).toBe(steps.reduce((a, b) => a + b, 0));
          expect(counter.rows).toBe(m.used);
          expect(r.nfe).toBe(m.used);
          for (const sg of r.sigmas) {
            expect(sg[sg.length - 1]).toBe(0);
            for (let i = 1; i < sg.length; i++) expect(sg[i]).toBeLessThan(sg[i - 1]);
          }
          r.x.dispose();
          delete (flow.module as unknown as { call?: unknown }).call;
        }
    },
  );

  it(
    'terminates within maxSteps whatever the predictor returns (NaN, ∞, α < 1, no mode, r → 1, r → 0, ' + 'random)',
    async () => {
      const x = noise(4);
      for (const name of Object.keys(garbage))
        for (const maxSteps of [1, 2, 9]) {
          const m = meter();
          const r = await sampleAdaptive(x, {
            denoiser: flow,
            predictor: garbagePredictor(name, maxSteps),
            cond: [1, 2, 3, 4],
            meter: m,
          });
          const steps = Array.from(r.steps);
          for (const s of steps) expect(s >= 1 && s <= maxSteps, `${name}: ${s} steps, max ${maxSteps}`).toBe(true);
          if (name.startsWith('r -> 1')) expect(steps).toEqual([maxSteps, maxSteps, maxSteps, maxSteps]);
          if (name === 'r -> 0') expect(steps).toEqual([1, 1, 1, 1]);
          expect(m.used).toBe(steps.reduce((a, b) => a + b, 0));
          const out = (await r.x.toArray()) as Float32Array;
          expect(out.every(Number.isFinite), name).toBe(true);
          r.x.dispose();
        }
    },
  );

  it.skipIf(!haveTpm)(
    'on a small batch its mean steps are below the fixed 50-step schedule; samples finish independently; reproducible',
    async () => {
      const n = 20;
      const cond = Array.from({ length: n }, (_, i) => i % 10);
      const x = noise(n, 1, 1234);
      const m = meter();
      let stepsSeen = 0;
      const r = await sampleAdaptive(x, {
        denoiser: flow,
        predictor: tpm!,
        cond,
        meter: m,
        midSigma: 0.4,
        onStep: () => stepsSeen++,
      });
      const steps = Array.from(r.steps);
      const mean = steps.reduce((a, b) => a + b, 0) / n;
      console.log(
        `adaptive: mean steps ${mean.toFixed(2)} (min ${Math.min(...steps)}, max ${Math.max(...steps)}) vs 50 fixed`,
      );
      expect(mean).toBeLessThan(50);
      expect(m.used).toBeLessThan(50 * n);
      expect(stepsSeen).toBe(Math.max(...steps));
      expect(r.x0Mid?.shape).toEqual([n, ...shape]);
      const px = (await r.x.toArray()) as Float32Array;
      expect(px.every(Number.isFinite)).toBe(true);
      // the same input gives the same schedule and samples (the order of rows does not matter)
      const r2 = await sampleAdaptive(x, { denoiser: flow, predictor: tpm!, cond, meter: meter() });
      expect(Array.from(r2.steps)).toEqual(steps);
      const p2 = (await r2.x.toArray()) as Float32Array;
      let maxDiff = 0;
      for (let i = 0; i < px.length; i++) maxDiff = Math.max(maxDiff, Math.abs(px[i] - p2[i]));
      expect(maxDiff).toBeLessThan(1e-4);
      for (const t of [r.x, r.x0Mid!, r2.x]) t.dispose();
    },
  );

  it.skipIf(!haveTpm || !fs.existsSync(python))(
    'matches the PyTorch reference sampler (scripts/train/tpm_net.py) step for step, with either solver',
    async () => {
      const n = 8;
      const cond = Array.from({ length: n }, (_, i) => (3 * i) % 10);
      const data = Float32Array.from(randn(n * 784));
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tpm-ref-'));
      const { sigmaMin, maxSteps } = adaptiveSettings(tpm!);
      writeNpy(path.join(dir, 'x.npy'), data, [n, ...shape]);
      const script = [
        'import sys, json, numpy as np, torch',
        "sys.path.insert(0, 'scripts/train')",
        'from tpm_net import adaptive_rollout',
        'torch.set_num_threads(1)',
        `flow = torch.jit.load(${JSON.stringify(flowFile)}).eval(); tpm = ` +
          `torch.jit.load(${JSON.stringify(tpmFile)}).eval()`,
        `x = torch.from_numpy(np.load(${JSON.stringify(path.join(dir, 'x.npy'))})); cond = ` +
          `torch.tensor(${JSON.stringify(cond)})`,
        'out = {}',
        "for solver in ('euler', 'ab2'):",
        `    x0, steps, _ = adaptive_rollout(flow, tpm, x, cond, ${sigmaMin}, ${maxSteps}, solver=solver)`,
        `    np.save(${JSON.stringify(dir)} + '/' + solver + '.npy', x0.numpy()); out[solver] = steps.tolist()`,
        'print(json.dumps(out))',
      ].join('\n');
      const p = spawnSync(python, ['-c', script], {
        cwd: root,
        encoding: 'utf8',
        timeout: 100_000,
        env: { ...process.env, OMP_WAIT_POLICY: 'PASSIVE' },
      });
      expect(p.status, p.stderr).toBe(0);
      const refSteps = JSON.parse(p.stdout.trim().split('\n').pop()!) as Record<AdaptiveSolver, number[]>;
      const ours: Record<string, Float32Array> = {};
      for (const solver of ['euler', 'ab2'] as const) {
        const r = await sampleAdaptive(tensor(data, [n, ...shape]), {
          denoiser: flow,
          predictor: tpm!,
          cond,
          meter: meter(),
          solver,
        });
        expect(Array.from(r.steps), solver).toEqual(refSteps[solver]);
        const px = (ours[solver] = (await r.x.toArray()) as Float32Array);
        const ref = readNpy(path.join(dir, `${solver}.npy`)).data;
        let maxDiff = 0;
        for (let i = 0; i < px.length; i++) maxDiff = Math.max(maxDiff, Math.abs(px[i] - ref[i]));
        console.log(
          `adaptive ${solver}: steps ${refSteps[solver].join(',')}; max |TS − PyTorch| = ${maxDiff.toExponential(2)}`,
        );
        // float32 differences of the convolutions (2 threads here, 1 in PyTorch) grow through up to
        // 20 AB2 steps: seen from 1e-5 to 7.4e-4 on fresh inputs; a wrong step rule is off by > 1e-2.
        expect(maxDiff, solver).toBeLessThan(2e-3);
        r.x.dispose();
      }
      fs.rmSync(dir, { recursive: true, force: true });
      // The solvers really differ (AB2 is applied, not ignored).
      let d = 0;
      for (let i = 0; i < ours.euler.length; i++) d = Math.max(d, Math.abs(ours.euler[i] - ours.ab2[i]));
      expect(d).toBeGreaterThan(1e-3);
      // AB2's weights: 0 without a previous step, h/2h′ otherwise, capped at 1.
      expect(ab2Coefficients([-0.1, -0.1, -0.1, -0.5], [0, -0.1, -0.2, -0.1])).toEqual([0, 0.5, 0.25, 1]);
      await expectCode(
        () =>
          sampleAdaptive(tensor(data, [n, ...shape]), {
            denoiser: flow,
            predictor: tpm!,
            cond,
            meter: meter(),
            solver: 'rk4' as never,
          }),
        'ARGUMENT',
      );
    },
  );

  it.skipIf(!haveTpm)(
    'guidance doubles the NFE; a budget too small stops it with BUDGET; abort stops it with ABORTED',
    async () => {
      const x = noise(3);
      const m = meter();
      const r = await sampleAdaptive(x, {
        denoiser: flow,
        predictor: tpm!,
        cond: [0, 1, 2],
        meter: m,
        guidance: 2,
        maxSteps: 5,
      });
      expect(m.used).toBe(2 * Array.from(r.steps).reduce((a, b) => a + b, 0));
      r.x.dispose();
      await expectCode(
        () => sampleAdaptive(x, { denoiser: flow, predictor: tpm!, cond: [0, 1, 2], meter: new Budget(7) }),
        'BUDGET',
      );
      const ac = new AbortController();
      await expectCode(
        () =>
          sampleAdaptive(x, {
            denoiser: flow,
            predictor: tpm!,
            cond: [0, 1, 2],
            meter: meter(),
            signal: ac.signal,
            onStep: (s) => s === 2 && ac.abort(),
          }),
        'ABORTED',
      );
      await expectCode(
        () => sampleAdaptive(x, { denoiser: flow, predictor: tpm!, cond: [0, 1], meter: meter() }),
        'SHAPE',
      );
      await expectCode(
        () => sampleAdaptive(x, { denoiser: flow, predictor: tpm!, cond: [0, 1, 2], meter: meter(), maxSteps: 0 }),
        'ARGUMENT',
      );
    },
  );
});

describe.skipIf(!haveFlow || !fs.existsSync(python))('TPM training (scripts/train/train_tpm.py, tiny settings)', () => {
  it('a short seeded run (AB2 rollouts, like the shipped module) lowers the loss and raises the mean reward', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tpm-train-'));
    const curveFile = path.join(dir, 'curve.json');
    const args = [
      'scripts/train/train_tpm.py',
      '--flow',
      flowFile,
      '--reward',
      'classifier',
      '--gamma',
      '0.9',
      '--seed',
      '0',
      '--bc-pool',
      '512',
      '--bc-iters',
      '150',
      '--bc-target-steps',
      '20',
      '--bc-shift',
      '1',
      '--iters',
      '12',
      '--conditions',
      '4',
      '--k',
      '4',
      '--lr',
      '1e-3',
      '--eval-every',
      '100',
      '--max-steps',
      '40',
      '--solver',
      'ab2',
      '--threads',
      process.env.DS_TEST_THREADS ?? '2',
      '--out',
      '',
      '--curve-json',
      curveFile,
    ];
    const t0 = Date.now();
    const p = spawnSync(python, args, { cwd: root, encoding: 'utf8', timeout: 110_000 });
    expect(p.status, p.stderr || p.stdout).toBe(0);
    const c = JSON.parse(fs.readFileSync(curveFile, 'utf8')) as { bc: number[][]; rl: number[][]; greedy: number[][] };
    fs.rmSync(dir, { recursive: true, force: true });
    console.log(
      `train_tpm: ${((Date.now() - t0) / 1000).toFixed(1)} s; warm-start loss ${c.bc[0][1]} -> ` +
        `${c.bc[c.bc.length - 1][1]}; ` +
        `greedy (steps, reward) ${c.greedy[0][3]}, ${c.greedy[0][4]} -> ${c.greedy[c.greedy.length - 1][3]}, ` +
        `${c.greedy[c.greedy.length - 1][4]}`,
    );
    // The warm-start (behaviour-cloning) loss falls by an order of magnitude.
    expect(c.bc[c.bc.length - 1][1]).toBeLessThan(c.bc[0][1] / 10);
    // The PPO surrogate falls within the updates (first epoch -> last epoch), on average.
    const drop = c.rl.reduce((s, r) => s + (r[6] - r[5]), 0) / c.rl.length;
    expect(drop).toBeLessThan(0);
    // The mean (discounted) reward rises: greedy policy on a fixed batch, and the sampled rollouts.
    expect(c.greedy[c.greedy.length - 1][4]).toBeGreaterThan(c.greedy[0][4]);
    const avg = (rows: number[][]) => rows.reduce((s, r) => s + r[4], 0) / rows.length;
    expect(avg(c.rl.slice(-4))).toBeGreaterThan(avg(c.rl.slice(0, 4)));
  });
});
