/** The options of zero-order search (./zero-order), for the request checks, the CLI flags and the docs. */
import type { OptionSchema } from '../request/schema';
import type { ZeroOrderOptions } from './zero-order';

export const zeroOrderSchema = {
  n: { type: 'int', min: 1, flag: 'neighbours', default: '4', description: 'neighbours per round (N)' },
  tau: {
    type: 'number',
    min: -1,
    max: 1,
    exclusiveMin: true,
    exclusiveMax: true,
    default: '0.95',
    description: 'cosine between the pivot and each neighbour',
  },
  rounds: { type: 'int', min: 1, default: 'as many as the budget pays for', description: 'rounds at most' },
} as const satisfies OptionSchema<ZeroOrderOptions>;
