/** The options of beam search (./beam), for the request checks, the CLI flags and the docs. */
import type { OptionSchema } from '../request/schema';
import type { BeamOptions } from './beam';

export const beamSchema = {
  beams: { type: 'int', min: 1, default: 'fitted to the budget', description: 'beams kept at every step (B)' },
  children: {
    type: 'int',
    min: 1,
    default: 'fitted with B, at least 2',
    description: 'children per beam and step (M)',
  },
  runs: { type: 'int', min: 1, default: 'as many as the budget pays for', description: 'independent runs at most' },
} as const satisfies OptionSchema<BeamOptions>;
