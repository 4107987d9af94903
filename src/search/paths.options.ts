/** The options of search over paths (./paths), for the request checks, the CLI flags and the docs. */
import type { OptionSchema } from '../request/schema';
import type { PathsOptions } from './paths';

export const pathsSchema = {
  n: {
    type: 'int',
    min: 1,
    flag: 'candidates',
    default: 'fitted to the budget',
    description: 'candidates kept after each round (N)',
  },
  m: {
    type: 'int',
    min: 1,
    flag: 'copies',
    default: 'fitted with N, at least 2',
    description: 'forward-noised copies of each candidate (M)',
  },
  start: { type: 'int', min: 0, default: 'round(steps / 4)', description: 'schedule index where the search starts' },
  forward: { type: 'int', min: 1, default: '1', description: 'Δf: schedule steps each copy is noised back up' },
  backward: { type: 'int', min: 1, default: '2', description: 'Δb: schedule steps each copy is then denoised (> Δf)' },
  score: {
    type: 'enum',
    values: ['rollout', 'x0'],
    flag: 'score-by',
    default: 'x0',
    description: 'score candidates by x̂0 or by a rollout',
  },
  runs: { type: 'int', min: 1, default: 'as many as the budget pays for', description: 'independent searches at most' },
} as const satisfies OptionSchema<PathsOptions>;
