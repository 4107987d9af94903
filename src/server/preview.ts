/**
 * A search's current best x̂0 (SearchPreview) as a progress event carries it: a small PNG
 * (base64) for image shapes — [C,H,W] with C = 1 or 3, [H,W], or a clip's first frame of
 * [T,C,H,W] — the values themselves for a few numbers (gmm2d's points), else a note that the
 * shape has no preview.
 */
import { encodePng } from '../io/png';
import type { SearchPreview } from '../search/types';

/** Longest side of a preview image, in pixels. */
const SIDE = 112;
/** Most values sent as numbers instead of an image. */
const MAX_POINTS = 16;

export type PreviewPayload = { png: string } | { values: number[] } | { none: string };

export function previewPayload(p: SearchPreview): PreviewPayload & { shape: number[]; reward: number } {
  return { ...encode(p), shape: p.shape, reward: p.reward };
}

function encode(p: SearchPreview): PreviewPayload {
  const s = p.shape;
  const size = s.reduce((a, b) => a * b, 1);
  if (s.length === 1 && size <= MAX_POINTS) return { values: Array.from(p.data.subarray(0, size)) };
  const img = imageShape(s);
  if (!img) return { none: `no preview for shape [${s.join(', ')}]` };
  const [c, h, w] = img;
  const px = toPixels(p.data.subarray(0, c * h * w), img, p.valueRange);
  return { png: encodePng(px.data, px.width, px.height, c as 1 | 3).toString('base64') };
}

/** [C, H, W] of a drawable shape (a clip's first frame), else null. */
function imageShape(s: number[]): [number, number, number] | null {
  if (s.length === 2) return [1, s[0], s[1]];
  if (s.length === 3 && (s[0] === 1 || s[0] === 3)) return [s[0], s[1], s[2]];
  if (s.length === 4 && (s[1] === 1 || s[1] === 3)) return [s[1], s[2], s[3]];
  return null;
}

/** Nearest-neighbour resize to SIDE on the longest side, range (or the data's min and max) to 0..255, HWC. */
function toPixels(d: Float32Array, [c, h, w]: [number, number, number], range: [number, number] | null) {
  const [lo, hi] = range ?? extent(d);
  const k = SIDE / Math.max(h, w);
  const width = Math.max(1, Math.round(w * k)),
    height = Math.max(1, Math.round(h * k));
  const data = new Uint8Array(width * height * c);
  for (let y = 0; y < height; y++)
    for (let x = 0; x < width; x++) {
      const sy = Math.min(h - 1, Math.floor(y / k)),
        sx = Math.min(w - 1, Math.floor(x / k));
      for (let ch = 0; ch < c; ch++) {
        const u = Math.round((255 * (d[(ch * h + sy) * w + sx] - lo)) / (hi - lo || 1));
        data[(y * width + x) * c + ch] = Number.isFinite(u) ? Math.max(0, Math.min(255, u)) : 0;
      }
    }
  return { data, width, height };
}

function extent(d: Float32Array): [number, number] {
  let lo = Infinity,
    hi = -Infinity;
  for (const v of d) if (Number.isFinite(v)) (lo = Math.min(lo, v)), (hi = Math.max(hi, v));
  return lo <= hi ? [lo, hi] : [0, 1];
}
