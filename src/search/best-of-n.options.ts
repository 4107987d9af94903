/** The options of best-of-N (./best-of-n), for the request checks, the CLI flags and the docs. */
import type { OptionSchema } from '../request/schema';
import type { BestOfNOptions } from './best-of-n';

export const bestOfNSchema = {
  batch: { type: 'int', min: 1, default: '4096', description: 'candidates scored per round' },
} as const satisfies OptionSchema<BestOfNOptions>;
