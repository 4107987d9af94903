/**
 * Kernel micro-benchmark: each op against the libtorch eager composition of the same maths
 * (vs_torch = torch time / ours) and against a plain copy of the same bytes (vs_copy = our GB/s /
 * copy GB/s), all measured in the same run on the same device. fill_normal (the noise alone, the
 * ceiling of every op that draws it) writes only, so its baseline is a fill of the same bytes.
 */
import os from 'node:os';
import { native } from '../native';
import { info } from '../info';

export interface KernelBenchRow {
  op: string;
  elements: number;
  bytes: number;
  oursNs: number;
  torchNs: number;
  copyNs: number;
}

export interface KernelBenchEntry {
  gbps: number;
  torch_gbps: number;
  copy_gbps: number;
  vs_torch: number;
  vs_copy: number;
}

export interface KernelBenchReport {
  machine: { cpu: string; cores: number; device: string; threads: number; torch: string };
  /** results[op][elements] */
  results: Record<string, Record<string, KernelBenchEntry>>;
}

export const DEFAULT_SIZES = [2 ** 16, 2 ** 18, 2 ** 20, 2 ** 22, 2 ** 24];

export async function benchKernels(
  options: { sizes?: number[]; device?: string; minSeconds?: number } = {},
): Promise<KernelBenchReport> {
  const n = native() as unknown as {
    benchKernels(o: { sizes: number[]; device: string; minSeconds: number }): Promise<KernelBenchRow[]>;
  };
  const device = options.device ?? 'cpu';
  const rows = await n.benchKernels({
    sizes: options.sizes ?? DEFAULT_SIZES,
    device,
    minSeconds: options.minSeconds ?? 0.3,
  });
  const results: KernelBenchReport['results'] = {};
  for (const r of rows) {
    const gbps = r.bytes / r.oursNs;
    const copyGbps = r.bytes / r.copyNs;
    (results[r.op] ??= {})[String(r.elements)] = {
      gbps,
      torch_gbps: r.bytes / r.torchNs,
      copy_gbps: copyGbps,
      vs_torch: r.torchNs / r.oursNs,
      vs_copy: gbps / copyGbps,
    };
  }
  const i = info();
  return {
    machine: {
      cpu: os.cpus()[0]?.model ?? 'unknown',
      cores: os.cpus().length,
      device,
      threads: i.threads.intraOp,
      torch: i.torch.version,
    },
    results,
  };
}

export function formatKernelBench(report: KernelBenchReport): string {
  const m = report.machine;
  const lines = [
    `kernels on ${m.device} (${m.cpu}, ${m.cores} cores, ${m.threads} threads, libtorch ${m.torch})`,
    'op                 elements     ours GB/s  torch GB/s  copy GB/s  vs_torch  vs_copy',
  ];
  for (const [op, bySize] of Object.entries(report.results))
    for (const [size, e] of Object.entries(bySize))
      lines.push(
        `${op.padEnd(18)} ${size.padStart(9)} ${e.gbps.toFixed(2).padStart(12)} ` +
          `${e.torch_gbps.toFixed(2).padStart(11)} ` +
          `${e.copy_gbps.toFixed(2).padStart(10)} ${(e.vs_torch.toFixed(2) + 'x').padStart(9)} ` +
          `${(100 * e.vs_copy).toFixed(0).padStart(7)}%`,
      );
  if (report.results.fill_normal) lines.push('(fill_normal writes only: its "copy" is a fill of the same bytes)');
  return lines.join('\n');
}
