/**
 * Search benchmark: EvoSearch and best-of-N on a shipped model. Splits wall time into time inside
 * the denoiser, inside the verifiers, and the rest — the orchestration overhead of this library
 * (queueing, tensor plumbing, selection, JS) — as a percentage of wall time.
 */
import os from 'node:os';
import { Denoiser } from '../models/denoiser';
import { loadVerifier, resolveModel } from '../models/registry';
import { uniform } from '../schedules';
import { algorithms, type AlgorithmName } from '../search';
import { createStream } from '../stream';
import { info } from '../info';

export interface SearchBenchRow {
  algorithm: string;
  population: number | string;
  budget: number;
  nfe: number;
  wall_seconds: number;
  model_seconds: number;
  verifier_seconds: number;
  overhead_seconds: number;
  overhead_percent: number;
  nfe_per_second: number;
}

export async function benchSearch(
  o: { model?: string; budget?: number; steps?: number; device?: string; cls?: number } = {},
) {
  const model = o.model ?? 'fashion-flow';
  const { file, shipped } = resolveModel(model);
  const denoiser = await Denoiser.load(file, { device: o.device, maxBatch: 64 });
  const verifier = await loadVerifier(shipped?.verifiers ?? ['classifier'], { device: o.device });
  const steps = o.steps ?? 10;
  const budget = o.budget ?? 1000;
  const stream = createStream({ device: o.device });
  const runs: Array<{ algorithm: AlgorithmName; options: Record<string, unknown>; population: number | string }> = [
    { algorithm: 'best-of-n', options: { batch: 16 }, population: 16 },
    { algorithm: 'best-of-n', options: { batch: 64 }, population: 64 },
    { algorithm: 'evosearch', options: {}, population: 'scaled to budget' },
    { algorithm: 'evosearch', options: { population: [32, 16, 16, 16, 16] }, population: '32,16,16,16,16' },
  ];
  // Warm-up: the first forward pays for TorchScript's profiling runs.
  await algorithms['best-of-n'].run({
    denoiser,
    verifier,
    cls: o.cls ?? 0,
    budget: steps * 4,
    sigmas: uniform(steps),
    stream,
  });
  const rows: SearchBenchRow[] = [];
  for (const r of runs) {
    const res = await algorithms[r.algorithm].run(
      { denoiser, verifier, cls: o.cls ?? 0, budget, sigmas: uniform(steps), seed: 1, stream },
      r.options as never,
    );
    res.sample.dispose();
    const overhead = res.wallSeconds - res.modelSeconds - res.verifierSeconds;
    rows.push({
      algorithm: r.algorithm,
      population: r.population,
      budget,
      nfe: res.nfe,
      wall_seconds: res.wallSeconds,
      model_seconds: res.modelSeconds,
      verifier_seconds: res.verifierSeconds,
      overhead_seconds: overhead,
      overhead_percent: (100 * overhead) / res.wallSeconds,
      nfe_per_second: res.nfe / res.wallSeconds,
    });
  }
  await stream.close();
  const i = info();
  return {
    machine: {
      cpu: os.cpus()[0]?.model ?? 'unknown',
      cores: os.cpus().length,
      device: o.device ?? 'cpu',
      threads: i.threads.intraOp,
      torch: i.torch.version,
    },
    model,
    steps,
    rows,
  };
}

export function formatSearchBench(r: Awaited<ReturnType<typeof benchSearch>>): string {
  const m = r.machine;
  const lines = [
    `search on ${r.model}, ${r.steps} Euler steps, ${m.device} (${m.cpu}, ${m.cores} cores, ${m.threads} threads, ` +
      `libtorch ${m.torch})`,
    'algorithm   population         NFE   wall s  model s  verifier s  overhead   NFE/s',
  ];
  for (const x of r.rows)
    lines.push(
      `${x.algorithm.padEnd(11)} ${String(x.population).padEnd(16)} ${String(x.nfe).padStart(5)} ` +
        `${x.wall_seconds.toFixed(2).padStart(8)} ` +
        `${x.model_seconds.toFixed(2).padStart(8)} ${x.verifier_seconds.toFixed(2).padStart(11)} ` +
        `${x.overhead_percent.toFixed(2).padStart(8)}% ${x.nfe_per_second.toFixed(0).padStart(7)}`,
    );
  return lines.join('\n');
}
