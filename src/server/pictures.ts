/**
 * Answers in pictures, by the request's Accept header: `image/gif` the animation (video: every
 * clip tiled, frame by frame; images: one frame of the grid), `image/png` the grid (video: one
 * row per clip). Null when the client asked for neither.
 */
import type http from 'node:http';
import { frameLayout } from '../io/frames';
import { gridGif } from '../io/gif';
import { gridPng } from '../io/png';
import type { GenerateResult } from '../request/types';
import { HttpError } from './errors';

export function pictureAnswer(
  accept: string,
  r: GenerateResult,
): { type: 'image/gif' | 'image/png'; body: Buffer } | null {
  const range = r.valueRange ?? [-1, 1];
  if (accept.includes('image/gif')) {
    if (!frameLayout(r.shape))
      throw new HttpError(406, 'NOT_ACCEPTABLE', `samples [${r.shape}] have no pixels to animate; ask for image/png`);
    return {
      type: 'image/gif',
      body: gridGif(r.samples, r.shape, { range, scale: 4, fps: r.report.fps ?? undefined }),
    };
  }
  if (accept.includes('image/png')) return { type: 'image/png', body: gridPng(r.samples, r.shape, range, 4) };
  return null;
}

/** Writes a picture answer; x-complete and x-shape say what a JSON answer would. */
export function sendPicture(res: http.ServerResponse, p: { type: string; body: Buffer }, r: GenerateResult): void {
  res.writeHead(200, { 'content-type': p.type, 'x-complete': String(r.complete), 'x-shape': r.shape.join(',') });
  res.end(p.body);
}
