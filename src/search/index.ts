/** Every search algorithm, by the name the CLI and the library use. */
import { baseline, type BaselineOptions } from './baseline';
import { bestOfN, type BestOfNOptions } from './best-of-n';
import { zeroOrder, type ZeroOrderOptions } from './zero-order';
import { searchOverPaths, type PathsOptions } from './paths';
import { particleSampling, type ParticleOptions } from './particles';
import { beamSearch, type BeamOptions } from './beam';
import { evoSearch, type EvoSearchOptions } from './evosearch';
import type { SearchConfig, SearchResult } from './types';

export { baseline, bestOfN, zeroOrder, searchOverPaths, particleSampling, beamSearch, evoSearch };
export type { BaselineOptions, BestOfNOptions, ZeroOrderOptions, PathsOptions, ParticleOptions, BeamOptions, EvoSearchOptions };
export type { SearchConfig, SearchResult, SearchProgress, TraceEntry } from './types';

export const algorithms = {
  baseline: { run: baseline, source: 'plain sampling; with scaleSteps the budget buys denoising steps' },
  'best-of-n': { run: bestOfN, source: 'random search over initial noise (Ma et al. 2025)' },
  'zero-order': { run: zeroOrder, source: 'zero-order search around a pivot noise (Ma et al. 2025)' },
  paths: { run: searchOverPaths, source: 'search over paths (Ma et al. 2025)' },
  particles: { run: particleSampling, source: 'particle sampling / FK steering (Singhal et al. 2025)' },
  beam: { run: beamSearch, source: 'beam search / SVDD (Li et al. 2024)' },
  evosearch: { run: evoSearch, source: 'EvoSearch (He et al. 2025)' },
} as const satisfies Record<string, { run: (c: SearchConfig, o?: never) => Promise<SearchResult>; source: string }>;

export type AlgorithmName = keyof typeof algorithms;
