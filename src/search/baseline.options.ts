/** The options of the baseline (./baseline), for the request checks, the CLI flags and the docs. */
import type { OptionSchema } from '../request/schema';
import type { BaselineOptions } from './baseline';

export const baselineSchema = {
  scaleSteps: {
    type: 'boolean',
    default: 'false',
    description: 'spend the whole budget on denoising steps of a uniform schedule',
  },
} as const satisfies OptionSchema<BaselineOptions>;
