/**
 * The files of a result in a directory, each written atomically: samples.npy, latents.npy (a
 * latent model), grid.png (video: one row per clip) and, for video, an animated clip-<row>.gif
 * per row. Returns their names for report.json's "files". A GenerateResult (or a queue's result
 * with its samples) is a SampleSet.
 */
import fs from 'node:fs';
import path from 'node:path';
import { DiffusionSearchError } from '../errors';
import type { ReportFiles } from '../request/report';
import { writeFileAtomic } from './atomic';
import { isVideoShape } from './frames';
import { clipGif } from './gif';
import { writeNpy } from './npy';
import { gridPng } from './png';

export interface SampleSet {
  samples: Float32Array;
  shape: number[];
  latents: { data: Float32Array; shape: number[] } | null;
  valueRange: [number, number] | null;
  /** Frames per second of video (default: report.fps, the card's). */
  fps?: number | null;
  report?: { fps?: number | null };
}

/** Grid and animations are drawn 4×4 screen pixels per sample pixel. */
const SCALE = 4;

export function writeSampleFiles(out: string, r: SampleSet): ReportFiles {
  try {
    fs.mkdirSync(out, { recursive: true });
  } catch (e) {
    throw new DiffusionSearchError(`cannot create '${out}': ${(e as Error).message}`, 'ARGUMENT', { cause: e });
  }
  const range = r.valueRange ?? [-1, 1];
  writeNpy(path.join(out, 'samples.npy'), r.samples, r.shape);
  if (r.latents) writeNpy(path.join(out, 'latents.npy'), r.latents.data, r.latents.shape);
  writeFileAtomic(path.join(out, 'grid.png'), gridPng(r.samples, r.shape, range, SCALE));
  const animations = isVideoShape(r.shape) ? Array.from({ length: r.shape[0] }, (_, i) => `clip-${i}.gif`) : [];
  const opts = { range, scale: SCALE, fps: r.fps ?? r.report?.fps ?? undefined };
  animations.forEach((name, i) => writeFileAtomic(path.join(out, name), clipGif(r.samples, r.shape, i, opts)));
  return { samples: 'samples.npy', latents: r.latents ? 'latents.npy' : null, grid: 'grid.png', animations };
}
