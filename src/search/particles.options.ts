/** The options of particle sampling (./particles), for the request checks, the CLI flags and the docs. */
import type { OptionSchema } from '../request/schema';
import type { ParticleOptions } from './particles';

export const particlesSchema = {
  particles: { type: 'int', min: 1, default: 'fitted to the budget, at least 2', description: 'number of particles K' },
  potential: { type: 'enum', values: ['max', 'add', 'diff'], default: 'max', description: 'the potential' },
  lambda: {
    type: 'number',
    min: 0,
    default: '10',
    description: 'λ, inverse temperature of the potential (0: no steering)',
  },
  interval: { type: 'int', min: 1, flag: 'resample-every', default: '1', description: 'steps between resamplings' },
  threshold: {
    type: 'number',
    min: 0,
    max: 1,
    flag: 'ess-threshold',
    default: '1',
    description: 'resample when ESS < threshold·K (0: never)',
  },
  resampling: {
    type: 'enum',
    values: ['systematic', 'multinomial'],
    default: 'systematic',
    description: 'resampling scheme',
  },
  runs: { type: 'int', min: 1, default: 'as many as the budget pays for', description: 'independent runs at most' },
} as const satisfies OptionSchema<ParticleOptions>;
