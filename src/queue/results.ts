/**
 * Where a job's result goes. Small results — report, samples and latents under `inlineMaxBytes`
 * (default 1 MiB) — are the job's return value, in Redis: one round trip to read, nothing to
 * clean up but the job itself, and they survive with the queue (AOF). Larger ones go to
 * `<resultsDir>/<queue>/<job id>/` (report.json, samples.npy, latents.npy; a shared file system or
 * a mounted object store) and Redis keeps the report and the path: Redis holds everything in
 * memory, rewrites it into its AOF, and serves one command at a time, so megabytes of samples
 * per job would crowd out the queue itself. Without a resultsDir everything is inline, up to
 * Redis' 512 MB string limit (keep n × sample size modest then).
 */
import fs from 'node:fs';
import path from 'node:path';
import { DiffusionSearchError } from '../errors';
import type { GenerateReport } from '../request/report';
import type { GenerateResult } from '../request/types';
import { encodeNpy, readNpy } from '../io/npy';

/** What the worker returns for a job (BullMQ stores it as the job's return value). */
export interface StoredResult {
  /** 2 added dtype; 1 (stored before) has none and may say valueRange: the reader takes both. */
  v: 1 | 2;
  where: 'redis' | 'dir';
  /** dir: the job's directory (report.json, samples.npy, latents.npy). */
  path: string | null;
  bytes: number;
  report: GenerateReport;
  /** Of samples and latents, as serve's answer says it. */
  dtype: 'float32';
  shape: number[];
  rewards: number[];
  complete: boolean;
  prompts: string[] | null;
  /** The same name as in the report and serve's answer. */
  value_range: [number, number] | null;
  /** redis: base64 float32 little-endian. */
  samples: string | null;
  latents: { shape: number[]; data: string | null } | null;
}

/** A finished job as the client reads it. */
export interface QueueResult {
  id: string;
  report: GenerateReport;
  /** null when stored in a directory this process cannot read (see `path`). */
  samples: Float32Array | null;
  shape: number[];
  latents: { data: Float32Array | null; shape: number[] } | null;
  rewards: number[];
  prompts: string[] | null;
  valueRange: [number, number] | null;
  complete: boolean;
  stored: 'redis' | 'dir';
  path: string | null;
}

export const DEFAULT_INLINE_MAX_BYTES = 1024 * 1024;

const b64 = (a: Float32Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength).toString('base64');
const fromB64 = (s: string) => {
  const b = Buffer.from(s, 'base64');
  const out = new Float32Array(b.length / 4);
  Buffer.from(out.buffer).set(b);
  return out;
};

/** A file-system-safe directory name for a job id (ids may be client keys). */
export const jobDirName = (id: string) => encodeURIComponent(id).replace(/\./g, '%2E');

export function storeResult(
  r: GenerateResult,
  o: { id: string; queue: string; resultsDir?: string; inlineMaxBytes?: number },
): StoredResult {
  const bytes = r.samples.byteLength + (r.latents?.data.byteLength ?? 0);
  const base = {
    v: 2 as const,
    bytes,
    report: r.report,
    dtype: 'float32' as const,
    shape: r.shape,
    rewards: r.rewards,
    complete: r.complete,
    prompts: r.prompts,
    value_range: r.valueRange,
  };
  if (!o.resultsDir || bytes <= (o.inlineMaxBytes ?? DEFAULT_INLINE_MAX_BYTES)) {
    return {
      ...base,
      where: 'redis',
      path: null,
      samples: b64(r.samples),
      latents: r.latents ? { shape: r.latents.shape, data: b64(r.latents.data) } : null,
    };
  }
  const dir = path.join(o.resultsDir, jobDirName(o.queue), jobDirName(o.id));
  // Written next to the target and renamed: a retried job replaces a whole directory, never half of one.
  const tmp = `${dir}.tmp-${process.pid}-${Date.now()}`;
  try {
    fs.mkdirSync(tmp, { recursive: true });
    fs.writeFileSync(path.join(tmp, 'samples.npy'), encodeNpy(r.samples, r.shape));
    if (r.latents) fs.writeFileSync(path.join(tmp, 'latents.npy'), encodeNpy(r.latents.data, r.latents.shape));
    fs.writeFileSync(path.join(tmp, 'report.json'), JSON.stringify(r.report, null, 2) + '\n');
    fs.rmSync(dir, { recursive: true, force: true });
    fs.renameSync(tmp, dir);
  } catch (e) {
    fs.rmSync(tmp, { recursive: true, force: true });
    throw new DiffusionSearchError(`cannot write the result to '${dir}': ${(e as Error).message}`, 'NATIVE', {
      cause: e,
    });
  }
  return {
    ...base,
    where: 'dir',
    path: dir,
    samples: null,
    latents: r.latents ? { shape: r.latents.shape, data: null } : null,
  };
}

export function loadResult(id: string, s: StoredResult): QueueResult {
  let samples: Float32Array | null = null;
  let latents: QueueResult['latents'] = null;
  if (s.where === 'redis') {
    samples = s.samples === null ? null : fromB64(s.samples);
    latents = s.latents
      ? { shape: s.latents.shape, data: s.latents.data === null ? null : fromB64(s.latents.data) }
      : null;
  } else {
    try {
      samples = readNpy(path.join(s.path!, 'samples.npy')).data;
    } catch {
      samples = null; // another machine's directory: the report and path are still here
    }
    if (s.latents) {
      let data: Float32Array | null = null;
      try {
        data = readNpy(path.join(s.path!, 'latents.npy')).data;
      } catch {
        data = null;
      }
      latents = { shape: s.latents.shape, data };
    }
  }
  return {
    id,
    report: s.report,
    samples,
    shape: s.shape,
    latents,
    rewards: s.rewards,
    prompts: s.prompts,
    valueRange: s.value_range ?? (s as { valueRange?: [number, number] | null }).valueRange ?? null,
    complete: s.complete,
    stored: s.where,
    path: s.path,
  };
}
