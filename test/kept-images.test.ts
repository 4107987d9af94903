/**
 * A latent model's samples are the images its verifier scored: the engine keeps
 * the decoded row beside each kept latent instead of decoding the kept latents again, in another
 * batch size (the batcher merges decoder calls across searches), which would change the last bits.
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { generate } from '../src/generate';
import type { AlgorithmName } from '../src/search';
import { FunctionVerifier } from '../src/verifiers/verifier';

process.env.OMP_WAIT_POLICY ??= 'PASSIVE';

const have = fs.existsSync(path.join(__dirname, '..', 'models', 'fashion-t2i.pt'));

/** A verifier that records every image it is given, by the reward it gave it. */
function recording() {
  const seen = new Map<number, Float32Array[]>();
  const verifier = new FunctionVerifier('recording', async (x) => {
    const per = x.shape.slice(1).reduce((a, b) => a * b, 1);
    const all = (await x.toArray()) as Float32Array;
    return Array.from({ length: x.shape[0] }, (_, i) => {
      const row = all.slice(i * per, (i + 1) * per);
      // A weighted sum: distinct images get distinct rewards.
      const reward = Math.fround(row.reduce((s, v, j) => s + v * (1 + (j % 7)), 0) / per);
      seen.set(reward, [...(seen.get(reward) ?? []), row]);
      return reward;
    });
  });
  return { verifier, seen };
}

describe.skipIf(!have)('fashion-t2i: each returned sample is the image its verifier scored', () => {
  // Several sizes: whether a second decode in another batch size changes the bits depends on them.
  const cases = [
    [30, 2],
    [44, 3],
    [68, 2],
  ];
  for (const algorithm of ['best-of-n', 'evosearch'] as AlgorithmName[])
    it.each(cases)(
      `${algorithm}, budget %i, keep %i: element for element`,
      async (budget, keep) => {
        const { verifier, seen } = recording();
        const prompt = ['a dark ankle boot', 'a bright bag'];
        const o = { model: 'fashion-t2i', prompt, algorithm, budget, steps: 4, n: 2, keep, verifier: [verifier] };
        const r = await generate({ ...o, eval: false });
        const per = r.shape.slice(1).reduce((a, b) => a * b, 1);
        expect(r.shape[0]).toBe(r.rewards.length);
        expect(r.shape[0]).toBeGreaterThanOrEqual(4);
        r.rewards.forEach((reward, i) => {
          const row = r.samples.subarray(i * per, (i + 1) * per);
          const scored = seen.get(reward);
          expect(scored, `row ${i}: reward ${reward} was never given`).toBeDefined();
          const bytes = Buffer.from(row.buffer, row.byteOffset, row.byteLength);
          for (const img of scored!) expect(bytes.equals(Buffer.from(img.buffer)), `row ${i}: bit for bit`).toBe(true);
        });
      },
      120_000,
    );
});
