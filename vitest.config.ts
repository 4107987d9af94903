import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Native work and model runs are slow on a 2-core CPU; forks isolate native crashes per file.
    pool: 'forks',
    poolOptions: { forks: { execArgv: ['--expose-gc'] } },
    testTimeout: 120_000,
    hookTimeout: 120_000,
    fileParallelism: false,
    // Kernel outputs start as NaN, so an element a kernel never writes fails its check.
    env: { DS_POISON_OUTPUTS: '1' },
  },
});
