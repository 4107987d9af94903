/**
 * Samples as 8-bit pictures: the one place that knows how a shape's axes map to clips, frames,
 * channels and pixels. Images [n, C, H, W] (or [n, H, W]) are clips of one frame; video
 * [n, T, C, H, W] has T. The grid PNG and the animations both tile from here.
 */
import { DiffusionSearchError } from '../errors';

/** A shape read as clips of frames: T = 1 for images. `ch` is what is drawn: RGB for C = 3, else channel 0 as grey. */
export interface FrameLayout {
  n: number;
  T: number;
  C: number;
  H: number;
  W: number;
  ch: 1 | 3;
}

/** The layout of [n, H, W], [n, C, H, W] or [n, T, C, H, W]; null for shapes without pixels (points, vectors). */
export function frameLayout(shape: readonly number[]): FrameLayout | null {
  let dims: number[];
  if (shape.length === 3) dims = [shape[0], 1, 1, shape[1], shape[2]];
  else if (shape.length === 4) dims = [shape[0], 1, ...shape.slice(1)];
  else if (shape.length === 5) dims = [...shape];
  else return null;
  const [n, T, C, H, W] = dims;
  return { n, T, C, H, W, ch: C === 3 ? 3 : 1 };
}

/** True for [n, T, C, H, W]: samples with a frame axis. */
export const isVideoShape = (shape: readonly number[]): boolean => shape.length === 5;

/** The layout of a shape that must have pixels, else a SHAPE error naming what wanted them. */
export function requireFrames(shape: readonly number[], what: string): FrameLayout {
  const l = frameLayout(shape);
  if (!l)
    throw new DiffusionSearchError(
      `${what} needs samples with pixels ([n, C, H, W] or [n, T, C, H, W]), got [${shape}]`,
      'SHAPE',
    );
  return l;
}

/** Maps `range` to 0..255 (NaN → 0). */
export function toByte(v: number, lo: number, hi: number): number {
  const u = Math.round((255 * (v - lo)) / (hi - lo));
  return Math.max(0, Math.min(255, Number.isFinite(u) ? u : 0));
}

/** One tile of a canvas: frame t of clip i. */
export interface Tile {
  clip: number;
  frame: number;
}

export interface Canvas {
  px: Uint8Array;
  width: number;
  height: number;
  ch: 1 | 3;
}

/**
 * Draws `tiles` row-major in `cols` columns, each pixel scaled to scale×scale, with `gap` white
 * pixels around and between tiles.
 */
export function drawTiles(
  data: Float32Array,
  l: FrameLayout,
  tiles: readonly Tile[],
  o: { cols: number; range: [number, number]; scale: number; gap: number },
): Canvas {
  const { cols, scale, gap } = o;
  const rows = Math.ceil(tiles.length / cols);
  const tw = l.W * scale,
    th = l.H * scale;
  const width = cols * (tw + gap) + gap,
    height = rows * (th + gap) + gap;
  const px = new Uint8Array(width * height * l.ch).fill(255);
  tiles.forEach((t, k) => {
    const ox = gap + (k % cols) * (tw + gap),
      oy = gap + Math.floor(k / cols) * (th + gap);
    drawFrame(data, l, t, { px, width, height, ch: l.ch }, ox, oy, o.range, scale);
  });
  return { px, width, height, ch: l.ch };
}

function drawFrame(
  data: Float32Array,
  l: FrameLayout,
  t: Tile,
  c: Canvas,
  ox: number,
  oy: number,
  [lo, hi]: [number, number],
  scale: number,
): void {
  const base = (t.clip * l.T + t.frame) * l.C;
  for (let y = 0; y < l.H * scale; y++)
    for (let x = 0; x < l.W * scale; x++)
      for (let k = 0; k < l.ch; k++) {
        const v = data[((base + k) * l.H + Math.floor(y / scale)) * l.W + Math.floor(x / scale)];
        c.px[((oy + y) * c.width + ox + x) * l.ch + k] = toByte(v, lo, hi);
      }
}
