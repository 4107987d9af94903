/**
 * Moving Fashion-MNIST clips drawn here, independently of scripts/train/video/data.py: a test-split
 * garment shrunk to 16×16 (area average over adaptive-pooling bins) crossing a black 32×32 frame over
 * 8 frames in one direction. Layout [n, 8, 1, 32, 32], values in [-1, 1].
 */
import { loadTestSplit } from './fmnist';

export const T = 8;
export const SIZE = 32;
const G = 16;
export const DIRECTIONS = ['left', 'right', 'up', 'down'] as const;
export const CLASSES = [
  't-shirt/top',
  'trouser',
  'pullover',
  'dress',
  'coat',
  'sandal',
  'shirt',
  'sneaker',
  'bag',
  'ankle boot',
];

/** The 28×28 image at `offset` of `images`, area-averaged to 16×16. */
export function shrink(images: Float32Array, offset: number): Float32Array {
  const out = new Float32Array(G * G);
  const bin = (i: number) => [Math.floor((i * 28) / G), Math.ceil(((i + 1) * 28) / G)];
  for (let r = 0; r < G; r++)
    for (let c = 0; c < G; c++) {
      const [r0, r1] = bin(r);
      const [c0, c1] = bin(c);
      let s = 0;
      for (let y = r0; y < r1; y++) for (let x = c0; x < c1; x++) s += images[offset + y * 28 + x];
      out[r * G + c] = s / ((r1 - r0) * (c1 - c0));
    }
  return out;
}

export interface Clip {
  cls: number;
  direction: number;
  /** Top-left corner of the garment in each frame. */
  rows: number[];
  cols: number[];
  garment: Float32Array;
}

/** A random path for one direction: travel 10–16 px, constant speed, whole pixels. */
export function path(direction: number, rand: () => number): { rows: number[]; cols: number[] } {
  const room = SIZE - G;
  const d = 10 + Math.floor(rand() * (room - 9));
  const start = Math.floor(rand() * (room - d + 1));
  const across = Math.floor(rand() * (room + 1));
  const along = Array.from({ length: T }, (_, t) => Math.round(start + (d * t) / (T - 1)));
  const signed = direction === 0 || direction === 2 ? along.map((a) => room - a) : along;
  const fixed = new Array<number>(T).fill(across);
  return direction >= 2 ? { rows: signed, cols: fixed } : { rows: fixed, cols: signed };
}

/** n random clips of distinct test-split garments. */
export function randomClips(n: number, rand: () => number): Clip[] {
  const { images, labels } = loadTestSplit(2000);
  return Array.from({ length: n }, () => {
    const i = Math.floor(rand() * labels.length);
    const direction = Math.floor(rand() * 4);
    return { cls: labels[i], direction, ...path(direction, rand), garment: shrink(images, i * 784) };
  });
}

/** Pixels [n, T, 1, 32, 32] of the clips; `garmentAt(clip, t)` may swap the garment per frame. */
export function render(clips: Clip[], garmentAt = (c: Clip, _t: number) => c.garment): Float32Array {
  const frame = SIZE * SIZE;
  const out = new Float32Array(clips.length * T * frame).fill(-1);
  clips.forEach((c, i) => {
    for (let t = 0; t < T; t++) {
      const g = garmentAt(c, t);
      const base = (i * T + t) * frame;
      for (let y = 0; y < G; y++)
        for (let x = 0; x < G; x++) out[base + (c.rows[t] + y) * SIZE + c.cols[t] + x] = g[y * G + x];
    }
  });
  return out;
}

export const promptOf = (cls: number, direction: number) => `a ${CLASSES[cls]} moving ${DIRECTIONS[direction]}`;
