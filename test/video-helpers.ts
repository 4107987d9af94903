/** Readers for the video tests: GIFs by omggif (an independent decoder) and the grid PNG by zlib. */
import zlib from 'node:zlib';
import { GifReader } from 'omggif';

/** A frame's byte as the writers must draw it: range to 0..255, rounded, clamped (NaN → 0). */
export function byteOf(v: number, lo = -1, hi = 1): number {
  const u = Math.round((255 * (v - lo)) / (hi - lo));
  return Number.isFinite(u) ? Math.max(0, Math.min(255, u)) : 0;
}

/** Every frame of a GIF as RGBA, its delay (1/100 s) and loop count. */
export function readGif(buf: Uint8Array): {
  width: number;
  height: number;
  loops: number | null;
  frames: Uint8Array[];
  delays: number[];
} {
  const g = new GifReader(buf);
  const frames: Uint8Array[] = [];
  const delays: number[] = [];
  for (let i = 0; i < g.numFrames(); i++) {
    const px = new Uint8Array(g.width * g.height * 4);
    g.decodeAndBlitFrameRGBA(i, px);
    frames.push(px);
    delays.push(g.frameInfo(i).delay);
  }
  return { width: g.width, height: g.height, loops: g.loopCount(), frames, delays };
}

/** An 8-bit grey or RGB PNG with filter 0 on every row (what the grid writer makes). */
export function readPng(buf: Buffer): { width: number; height: number; ch: number; px: Uint8Array } {
  const width = buf.readUInt32BE(16),
    height = buf.readUInt32BE(20);
  const ch = buf[25] === 2 ? 3 : 1;
  const idat: Buffer[] = [];
  for (let at = 8; at < buf.length; ) {
    const len = buf.readUInt32BE(at);
    if (buf.toString('latin1', at + 4, at + 8) === 'IDAT') idat.push(buf.subarray(at + 8, at + 8 + len));
    at += 12 + len;
  }
  const raw = zlib.inflateSync(Buffer.concat(idat));
  const px = new Uint8Array(width * height * ch);
  for (let y = 0; y < height; y++) {
    if (raw[y * (width * ch + 1)] !== 0) throw new Error('the test reader handles filter 0 only');
    px.set(raw.subarray(y * (width * ch + 1) + 1, (y + 1) * (width * ch + 1)), y * width * ch);
  }
  return { width, height, ch, px };
}
