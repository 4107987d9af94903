/**
 * The serve bench's yardstick: the least CPU a denoiser forward costs per row on this machine —
 * two forwards of `rows` side by side, one thread each, as the engine's CPU slots run them at
 * best. A search of B NFE cannot cost less than B × this, so batching-off's CPU seconds per search
 * ÷ (B × floor) bounds the throughput cross-search batching can gain over it on this machine,
 * whatever the scheduler does. Measured in this process (not the server's), before the servers start.
 */
import { loadModule } from '../module';
import { resolveModel } from '../models/shipped';
import { createStream, setNumThreads } from '../stream';
import { tensor, type Tensor } from '../tensor';
import { info } from '../info';
import type { Precision } from '../precision';

export interface ForwardFloor {
  rows: number;
  /** CPU ms (user + system) per row, both forwards together. */
  cpu_ms_per_row: number;
  forwards: number;
}

/** Null when the model's forward is not (x [B, ...sample_shape], sigma [B], class int64 [B]). */
export async function forwardFloor(
  model: string,
  rows = 32,
  seconds = 3,
  precision: Precision = 'fp32',
): Promise<ForwardFloor | null> {
  const module = await loadModule(resolveModel(model).file, { precision });
  const shape = (module.card as { sample_shape?: number[] } | null)?.sample_shape;
  if (!shape) return (module.dispose(), null);
  const before = info().threads.intraOp;
  setNumThreads(1);
  const streams = [createStream(), createStream()];
  const size = shape.reduce((a, b) => a * b, 1);
  const inputs: Tensor[] = [
    tensor(
      Float32Array.from({ length: rows * size }, (_, i) => Math.sin(i * 12.9898) * 0.9),
      [rows, ...shape],
    ),
    tensor(
      Float32Array.from({ length: rows }, (_, i) => (i + 0.5) / rows),
      [rows],
    ),
    tensor(
      BigInt64Array.from({ length: rows }, (_, i) => BigInt(i % 10)),
      [rows],
    ),
  ];
  try {
    const loop = async (k: number, until: number) => {
      let n = 0;
      for (; performance.now() < until; n++) ((await module.call('forward', inputs, streams[k])) as Tensor).dispose();
      return n;
    };
    await loop(0, performance.now() + 300); // the profiling executor's first runs of this shape
    const c0 = process.cpuUsage();
    const end = performance.now() + seconds * 1000;
    const forwards = (await Promise.all([loop(0, end), loop(1, end)])).reduce((a, b) => a + b, 0);
    const c = process.cpuUsage(c0);
    return { rows, cpu_ms_per_row: (c.user + c.system) / 1000 / (forwards * rows), forwards };
  } catch {
    return null;
  } finally {
    inputs.forEach((t) => t.dispose());
    await Promise.all(streams.map((s) => s.close()));
    module.dispose();
    setNumThreads(before);
  }
}
