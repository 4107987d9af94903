/** The options of EvoSearch (./evosearch), for the request checks, the CLI flags and the docs. */
import type { OptionSchema } from '../request/schema';
import type { EvoSearchOptions } from './evosearch';

export const evoSearchSchema = {
  population: {
    type: 'int-list',
    min: 1,
    default: 'scaled from 42,26,26,26,30 to the budget',
    description: 'population-size schedule K_0..K_G (one more than levels), e.g. 42,26,26,26,30',
  },
  levels: {
    type: 'int-list',
    min: 0,
    default: 'scaled from 0,20,30,40 of 50 steps',
    description: 'evolution schedule: schedule indices of the generations, starting at 0, e.g. 0,8,12,16',
  },
  elites: {
    type: 'int',
    min: 0,
    default: 'min(5, smallest K − 1)',
    description: 'elites kept unchanged each generation',
  },
  tournament: {
    type: 'number',
    min: 0,
    exclusiveMin: true,
    max: 1,
    default: '0.9',
    description: 'fraction of the population in each tournament',
  },
  replacement: { type: 'boolean', default: 'false', description: 'draw tournament entrants with replacement' },
  pool: {
    type: 'enum',
    values: ['all', 'latest'],
    default: 'all (latest when scoring by x0)',
    description: 'tournament pool: every trajectory scored through the level, or the elites and latest children',
  },
  beta: {
    type: 'number',
    min: 0,
    exclusiveMin: true,
    max: 1,
    default: '0.2',
    description: 'initial-noise mutation strength β',
  },
  mutationScale: {
    type: 'number',
    min: 0,
    default: '1',
    description: 'multiplier of the SDE noise std of intermediate-state mutation',
  },
  mutation: {
    type: 'enum',
    values: ['sde', 'additive'],
    default: 'sde',
    description: 'intermediate-state mutation: sde (keeps the noise level) or additive (x + σ_t·ε)',
  },
  scoreBy: {
    type: 'enum',
    values: ['rollout', 'x0'],
    default: 'rollout',
    description: 'score intermediate generations by a rollout to σ = 0 or by x̂0',
  },
} as const satisfies OptionSchema<EvoSearchOptions>;
