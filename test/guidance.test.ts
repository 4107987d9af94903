/**
 * Classifier-free guidance needs the model card's null class: guidance ≠ 1 on
 * a model without one is an ARGUMENT error before any model call — from every search, the
 * samplers, the denoiser itself and generate — never silently ignored.
 */
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { generate } from '../src/generate';
import { Denoiser, type NfeMeter } from '../src/models/denoiser';
import type { ModuleInput } from '../src/native';
import { steppers, type SamplerName } from '../src/samplers';
import { uniform } from '../src/schedules';
import { algorithms, type AlgorithmName } from '../src/search';
import { tensor } from '../src/tensor';
import { TorchScriptVerifier } from '../src/verifiers/torchscript';
import { expectCode, fixture, randn } from './helpers';

const models = path.join(__dirname, '..', 'models');
let gmm: Denoiser; // no null class
let tiny: Denoiser; // null class 10
let reward: TorchScriptVerifier;
let modelCalls = 0;
const meter: NfeMeter = { charge: () => {}, addModelTime: () => {} };

beforeAll(async () => {
  gmm = await Denoiser.load(path.join(models, 'gmm2d.pt'));
  tiny = await Denoiser.load(fixture('tiny.pt'));
  reward = await TorchScriptVerifier.load(path.join(models, 'gmm2d-reward.pt'));
  const call = gmm.module.call.bind(gmm.module);
  gmm.module.call = (method: string, inputs: ModuleInput[], stream) => {
    modelCalls++;
    return call(method, inputs, stream);
  };
});

const GUIDANCE = [2, 0, 1.5, -1];

describe('a model without a null class', () => {
  it('has none on its card', () => {
    expect(gmm.nullClass).toBeUndefined();
    expect(tiny.nullClass).toBe(10);
  });

  it.each(Object.keys(algorithms) as AlgorithmName[])(
    '%s: guidance ≠ 1 fails with ARGUMENT before the model runs',
    async (name) => {
      for (const guidance of GUIDANCE) {
        modelCalls = 0;
        const sampler = name === 'particles' || name === 'beam' ? 'sde' : 'euler';
        const e = await expectCode(
          () =>
            algorithms[name].run({
              denoiser: gmm,
              verifier: reward,
              cls: 0,
              budget: 500,
              sigmas: uniform(10),
              guidance,
              sampler,
            }),
          'ARGUMENT',
        );
        expect(e.message).toContain('null class');
        expect(e.message).toContain(String(guidance));
        expect(modelCalls).toBe(0);
      }
      // guidance 1 (and the default) runs
      const r = await algorithms[name].run({
        denoiser: gmm,
        verifier: reward,
        cls: 0,
        budget: 500,
        sigmas: uniform(10),
        guidance: 1,
        sampler: name === 'particles' || name === 'beam' ? 'sde' : 'euler',
      });
      r.sample.dispose();
    },
  );

  it('the denoiser refuses to guide: cost, evaluate and predict', async () => {
    const x = tensor(randn(8), [4, 2]);
    for (const guidance of GUIDANCE) {
      await expectCode(() => gmm.cost(4, guidance), 'ARGUMENT');
      await expectCode(() => gmm.evaluate(x, [1, 1, 1, 1], [0, 0, 0, 0], guidance, meter), 'ARGUMENT');
      await expectCode(() => gmm.predict(x, [1, 1, 1, 1], [0, 0, 0, 0], guidance, meter), 'ARGUMENT');
    }
    expect(gmm.cost(4, 1)).toBe(4);
    x.dispose();
  });

  it.each(['euler', 'heun', 'sde'] as SamplerName[])('the %s sampler refuses to guide', async (name) => {
    const x = tensor(randn(8), [4, 2]);
    await expectCode(
      () =>
        steppers[name](
          { denoiser: gmm, cond: [0, 0, 0, 0], guidance: 3, meter },
          x,
          [1, 1, 1, 1],
          [0.5, 0.5, 0.5, 0.5],
        ),
      'ARGUMENT',
    );
    x.dispose();
  });

  it('generate refuses too', async () => {
    await expectCode(
      () => generate({ model: 'gmm2d', algorithm: 'best-of-n', budget: 100, guidance: 2, eval: false }),
      'ARGUMENT',
    );
  });
});

describe('a model with a null class', () => {
  it('guides at any finite weight, at twice the NFE; a non-finite weight is an ARGUMENT error', async () => {
    expect(tiny.cost(5, 2)).toBe(10);
    expect(tiny.cost(5, 0)).toBe(10);
    expect(tiny.cost(5, 1)).toBe(5);
    await expectCode(() => tiny.cost(5, NaN), 'ARGUMENT');
    await expectCode(() => tiny.cost(5, Infinity), 'ARGUMENT');
    let charged = 0;
    const x = tensor(randn(48), [3, 16]);
    const p = await tiny.predict(x, [0.5, 0.5, 0.5], [1, 2, 3], 2, {
      charge: (n) => (charged += n),
      addModelTime: () => {},
    });
    expect(charged).toBe(6);
    for (const t of [x, p.x0, p.eps]) t.dispose();
  });
});
