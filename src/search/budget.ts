/** The NFE budget of a search: counted exactly, never exceeded, with the time inside the model. */
import { DiffusionSearchError } from '../errors';
import type { NfeMeter } from '../models/denoiser';

export class Budget implements NfeMeter {
  used = 0;
  modelSeconds = 0;
  verifierSeconds = 0;

  constructor(readonly total: number) {
    if (!(Number.isInteger(total) && total > 0)) throw new DiffusionSearchError(`the budget must be a positive integer NFE, got ${total}`, 'BUDGET');
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
      throw new DiffusionSearchError(`internal: ${nfe} more NFE would exceed the budget (${this.used}/${this.total} used)`, 'BUDGET');
    this.used += nfe;
  }

  addModelTime(seconds: number): void {
    this.modelSeconds += seconds;
  }
}
