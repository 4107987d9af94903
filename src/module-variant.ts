/**
 * A module's frozen, inference-optimised copy (torch::jit::freeze + optimize_for_inference) for
 * its small calls: on CPU it runs calls of a few rows several times faster than the module as
 * saved (libtorch's convolutions at a few rows take a slow path the copy's oneDNN layouts avoid),
 * and on one thread faster than on several (bench/optimize.js; bench/RESULTS.md), so calls of
 * fewer than `belowRows` rows use it, capped at `threads`. Each method's first such call runs
 * both and compares every element; beyond the tolerance the copy is dropped and the reason kept,
 * so a model the passes change never answers differently.
 */
import type {
  ModuleInput,
  ModuleOutput,
  NativeCallOptions,
  NativeModule,
  NativeStream,
  NativeTensor,
  TypedArray,
} from './native';

export interface ModuleOptimization {
  /** Calls of fewer rows than this use the optimised copy (fp32). */
  below_rows: number;
  /** The most intra-op threads such a call uses (null: the stream's count). */
  threads: number | null;
  /** 'pending' until a small call compared both; 'on' or 'off' after. */
  state: 'pending' | 'on' | 'off';
  /** The methods whose first small call compared both and agreed. */
  checked: string[];
  /** max |optimised − module| ÷ max |module| over those calls' outputs (the largest). */
  max_rel_diff: number | null;
  tolerance: number;
  /** Why the copy is not used ('off'), else null. */
  reason: string | null;
}

/** Runs `method` of a handle, with the copy's call options when it is the copy. */
type Run = (
  handle: NativeModule,
  method: string,
  inputs: ModuleInput[],
  stream?: NativeStream,
  options?: NativeCallOptions,
) => Promise<ModuleOutput>;

const isTensor = (v: unknown): v is NativeTensor =>
  typeof v === 'object' && v !== null && typeof (v as NativeTensor).toArray === 'function';

/** Every tensor of an output (a tensor, or nested arrays of them), in order; bool tensors left out. */
function tensorsOf(v: ModuleOutput): NativeTensor[] {
  if (isTensor(v)) return v.dtype === 'bool' ? [] : [v];
  return Array.isArray(v) ? v.flatMap(tensorsOf) : [];
}

function disposeAll(v: ModuleOutput): void {
  if (isTensor(v)) v.dispose();
  else if (Array.isArray(v)) v.forEach(disposeAll);
}

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
    o: { belowRows: number; tolerance: number; threads: number | null },
    failure: string | null = null,
  ) {
    const state = copy ? 'pending' : 'off';
    this.report = {
      below_rows: o.belowRows,
      threads: o.threads,
      state,
      checked: [],
      max_rel_diff: null,
      tolerance: o.tolerance,
      reason: failure,
    };
  }

  /** Whether a call of these inputs goes to the copy (a method's first one checks it, one check at a time). */
  wants(method: string, inputs: ModuleInput[]): boolean {
    const rows = rowsOf(inputs);
    return this.ready(method, rows) !== null || this.checks(method, rows);
  }

  /** The options of a call to the copy: its thread cap. */
  get copyOptions(): NativeCallOptions | undefined {
    return this.report.threads ? { threads: this.report.threads } : undefined;
  }

  /** Whether a call of `rows` rows of `method` would be that method's check (none running). */
  checks(method: string, rows: number): boolean {
    const small = rows > 0 && rows < this.report.below_rows;
    return small && this.report.state !== 'off' && !this.checking && !this.report.checked.includes(method);
  }

  /** The copy, for a call of `rows` rows of a method already checked; else null. */
  ready(method: string, rows: number): NativeModule | null {
    return rows > 0 && rows < this.report.below_rows && this.report.checked.includes(method) ? this.copy : null;
  }

  async call(method: string, inputs: ModuleInput[], stream: NativeStream | undefined, run: Run): Promise<ModuleOutput> {
    if (this.report.checked.includes(method)) return run(this.copy!, method, inputs, stream, this.copyOptions);
    this.checking = true;
    try {
      return await this.check(method, inputs, stream, run);
    } finally {
      this.checking = false;
    }
  }

  /** Runs the module and the copy on the same inputs; keeps the copy for `method` when they agree. */
  private async check(method: string, inputs: ModuleInput[], stream: NativeStream | undefined, run: Run) {
    const ref = await run(this.module, method, inputs, stream);
    let out: ModuleOutput;
    try {
      out = await run(this.copy!, method, inputs, stream, this.copyOptions);
    } catch (e) {
      return this.off(`the optimised ${method} failed: ${(e as Error).message.split('\n')[0]}`, ref);
    }
    try {
      const [a, b] = [tensorsOf(out), tensorsOf(ref)];
      if (a.length !== b.length || a.length === 0)
        return this.off(`its ${method} returns ${b.length ? 'a different structure' : 'no tensor'} in the copy`, ref);
      let d = 0;
      for (let i = 0; i < a.length; i++)
        d = Math.max(d, maxRelDiff(numbers(await a[i].toArray(stream)), numbers(await b[i].toArray(stream))));
      this.report.max_rel_diff = Math.max(d, this.report.max_rel_diff ?? 0);
      if (!(d <= this.report.tolerance))
        return this.off(`the optimised ${method} differs by ${d.toExponential(2)} (relative), over the tolerance`, ref);
      this.report.state = 'on';
      this.report.checked.push(method);
      return ref;
    } finally {
      disposeAll(out);
    }
  }

  private off(reason: string, ref: ModuleOutput): ModuleOutput {
    this.report.state = 'off';
    this.report.checked = [];
    this.report.reason = reason;
    this.dispose();
    return ref;
  }

  dispose(): void {
    this.copy?.dispose();
    this.copy = null;
  }
}
