/**
 * Previews of the current best x̂0 (request field `preview`): they change nothing a search does
 * (same samples, rewards and NFE as without), come at most one per PREVIEW_MS on average, and each
 * is a copy of a sample the search scored — the last one of a search with its final reward is its
 * returned sample. The server's encoding: images as PNG, a few numbers as values, others "none".
 */
import zlib from 'node:zlib';
import { afterAll, describe, expect, it } from 'vitest';
import { createEngine } from '../src/engine/engine';
import { PREVIEW_MS } from '../src/request/defaults';
import type { GenerateProgress } from '../src/request/types';
import { previewPayload } from '../src/server/preview';

const engine = createEngine();
afterAll(() => engine.close());

async function withPreviews(o: Record<string, unknown>) {
  const seen: Array<{ at: number; p: GenerateProgress }> = [];
  const r = await engine.generate(
    { ...o, preview: true },
    { onProgress: (p) => p.preview && seen.push({ at: performance.now(), p }) },
  );
  return { r, seen };
}

/** The pixels of an 8-bit gray PNG whose rows use filter 0 (what src/io/png writes). */
function grayPixels(png: Buffer): { width: number; height: number; px: Uint8Array } {
  const width = png.readUInt32BE(16);
  const height = png.readUInt32BE(20);
  const idat: Buffer[] = [];
  for (let at = 8; at < png.length; ) {
    const len = png.readUInt32BE(at);
    if (png.toString('latin1', at + 4, at + 8) === 'IDAT') idat.push(png.subarray(at + 8, at + 8 + len));
    at += 12 + len;
  }
  const raw = zlib.inflateSync(Buffer.concat(idat));
  const px = new Uint8Array(width * height);
  for (let y = 0; y < height; y++) px.set(raw.subarray(y * (width + 1) + 1, (y + 1) * (width + 1)), y * width);
  return { width, height, px };
}

describe('previews', () => {
  it('cost nothing: the same samples, rewards and NFE as without them', async () => {
    const o = { model: 'gmm2d', algorithm: 'evosearch', budget: 300, n: 3, seed: 11 };
    const plain = await engine.generate(o);
    const { r, seen } = await withPreviews(o);
    expect(r.samples).toEqual(plain.samples);
    expect(r.rewards).toEqual(plain.rewards);
    expect(r.report.nfe_used).toBe(plain.report.nfe_used);
    expect(seen.length).toBeGreaterThan(0);
  });

  it('come at most every 2 × PREVIEW_MS per search of two, and each is a sample the search scored', async () => {
    const { r, seen } = await withPreviews({ model: 'fashion-flow', class: 'Shirt', budget: 300, n: 2, seed: 5 });
    expect(seen.length).toBeGreaterThan(1);
    for (const k of [0, 1]) {
      const at = seen.filter(({ p }) => p.sample === k).map((s) => s.at);
      expect(at.length).toBeGreaterThan(0);
      for (let i = 1; i < at.length; i++) expect(at[i] - at[i - 1]).toBeGreaterThanOrEqual(2 * PREVIEW_MS - 1);
    }
    for (const { p } of seen) {
      expect(p.preview!.shape).toEqual([1, 28, 28]);
      expect(p.preview!.valueRange).toEqual([-1, 1]);
      expect(p.preview!.reward).toBeLessThanOrEqual(r.rewards[p.sample]);
    }
    // A preview with the search's final reward is its returned sample, value for value.
    for (const { p } of seen.filter(({ p }) => p.preview!.reward === r.rewards[p.sample]))
      expect(p.preview!.data).toEqual(r.samples.subarray(p.sample * 784, (p.sample + 1) * 784));
  });

  it('encode images as PNG (range mapped to 0..255), a few numbers as values, other shapes as none', () => {
    const data = Float32Array.from({ length: 2 * 5 * 7 }, () => Math.random() * 2 - 1);
    const img = previewPayload({ data, shape: [1, 5, 7], reward: 0.5, valueRange: [-1, 1] });
    expect(img).toMatchObject({ shape: [1, 5, 7], reward: 0.5 });
    const { width, height, px } = grayPixels(Buffer.from((img as { png: string }).png, 'base64'));
    expect(Math.max(width, height)).toBe(112);
    for (let y = 0; y < height; y++)
      for (let x = 0; x < width; x++) {
        const v = data[Math.min(4, Math.floor((y * 7) / 112)) * 7 + Math.min(6, Math.floor((x * 7) / 112))];
        expect(px[y * width + x]).toBe(Math.max(0, Math.min(255, Math.round((255 * (v + 1)) / 2))));
      }
    // A clip [T, C, H, W] shows its first frame.
    const clip = previewPayload({ data, shape: [2, 1, 5, 7], reward: 0, valueRange: [-1, 1] }) as { png: string };
    expect(clip.png).toBe((img as { png: string }).png);
    expect(previewPayload({ data, shape: [2], reward: 0, valueRange: null })).toMatchObject({
      values: [data[0], data[1]],
    });
    expect(previewPayload({ data, shape: [2, 5, 7], reward: 0, valueRange: null })).toMatchObject({
      none: 'no preview for shape [2, 5, 7]',
    });
  });
});
