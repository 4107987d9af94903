/** A grayscale or RGB PNG grid of samples, upscaled so a person can see them. */
import zlib from 'node:zlib';
import { drawTiles, isVideoShape, requireFrames } from './frames';

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

function crc32(buf: Buffer): number {
  let c = 0xffffffff;
  for (const b of buf) c = CRC_TABLE[(c ^ b) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function chunk(type: string, data: Buffer): Buffer {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(data.length);
  const td = Buffer.concat([Buffer.from(type, 'latin1'), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(td));
  return Buffer.concat([len, td, crc]);
}

/** Encodes 8-bit pixels (channels 1 or 3, row-major HWC) as a PNG. */
export function encodePng(pixels: Uint8Array, width: number, height: number, channels: 1 | 3): Buffer {
  const stride = width * channels;
  const raw = Buffer.alloc((stride + 1) * height);
  for (let y = 0; y < height; y++) {
    raw[y * (stride + 1)] = 0; // filter: none
    raw.set(pixels.subarray(y * stride, (y + 1) * stride), y * (stride + 1) + 1);
  }
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 8;
  ihdr[9] = channels === 1 ? 0 : 2;
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr),
    chunk('IDAT', zlib.deflateSync(raw)),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}

/**
 * Lays out n samples in a grid, maps `range` to 0..255, and scales each pixel to `scale`×`scale`
 * with a 1-pixel gap: images [n, C, H, W] (C = 3 in colour, else channel 0 in grey) in a square
 * grid, video [n, T, C, H, W] one row per clip with its frames left to right. 2-D points ([n, 2])
 * are drawn as a scatter plot.
 */
export function gridPng(data: Float32Array, shape: number[], range: [number, number] = [-1, 1], scale = 4): Buffer {
  if (shape.length === 2) return scatterPng(data, shape[0]);
  const l = requireFrames(shape, 'the grid');
  const tiles = Array.from({ length: l.n * l.T }, (_, k) => ({ clip: Math.floor(k / l.T), frame: k % l.T }));
  const cols = isVideoShape(shape) ? l.T : Math.ceil(Math.sqrt(l.n));
  const c = drawTiles(data, l, tiles, { cols, range, scale, gap: 1 });
  return encodePng(c.px, c.width, c.height, c.ch);
}

function scatterPng(data: Float32Array, n: number, size = 400, extent = 4.5): Buffer {
  const px = new Uint8Array(size * size).fill(255);
  const toPx = (v: number) => Math.round(((v + extent) / (2 * extent)) * (size - 1));
  for (let i = 0; i < size; i++) px[toPx(0) * size + i] = px[i * size + toPx(0)] = 200; // axes
  for (let i = 0; i < n; i++) {
    const cx = toPx(data[2 * i]),
      cy = size - 1 - toPx(data[2 * i + 1]);
    for (let dy = -2; dy <= 2; dy++)
      for (let dx = -2; dx <= 2; dx++) {
        const x = cx + dx,
          y = cy + dy;
        if (x >= 0 && y >= 0 && x < size && y < size && dx * dx + dy * dy <= 5) px[y * size + x] = 0;
      }
  }
  return encodePng(px, size, size, 1);
}
