/**
 * The current best x̂0 of a search, copied for progress events when the caller asks
 * (SearchConfig.previewGate): the best sample scored, or before any, the best prediction scored.
 * Copies are of rows the search already has: no extra NFE.
 */
import type { NativeStream, NativeTensor } from '../native';
import { slice } from '../tensor-ops';
import { TensorScope } from '../tensor-scope';
import type { SearchPreview } from './types';

export class PreviewSlot {
  private pending: SearchPreview | null = null;

  constructor(
    private readonly gate: (() => boolean) | undefined,
    private readonly valueRange: [number, number] | null,
    private readonly stream?: NativeStream,
  ) {}

  get wanted(): boolean {
    return this.gate !== undefined;
  }

  /** Copies row `i` of `x` (read when called, so the caller may free `x` afterwards). */
  async offer(x: NativeTensor, i: number, reward: number): Promise<void> {
    if (!this.gate) return;
    using s = new TensorScope();
    const row = x.shape[0] === 1 ? x : s.track(await slice(x, i, i + 1, this.stream));
    const data = (await row.toArray(this.stream)) as Float32Array;
    this.pending = { data, shape: x.shape.slice(1), reward, valueRange: this.valueRange };
  }

  /** The copy not yet shown, when the gate lets one through now. */
  take(): SearchPreview | undefined {
    if (!this.pending || !this.gate?.()) return undefined;
    const p = this.pending;
    this.pending = null;
    return p;
  }
}

/** Index of the highest value (the first of ties). */
export function argmax(xs: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < xs.length; i++) if (xs[i] > xs[best]) best = i;
  return best;
}
