/** Batch plumbing on native tensors (all asynchronous, on a stream). */
import { native, type NativeStream, type NativeTensor } from './native';
import { tensor } from './tensor';

type Tensor = NativeTensor;

interface NativeTensorOps {
  cat(ts: Tensor[], stream?: NativeStream): Promise<Tensor>;
  gather(t: Tensor, idx: Tensor, stream?: NativeStream): Promise<Tensor>;
  slice(t: Tensor, start: number, end: number, stream?: NativeStream): Promise<Tensor>;
  axpby(x: Tensor, y: Tensor, a: Tensor, b: Tensor, stream?: NativeStream): Promise<Tensor>;
}
const t = (): NativeTensorOps => native().tensorOps as NativeTensorOps;

/** Rows of several tensors, one after the other. */
export const cat = (ts: Tensor[], stream?: NativeStream) => t().cat(ts, stream);

/** The rows `idx` of `x` (repeats allowed). */
export async function gather(x: Tensor, idx: ArrayLike<number>, stream?: NativeStream): Promise<Tensor> {
  const i = tensor(
    BigInt64Array.from(Array.from(idx), (v) => BigInt(v)),
    [idx.length],
    { device: x.device },
  );
  try {
    return await t().gather(x, i, stream);
  } finally {
    i.dispose();
  }
}

/** A copy of rows [start, end). */
export const slice = (x: Tensor, start: number, end: number, stream?: NativeStream) => t().slice(x, start, end, stream);

/** a[r]·x[r] + b[r]·y[r] for every row r. */
export async function axpby(
  x: Tensor,
  y: Tensor,
  a: ArrayLike<number>,
  b: ArrayLike<number>,
  stream?: NativeStream,
): Promise<Tensor> {
  const ta = tensor(Float32Array.from(a), [a.length], { device: x.device });
  const tb = tensor(Float32Array.from(b), [b.length], { device: x.device });
  try {
    return await t().axpby(x, y, ta, tb, stream);
  } finally {
    ta.dispose();
    tb.dispose();
  }
}

/** int64 class ids as a tensor. */
export function classTensor(cond: ArrayLike<number>, device = 'cpu'): Tensor {
  return tensor(
    BigInt64Array.from(Array.from(cond), (v) => BigInt(v)),
    [cond.length],
    { device },
  );
}

export function floatTensor(values: ArrayLike<number>, device = 'cpu'): Tensor {
  return tensor(Float32Array.from(values), [values.length], { device });
}
