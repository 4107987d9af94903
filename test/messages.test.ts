/**
 * Messages for every entrance: errors raised deep in a search do not know whether the
 * request came from the CLI or as JSON, so they name both spellings of the fix; EvoSearch's
 * elites check says the allowed range and how to fix it.
 */
import { describe, expect, it } from 'vitest';
import { createEngine } from '../src/engine/engine';
import { generate } from '../src/generate';
import { createServer } from '../src/server/server';
import { expectCode } from './helpers';

process.env.OMP_WAIT_POLICY ??= 'PASSIVE';

const small = { model: 'gmm2d', algorithm: 'evosearch' as const, budget: 3, steps: 5, n: 1 };

describe('a budget too small names the budget for every entrance', () => {
  it('generate(): the request key beside the flag', async () => {
    const e = await expectCode(() => generate(small), 'BUDGET');
    expect(e.message).toMatch(/needs \d+ NFE: raise the budget \(--budget \/ "budget"\)/);
    expect(e.message).toContain('or use fewer steps (--steps / "steps")');
  });

  it('POST /v1/generate: the same words', async () => {
    const server = createServer(createEngine({}), {});
    try {
      const base = `http://127.0.0.1:${(await server.listen(0, '127.0.0.1')).port}`;
      const headers = { 'content-type': 'application/json' };
      const res = await fetch(`${base}/v1/generate`, { method: 'POST', body: JSON.stringify(small), headers });
      const { error } = (await res.json()) as { error: { code: string; message: string } };
      expect(error.code).toBe('BUDGET');
      expect(error.message).toContain('"budget"');
      expect(error.message).not.toMatch(/raise --budget/);
    } finally {
      await server.close(0);
    }
  });
});

describe('evosearch elites', () => {
  it('too many for the population set: the most allowed and the fix', async () => {
    const o = { ...small, budget: 400, algorithmOptions: { population: [20, 14, 14], levels: [0, 2], elites: 500 } };
    const e = await expectCode(() => generate(o), 'ARGUMENT');
    expect(e.message).toMatch(/elites must be below the smallest population size .*at most 13/);
    expect(e.message).toMatch(/got 500: lower elites or raise population$/);
  });

  it('too many for the population fitted to the budget: the fix names the budget', async () => {
    const e = await expectCode(() => generate({ ...small, budget: 60, algorithmOptions: { elites: 500 } }), 'ARGUMENT');
    expect(e.message).toMatch(/at most \d+.*got 500: lower elites or raise the budget/);
  });
});

describe('checks after the model loads name both spellings', () => {
  it('a text model without a prompt', async () => {
    const e = await expectCode(() => generate({ model: 'fashion-t2i', budget: 20, steps: 4, eval: false }), 'ARGUMENT');
    expect(e.message).toContain('(--prompt / "prompt")');
  });
});
