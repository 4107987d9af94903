/**
 * One request, four entrances: the resolver's checks, worded per entrance, the same
 * coded error through the CLI (--config and flags), generate(), POST /v1/generate and a queue job;
 * the CLI's algorithm flags follow the schemas; no import circle in src/.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Queue } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEngine } from '../src/engine/engine';
import { generate } from '../src/generate';
import { createQueue, createWorker } from '../src/queue';
import { DEFAULTS, resolveRequest } from '../src/request';
import { algorithms } from '../src/search';
import { createServer, type DiffusionServer } from '../src/server/server';
import { expectCode } from './helpers';
import { haveRedis, RedisServer } from './queue-helpers';

const cli = path.join(__dirname, '..', 'lib', 'cli', 'index.js');
const run = (...args: string[]) =>
  spawnSync(process.execPath, [cli, ...args], {
    encoding: 'utf8',
    timeout: 60_000,
    env: { ...process.env, OMP_WAIT_POLICY: 'PASSIVE' },
  });
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ds-request-'));
const gmm = { model: 'gmm2d', budget: 60, steps: 5, n: 1 };
const typo = { ...gmm, algorithm: 'evosearch' as const, algorithmOptions: { elitez: 3 } };

let server: DiffusionServer, base: string;
beforeAll(async () => {
  server = createServer(createEngine({}), {});
  base = `http://127.0.0.1:${(await server.listen(0, '127.0.0.1')).port}`;
});
afterAll(async () => {
  await server?.close(0);
  fs.rmSync(tmp, { recursive: true, force: true });
});
const post = async (body: unknown) => {
  const r = await fetch(`${base}/v1/generate`, {
    method: 'POST',
    body: JSON.stringify(body),
    headers: { 'content-type': 'application/json' },
  });
  return { status: r.status, error: ((await r.json()) as { error: { code: string; message: string } }).error };
};

describe('resolveRequest', () => {
  it('fills the one set of defaults, and checks each algorithm option against its schema', () => {
    const r = resolveRequest({});
    expect(r).toMatchObject({
      model: DEFAULTS.model,
      algorithm: 'evosearch',
      budget: 500,
      n: 1,
      keep: 1,
      seed: 0,
      steps: 20,
      guidance: 1,
      sampler: 'euler',
      searches: 1,
    });
    expect(resolveRequest({ algorithm: 'beam' }).sampler).toBe('sde');
    expect(
      resolveRequest({ algorithm: 'evosearch', algorithmOptions: { elites: 3, population: [8, 6] } }).algorithmOptions,
    ).toEqual({ elites: 3, population: [8, 6] });
    // Every algorithm has a schema; every key of it is a real option with a description.
    for (const def of Object.values(algorithms))
      for (const spec of Object.values(def.options)) expect(spec.description.length).toBeGreaterThan(5);
  });

  it('words each message for its entrance and suggests the nearest valid name or value', async () => {
    const cases: Array<[unknown, RegExp]> = [
      [{ n: '2' }, /^n must be an integer from 1 to 2147483647, got "2" \(a string\)$/],
      [{ budgett: 5 }, /unknown option 'budgett' \(did you mean 'budget'\?\)/],
      [{ algorithm: 'evosaerch' }, /unknown algorithm "evosaerch" \(did you mean 'evosearch'\?\)/],
      [typo, /algorithmOptions\.elitez is not an option of evosearch \(did you mean algorithmOptions\.elites\?\)/],
      [
        { algorithm: 'best-of-n', algorithmOptions: { elites: 3 } },
        /algorithmOptions\.elites is an option of evosearch, not of best-of-n; best-of-n takes algorithmOptions\.batch/,
      ],
      [
        { algorithm: 'evosearch', algorithmOptions: { mutation: 'sdee' } },
        /algorithmOptions\.mutation must be one of sde, additive, got "sdee" \(did you mean 'sde'\?\)/,
      ],
      [
        { algorithm: 'evosearch', algorithmOptions: { population: 'x' } },
        /algorithmOptions\.population must be a list of integers/,
      ],
    ];
    for (const [o, msg] of cases) expect((await expectCode(() => resolveRequest(o), 'ARGUMENT')).message).toMatch(msg);
    expect((await expectCode(() => resolveRequest({ budget: 0 }), 'BUDGET')).message).toMatch(
      /^budget must be an integer from 1/,
    );
    expect((await expectCode(() => resolveRequest({ n: 'x' }, null, { entrance: 'cli' }), 'ARGUMENT')).message).toMatch(
      /^--n must be an integer from 1 to 2147483647, got 'x'$/,
    );
  });

  it('an unknown class suggests the nearest name', async () => {
    const e = await expectCode(() => generate({ class: 'Shrit', budget: 40, steps: 4, eval: false }), 'ARGUMENT');
    expect(e.message).toMatch(/unknown class 'Shrit' \(did you mean 'Shirt'\?\)/);
  });
});

describe('the same misspelled algorithm option through every entrance', () => {
  it("CLI --config and flags: exit 2 ARGUMENT; another algorithm's flag is refused", () => {
    const cfg = path.join(tmp, 'typo.json');
    fs.writeFileSync(cfg, JSON.stringify(typo));
    for (const [args, msg] of [
      [
        ['--config', cfg],
        /\[ARGUMENT\]: algorithmOptions\.elitez is not an option of evosearch \(did you mean algorithmOptions\.elites/,
      ],
      [
        ['--model', 'gmm2d', '--algorithm', 'best-of-n', '--elites', '3'],
        /\[ARGUMENT\]: --elites is an option of evosearch, not of best-of-n; best-of-n takes --batch/,
      ],
      [
        ['--model', 'gmm2d', '--elites', 'x'],
        /\[ARGUMENT\]: --elites must be an integer from 0 to 2147483647, got 'x'/,
      ],
      [
        ['--config', writeJson({ ...gmm, elitez: 3 })],
        /\[ARGUMENT\]: --config .*unknown key 'elitez' \(did you mean 'elites'\?\)/,
      ],
    ] as Array<[string[], RegExp]>) {
      const r = run('generate', '--out', path.join(tmp, 'never'), ...args);
      expect(r.status, r.stderr).toBe(2);
      expect(r.stderr).toMatch(msg);
    }
    expect(fs.existsSync(path.join(tmp, 'never'))).toBe(false);
  });

  it('generate() and the engine: ARGUMENT before any model loads', async () => {
    const e = await expectCode(() => generate(typo), 'ARGUMENT');
    expect(e.message).toMatch(/did you mean algorithmOptions\.elites/);
  });

  it("POST /v1/generate: 400 ARGUMENT, for a typo and for another algorithm's options", async () => {
    for (const body of [
      typo,
      { ...gmm, algorithm: 'best-of-n', algorithmOptions: { elites: 3, population: 'x' } },
      { ...gmm, n: '2' },
    ]) {
      const r = await post(body);
      expect(r.status, JSON.stringify(r.error)).toBe(400);
      expect(r.error.code).toBe('ARGUMENT');
    }
    expect((await post({ ...gmm, n: '2' })).error.message).toMatch(/got "2" \(a string\)/);
  });

  it.skipIf(!haveRedis)(
    'a queue job: refused at submit; a job added by another client fails ARGUMENT once, no retry',
    async () => {
      const redis = await RedisServer.start();
      const q = createQueue({ connection: redis.url, name: `req-${process.pid}` });
      const w = createWorker({ connection: redis.url, name: q.name, engine: { threads: 1 } });
      const raw = new Queue(q.name, { connection: { host: '127.0.0.1', port: redis.port }, prefix: q.prefix });
      try {
        await w.ready();
        await expectCode(() => q.submit(typo), 'ARGUMENT');
        const job = await raw.add(
          'generate',
          { options: typo, submittedAt: Date.now() },
          { attempts: 3, backoff: { type: 'fixed', delay: 100 } },
        );
        const e = await expectCode(() => q.wait(job.id!, { timeoutMs: 30_000 }), 'ARGUMENT');
        expect(e.message).toMatch(/did you mean algorithmOptions\.elites/);
        expect((await raw.getJob(job.id!))!.attemptsMade).toBe(1);
        expect(w.stats.started).toBe(1);
      } finally {
        await raw.close();
        await w.close();
        await q.close();
        await redis.stop();
      }
    },
  );
});

describe('the CLI follows the schemas', () => {
  it("--help lists every algorithm's options with their descriptions; new flags reach the algorithm", () => {
    const help = run('generate', '--help').stdout;
    for (const flag of [
      '--elites',
      '--population',
      '--pool',
      '--mutation-scale',
      '--runs',
      '--rounds',
      '--batch',
      '--resampling',
      '--start',
      '--score-by',
      '--neighbours',
    ])
      expect(help).toContain(flag);
    expect(help).toMatch(/--score-by <name>\s+paths:[\s\S]*?evosearch:/);
    const out = path.join(tmp, 'rounds');
    const r = run(
      'generate',
      '--model',
      'gmm2d',
      '--algorithm',
      'zero-order',
      '--rounds',
      '1',
      '--budget',
      '200',
      '--steps',
      '5',
      '--out',
      out,
      '--json',
    );
    expect(r.status, r.stderr).toBe(0);
    const report = JSON.parse(r.stdout);
    expect(report.config.algorithmOptions).toEqual({ rounds: 1 });
    expect(report.trace[0].rounds).toHaveLength(1);
  });
});

describe('imports', () => {
  it('no import circle in src/ (runtime imports; `import type` does not load a module)', () => {
    const src = path.join(__dirname, '..', 'src');
    const files = walk(src).filter((f) => f.endsWith('.ts'));
    const deps = new Map(files.map((f) => [f, runtimeImports(f)]));
    const cycles: string[] = [];
    const state = new Map<string, 1 | 2>();
    const visit = (f: string, stack: string[]) => {
      if (state.get(f) === 2) return;
      if (state.get(f) === 1)
        return void cycles.push([...stack.slice(stack.indexOf(f)), f].map((x) => path.relative(src, x)).join(' → '));
      state.set(f, 1);
      for (const d of deps.get(f) ?? []) visit(d, [...stack, f]);
      state.set(f, 2);
    };
    files.forEach((f) => visit(f, []));
    expect(cycles).toEqual([]);
  });
});

function writeJson(o: unknown): string {
  const f = path.join(tmp, `c${Math.random().toString(36).slice(2)}.json`);
  fs.writeFileSync(f, JSON.stringify(o));
  return f;
}

function walk(dir: string): string[] {
  return fs
    .readdirSync(dir, { withFileTypes: true })
    .flatMap((e) => (e.isDirectory() ? walk(path.join(dir, e.name)) : [path.join(dir, e.name)]));
}

/**
 * Files a module loads when it loads: `import … from './x'` and `export … from './x'`, not `import
 * type` / `export type`.
 */
function runtimeImports(file: string): string[] {
  const text = fs.readFileSync(file, 'utf8');
  const out: string[] = [];
  for (const m of text.matchAll(/^(?:import|export)\s+(?!type\b)(?:[^'";]*?\sfrom\s+)?'(\.[^']+)'/gm)) {
    const base = path.resolve(path.dirname(file), m[1]);
    const hit = [`${base}.ts`, path.join(base, 'index.ts')].find((f) => fs.existsSync(f));
    if (hit) out.push(hit);
  }
  return out;
}
