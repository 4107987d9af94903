import { afterAll } from 'vitest';
import { createEngine, type Engine } from '../src/engine/engine';

/** An engine maker for one test file: every engine it makes is closed after the file's tests. */
export function engineMaker(): (o?: Parameters<typeof createEngine>[0]) => Engine {
  const engines: Engine[] = [];
  afterAll(async () => {
    await Promise.all(engines.map((e) => e.close()));
  });
  return (o = {}) => {
    const e = createEngine(o);
    engines.push(e);
    return e;
  };
}
