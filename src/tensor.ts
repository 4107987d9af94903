/** Tensors: native handles made from typed arrays. */
import { native, type NativeTensor, type TypedArray } from './native';

export type Tensor = NativeTensor;

/**
 * Copies `data` into a new native tensor of `shape` (default: 1-D). The dtype follows the array:
 * Float32Array → float32, Float64Array → float64, Int32Array → int32, BigInt64Array → int64,
 * Uint8Array → uint8.
 */
export function tensor(data: TypedArray, shape?: readonly number[], options: { device?: string } = {}): Tensor {
  return native().fromArray(data, shape, options);
}

/** Disposes every tensor given (skipping undefined), e.g. in a finally block. */
export function disposeAll(...tensors: Array<Tensor | undefined | null>): void {
  for (const t of tensors) t?.dispose();
}

/** Whether a value (a module's output, an argument) is a native tensor handle. */
export function isTensor(v: unknown): v is Tensor {
  return typeof v === 'object' && v !== null && 'shape' in v && 'dtype' in v && 'dispose' in v;
}
