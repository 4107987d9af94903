/**
 * Rows of module calls: which calls can share a forward (batchKey), and the row surgery a merged
 * forward needs — inputs cut and joined along dim 0, outputs (a tensor or nested tuples of
 * tensors, rows first) split per caller and a caller's pieces joined back.
 */
import { DiffusionSearchError } from '../errors';
import type { ModuleInput, ModuleOutput, NativeStream, NativeTensor } from '../native';
import { isTensor } from '../tensor';
import { cat, slice } from '../tensor-ops';

type Tensor = NativeTensor;

/**
 * Calls that can merge share a key: the method and each input's dtype, device and shape after dim 0.
 * Null: not batchable.
 */
export function batchKey(method: string, inputs: ModuleInput[]): string | null {
  if (inputs.length === 0 || !inputs.every(isTensor)) return null;
  const ts = inputs as Tensor[];
  const n = ts[0].shape[0];
  if (n === undefined || n < 1 || ts.some((t) => t.shape.length === 0 || t.shape[0] !== n)) return null;
  return `${method}(${ts.map((t) => `${t.dtype}@${t.device}[${t.shape.slice(1)}]`).join(';')})`;
}

/** Rows of a call that is not batched (0 without tensor inputs: not a model evaluation). */
export const rowsOf = (inputs: ModuleInput[]) =>
  isTensor(inputs[0]) && inputs[0].shape.length ? inputs[0].shape[0] : 0;

export function checkSplittable(out: ModuleOutput, rows: number, label: string, method: string): void {
  const ok = (v: ModuleOutput): boolean =>
    isTensor(v) ? v.shape.length > 0 && v.shape[0] === rows : Array.isArray(v) ? v.every(ok) : true;
  if (!ok(out))
    throw new DiffusionSearchError(
      `'${label}' ${method}: an output does not have the ${rows} rows of its inputs; it cannot be batched`,
      'SHAPE',
    );
}

/** Rows [start, end) of every tensor in an output. */
export async function split(
  out: ModuleOutput,
  start: number,
  end: number,
  stream: NativeStream,
): Promise<ModuleOutput> {
  if (isTensor(out)) return slice(out, start, end, stream);
  if (!Array.isArray(out)) return out;
  const parts: ModuleOutput[] = [];
  try {
    for (const v of out) parts.push(await split(v, start, end, stream));
  } catch (e) {
    parts.forEach(disposeOutput);
    throw e;
  }
  return parts;
}

/** Outputs of consecutive row ranges joined into one (same structure; non-tensors from the first). */
export async function join(parts: ModuleOutput[], stream: NativeStream): Promise<ModuleOutput> {
  const first = parts[0];
  if (isTensor(first)) return cat(parts as Tensor[], stream);
  if (!Array.isArray(first)) return first;
  const out: ModuleOutput[] = [];
  try {
    for (let i = 0; i < first.length; i++)
      out.push(
        await join(
          parts.map((p) => (p as ModuleOutput[])[i]),
          stream,
        ),
      );
  } catch (e) {
    out.forEach(disposeOutput);
    throw e;
  }
  return out;
}

export function disposeOutput(v: ModuleOutput): void {
  if (isTensor(v)) v.dispose();
  else if (Array.isArray(v)) v.forEach(disposeOutput);
}

/**
 * Requests within this factor of each other's work (total NFE) count as one size: they share
 * forwards (./batcher); one this many times smaller than all running gets the express slot and
 * express admission (./admission).
 */
export const SIZE_CLASS = 4;
