/** The NFE budget of a search: counted exactly, never exceeded, with the time inside the model. */
import { DiffusionSearchError } from '../errors';
import type { NfeMeter } from '../models/denoiser';

/** Most NFE one search may be given (2^31). */
export const MAX_BUDGET = 2 ** 31;

export class Budget implements NfeMeter {
  used = 0;
  modelSeconds = 0;
  verifierSeconds = 0;

  constructor(
    readonly total: number,
    readonly signal?: AbortSignal,
  ) {
    // The cap: searches list their candidates in JS arrays (at most 2^32 − 1 long); a budget of 1e20
    // made best-of-n ask for an array that long (RangeError, an internal error instead of BUDGET).
    if (!(Number.isInteger(total) && total > 0 && total <= MAX_BUDGET))
      throw new DiffusionSearchError(
        `the budget must be a positive integer NFE up to ${MAX_BUDGET}, got ${total}`,
        'BUDGET',
      );
  }

  get remaining(): number {
    return this.total - this.used;
  }

  canAfford(nfe: number): boolean {
    return this.used + nfe <= this.total;
  }

  /** Algorithms plan within the budget; reaching past it is a bug, reported before the model runs. */
  charge(nfe: number): void {
    if (!this.canAfford(nfe))
      throw new DiffusionSearchError(
        `internal: ${nfe} more NFE would exceed the budget (${this.used}/${this.total} used)`,
        'BUDGET',
      );
    this.used += nfe;
  }

  addModelTime(seconds: number): void {
    this.modelSeconds += seconds;
  }
}
