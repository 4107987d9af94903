/**
 * Animated GIFs of video samples, encoded by gifenc: one per clip, or every clip tiled at once.
 * Grey frames use a 256-grey palette, so each GIF pixel is the frame's byte exactly; RGB frames
 * share one palette of 256 colours quantized over the whole animation.
 */
import { applyPalette, GIFEncoder, quantize } from 'gifenc';
import { DiffusionSearchError } from '../errors';
import { VIDEO_FPS } from '../request/defaults';
import { type Canvas, drawTiles, type FrameLayout, requireFrames } from './frames';

export interface GifOptions {
  /** Range of the values, mapped to 0..255 (default [-1, 1]). */
  range?: [number, number];
  /** Frames per second (default VIDEO_FPS). */
  fps?: number;
  /** Each sample pixel as scale×scale GIF pixels (default 4). */
  scale?: number;
}

const GREYS = Array.from({ length: 256 }, (_, v) => [v, v, v]);

/** Clip `clip` of samples [n, T, C, H, W] (an image [n, C, H, W] is one frame) as a looping GIF. */
export function clipGif(data: Float32Array, shape: number[], clip: number, o: GifOptions = {}): Buffer {
  const l = requireFrames(shape, 'an animation');
  if (!(Number.isInteger(clip) && clip >= 0 && clip < l.n))
    throw new DiffusionSearchError(`an animation of clip ${clip}: the samples hold clips 0..${l.n - 1}`, 'ARGUMENT');
  return encode(framesOf(data, l, [clip], 1, o, 0), o.fps);
}

/** Every clip, tiled in a square grid and animated together: frame t shows frame t of each. */
export function gridGif(data: Float32Array, shape: number[], o: GifOptions = {}): Buffer {
  const l = requireFrames(shape, 'an animation');
  const clips = Array.from({ length: l.n }, (_, i) => i);
  return encode(framesOf(data, l, clips, Math.ceil(Math.sqrt(l.n)), o, 1), o.fps);
}

function framesOf(data: Float32Array, l: FrameLayout, clips: number[], cols: number, o: GifOptions, gap: number) {
  const opts = { cols, range: o.range ?? ([-1, 1] as [number, number]), scale: o.scale ?? 4, gap };
  return Array.from({ length: l.T }, (_, t) =>
    drawTiles(
      data,
      l,
      clips.map((clip) => ({ clip, frame: t })),
      opts,
    ),
  );
}

function encode(frames: Canvas[], fps = VIDEO_FPS): Buffer {
  if (!(fps > 0 && Number.isFinite(fps)))
    throw new DiffusionSearchError(`an animation's frame rate must be above 0, got ${fps}`, 'ARGUMENT');
  const gif = GIFEncoder();
  const delay = Math.round(1000 / fps);
  const [index, palette] = frames[0].ch === 1 ? [frames.map((f) => f.px), GREYS] : indexedRgb(frames);
  frames.forEach((f, t) => gif.writeFrame(index[t], f.width, f.height, t === 0 ? { palette, delay } : { delay }));
  gif.finish();
  return Buffer.from(gif.bytes());
}

/** RGB frames as indices into one palette of at most 256 colours. */
function indexedRgb(frames: Canvas[]): [Uint8Array[], number[][]] {
  const rgba = frames.map((f) => {
    const out = new Uint8Array(f.width * f.height * 4).fill(255);
    for (let p = 0; p < f.width * f.height; p++) out.set(f.px.subarray(3 * p, 3 * p + 3), 4 * p);
    return out;
  });
  const all = new Uint8Array(rgba.reduce((s, a) => s + a.length, 0));
  rgba.reduce((at, a) => (all.set(a, at), at + a.length), 0);
  const palette = quantize(all, 256);
  return [rgba.map((a) => applyPalette(a, palette)), palette];
}
