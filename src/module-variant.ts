/**
 * A module's frozen, inference-optimised copy (torch::jit::freeze + optimize_for_inference) for
 * its small forwards: on CPU it runs calls of a few rows faster than the module as saved, and
 * larger calls no faster or slower (bench/optimize.js; bench/RESULTS.md), so only forwards of
 * fewer than `belowRows` rows use it. The first such call runs both and compares
 * every element; beyond the tolerance the copy is dropped and the reason kept, so a model the
 * passes change never answers differently.
 */
import type { ModuleInput, ModuleOutput, NativeModule, NativeStream, NativeTensor, TypedArray } from './native';

export interface ModuleOptimization {
  /** Forwards of fewer rows than this use the optimised copy (fp32). */
  below_rows: number;
  /** 'pending' until the first such forward compared both; 'on' or 'off' after. */
  state: 'pending' | 'on' | 'off';
  /** max |optimised − module| ÷ max |module| over that forward's output. */
  max_rel_diff: number | null;
  tolerance: number;
  /** Why the copy is not used ('off'), else null. */
  reason: string | null;
}

type Call = (handle: NativeModule, inputs: ModuleInput[], stream?: NativeStream) => Promise<ModuleOutput>;

const isTensor = (v: unknown): v is NativeTensor =>
  typeof v === 'object' && v !== null && typeof (v as NativeTensor).toArray === 'function';

/** Rows of a call: dim 0 of its first tensor input (0 when it has none). */
export function rowsOf(inputs: ModuleInput[]): number {
  const t = inputs.find(isTensor);
  return t && t.shape.length > 0 ? t.shape[0] : 0;
}

const numbers = (x: TypedArray): ArrayLike<number> =>
  x instanceof BigInt64Array || x instanceof BigUint64Array ? Float64Array.from(x, Number) : x;

/** max |a − b| ÷ max |b|, every element (Infinity when a value is not finite in one only). */
export function maxRelDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let diff = 0,
    scale = 0;
  for (let i = 0; i < b.length; i++) {
    const d = Math.abs(a[i] - b[i]);
    if (Number.isNaN(d) && !(Number.isNaN(a[i]) && Number.isNaN(b[i]))) return Infinity;
    if (d > diff) diff = d;
    if (Math.abs(b[i]) > scale) scale = Math.abs(b[i]);
  }
  return scale > 0 ? diff / scale : diff;
}

export class SmallCallVariant {
  readonly report: ModuleOptimization;
  private checking = false;

  /** `copy` null: none could be made, for the reason `failure`. */
  constructor(
    private readonly module: NativeModule,
    private copy: NativeModule | null,
    belowRows: number,
    tolerance: number,
    failure: string | null = null,
  ) {
    const state = copy ? 'pending' : 'off';
    this.report = { below_rows: belowRows, state, max_rel_diff: null, tolerance, reason: failure };
  }

  /** Whether a forward of these inputs goes to the copy (while pending, the first one checks it). */
  wants(method: string, inputs: ModuleInput[]): boolean {
    if (this.report.state === 'off' || method !== 'forward') return false;
    const rows = rowsOf(inputs);
    return rows > 0 && rows < this.report.below_rows && (this.report.state === 'on' || !this.checking);
  }

  async call(inputs: ModuleInput[], stream: NativeStream | undefined, run: Call): Promise<ModuleOutput> {
    if (this.report.state === 'on') return run(this.copy!, inputs, stream);
    this.checking = true;
    try {
      return await this.check(inputs, stream, run);
    } finally {
      this.checking = false;
    }
  }

  /** Runs the module and the copy on the same inputs; keeps the copy when they agree. */
  private async check(inputs: ModuleInput[], stream: NativeStream | undefined, run: Call): Promise<ModuleOutput> {
    const ref = await run(this.module, inputs, stream);
    let out: ModuleOutput;
    try {
      out = await run(this.copy!, inputs, stream);
    } catch (e) {
      return this.off(`the optimised forward failed: ${(e as Error).message.split('\n')[0]}`, ref);
    }
    try {
      if (!isTensor(ref) || !isTensor(out)) return this.off('its forward returns no single tensor', ref);
      const d = maxRelDiff(numbers(await out.toArray(stream)), numbers(await ref.toArray(stream)));
      this.report.max_rel_diff = d;
      if (!(d <= this.report.tolerance))
        return this.off(`the optimised forward differs by ${d.toExponential(2)} (relative), over the tolerance`, ref);
      this.report.state = 'on';
      return ref;
    } finally {
      if (isTensor(out)) out.dispose();
    }
  }

  private off(reason: string, ref: ModuleOutput): ModuleOutput {
    this.report.state = 'off';
    this.report.reason = reason;
    this.dispose();
    return ref;
  }

  dispose(): void {
    this.copy?.dispose();
    this.copy = null;
  }
}
