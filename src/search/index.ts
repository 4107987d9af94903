/** Every search algorithm, by the name the CLI and the library use. */
import { baseline, type BaselineOptions } from './baseline';
import { bestOfN, type BestOfNOptions } from './best-of-n';
import { zeroOrder, type ZeroOrderOptions } from './zero-order';
import { searchOverPaths, type PathsOptions } from './paths';
import { particleSampling, type ParticleOptions } from './particles';
import { beamSearch, type BeamOptions } from './beam';
import { evoSearch, type EvoSearchOptions } from './evosearch';
import type { SearchConfig, SearchResult } from './types';
import type { OptionSpec } from '../request/schema';
import { baselineSchema } from './baseline.options';
import { bestOfNSchema } from './best-of-n.options';
import { zeroOrderSchema } from './zero-order.options';
import { pathsSchema } from './paths.options';
import { particlesSchema } from './particles.options';
import { beamSchema } from './beam.options';
import { evoSearchSchema } from './evosearch.options';

export { baseline, bestOfN, zeroOrder, searchOverPaths, particleSampling, beamSearch, evoSearch };
export type {
  BaselineOptions,
  BestOfNOptions,
  ZeroOrderOptions,
  PathsOptions,
  ParticleOptions,
  BeamOptions,
  EvoSearchOptions,
};
export type { SearchConfig, SearchResult, SearchProgress, SearchPreview, TraceEntry } from './types';

export { baselineSchema, bestOfNSchema, zeroOrderSchema, pathsSchema, particlesSchema, beamSchema, evoSearchSchema };

/**
 * Each algorithm with its options' schema (<algorithm>.options.ts): the request checks, CLI flags and
 * docs follow from it.
 */
export const algorithms = {
  baseline: {
    run: baseline,
    options: baselineSchema,
    source: 'plain sampling; with scaleSteps the budget buys denoising steps',
  },
  'best-of-n': { run: bestOfN, options: bestOfNSchema, source: 'random search over initial noise (Ma et al. 2025)' },
  'zero-order': {
    run: zeroOrder,
    options: zeroOrderSchema,
    source: 'zero-order search around a pivot noise (Ma et al. 2025)',
  },
  paths: { run: searchOverPaths, options: pathsSchema, source: 'search over paths (Ma et al. 2025)' },
  particles: {
    run: particleSampling,
    options: particlesSchema,
    source: 'particle sampling / FK steering (Singhal et al. 2025)',
  },
  beam: { run: beamSearch, options: beamSchema, source: 'beam search / SVDD (Li et al. 2024)' },
  evosearch: { run: evoSearch, options: evoSearchSchema, source: 'EvoSearch (He et al. 2025)' },
} as const satisfies Record<
  string,
  { run: (c: SearchConfig, o?: never) => Promise<SearchResult>; options: Record<string, OptionSpec>; source: string }
>;

export type AlgorithmName = keyof typeof algorithms;
