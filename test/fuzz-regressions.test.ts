/**
 * Failures the fuzzer (fuzz/, `npm run fuzz`) found, as the concrete inputs that caused them;
 * each must get a coded error (or just work), never a signal, a TypeError/RangeError,
 * "internal error" (exit 1) or HTTP 500. The comment on each names the failure it guards against
 * and the fuzz case that found it.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tensor } from '../src/tensor';
import * as ops from '../src/ops';
import { generate } from '../src/generate';
import { createEngine } from '../src/engine/engine';
import { createServer, type DiffusionServer } from '../src/server/server';
import { loadModule } from '../src/module';
import { checkArchive } from '../src/io/zip-check';
import { expectCode, fixture } from './helpers';

const cli = path.join(__dirname, '..', 'lib', 'cli', 'index.js');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ds-fuzz-reg-'));
const run = (...args: string[]) =>
  spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8', timeout: 120_000, cwd: tmp });
const deep = (d: number) => '['.repeat(d) + ']'.repeat(d);

describe('library ops (fuzz category tensor)', () => {
  it(
    'a tensor with 0 rows through sphereNeighbours, mutateGaussian and renoise (was SIGFPE: rowDim divided by 0 ' +
      'rows; seed 2 case 501)',
    async () => {
      const x = tensor(new Float32Array(0), [0, 2]);
      const outs = [
        await ops.sphereNeighbours(x, 0.8, { seed: 56 }),
        await ops.mutateGaussian(x, [], 0.5, { seed: 1 }),
        await ops.renoise(x, 'vp', 0.2, 0.5, { seed: 1 }),
      ];
      for (const o of outs) {
        expect(o.shape).toEqual([0, 2]);
        o.dispose();
      }
      x.dispose();
    },
  );

  it(
    'a non-tensor where an op wants a tensor is ARGUMENT (was TypeError: reading shape of undefined/null; seed 1 ' +
      'cases 39, 403)',
    async () => {
      const v = tensor(new Float32Array(4), [2, 2]);
      await expectCode(() => ops.eulerStep({} as never, v, 1, 0.5), 'ARGUMENT');
      await expectCode(() => ops.heunCombine(undefined as never, v, v, 1, 0.5), 'ARGUMENT');
      await expectCode(() => ops.ddimStep(null as never, v, 'vp', 1, 0.5, 0, { seed: 1 }), 'ARGUMENT');
      await expectCode(() => ops.renoise(3 as never, 'vp', 0.1, 0.5, { seed: 1 }), 'ARGUMENT');
      await expectCode(() => ops.tournamentSelect('x' as never, 1, { seed: 1 }), 'ARGUMENT');
      v.dispose();
    },
  );

  it(
    'a per-sample σ of null, or ids that are not integers, is ARGUMENT (was TypeError / SyntaxError from BigInt; ' +
      'seed 1 cases 983, 743)',
    async () => {
      const x = tensor(new Float32Array(10), [5, 2]);
      await expectCode(() => ops.renoise(x, 'vp', 1, null as never, { seed: 26 }), 'ARGUMENT');
      await expectCode(() => ops.mutateGaussian(x, 'x' as never, 0.3, { seed: 1 }), 'ARGUMENT');
      await expectCode(() => ops.mutateGaussian(x, [0.5], 0.3, { seed: 1 }), 'ARGUMENT');
      x.dispose();
    },
  );

  it(
    'mutateAdditive or mutateGaussian without parent indices is ARGUMENT (was TypeError: reading shape of null; ' +
      'seed 3 case 78)',
    async () => {
      const x = tensor(new Float32Array(8), [4, 2]);
      await expectCode(() => ops.mutateAdditive(x, null, 0.97, { seed: 89 }), 'ARGUMENT');
      await expectCode(() => ops.mutateGaussian(x, undefined, 0.5, { seed: 1 }), 'ARGUMENT');
      x.dispose();
    },
  );
});

describe('model files (fuzz category model)', () => {
  // Valid archives with a few bytes changed, exactly as the 10,000-case run (seed 7) made them.
  const damaged: Array<[number, string, Array<[number, number]>, string]> = [
    [
      387,
      'models/gmm2d.pt',
      [
        [5788, 154],
        [4280, 88],
        [5989, 119],
        [2607, 49],
        [5277, 81],
      ],
      'hung in libtorch',
    ],
    [
      2586,
      'test/fixtures/fuzz/ok.pt',
      [
        [55, 183],
        [1099, 177],
        [1128, 28],
        [777, 7],
        [1520, 179],
        [1066, 76],
      ],
      'hung in libtorch',
    ],
    [
      8667,
      'models/vp2d.pt',
      [
        [2853, 121],
        [4968, 222],
        [4598, 3],
        [1925, 146],
        [3305, 230],
        [445, 30],
        [352, 219],
      ],
      'hung in libtorch',
    ],
    [
      9866,
      'models/vp2d.pt',
      [
        [2968, 98],
        [1392, 94],
        [5231, 159],
        [3794, 135],
        [4381, 225],
      ],
      'SIGABRT: free(): invalid size',
    ],
  ];
  for (const [index, from, flips, before] of damaged)
    it(
      `a bit-flipped archive is MODEL_LOAD before libtorch reads it (was: ${before}; seed 7 case ` + `${index})`,
      async () => {
        const bytes = fs.readFileSync(path.join(__dirname, '..', from));
        for (const [at, b] of flips) bytes[at] = b;
        const file = path.join(tmp, `flipped-${index}.pt`);
        fs.writeFileSync(file, bytes);
        const e = await expectCode(() => loadModule(file), 'MODEL_LOAD');
        expect(e.message).toMatch(/is a damaged TorchScript archive \(.*(CRC|inflate)/);
      },
    );

  it(
    'a directory as the model is MODEL_LOAD (the archive check read it: EISDIR, an internal error; seed 9 case ' +
      '6302)',
    async () => {
      await expectCode(() => loadModule('..'), 'MODEL_LOAD');
      await expectCode(() => loadModule(tmp), 'MODEL_LOAD');
    },
  );

  it('every shipped model and fuzz fixture passes the archive check unchanged', async () => {
    const dirs = ['models', 'eval', 'test/fixtures/fuzz'].map((d) => path.join(__dirname, '..', d));
    const files = dirs.flatMap((d) =>
      fs
        .readdirSync(d)
        .filter((f) => f.endsWith('.pt') && f !== 'not-a-model.pt')
        .map((f) => path.join(d, f)),
    );
    expect(files.length).toBeGreaterThan(40);
    for (const f of files) await checkArchive(f);
  });
});

describe('generate (fuzz categories cli and config)', () => {
  it('--n 1e20 exits 2 with ARGUMENT (was exit 1 "internal error: Invalid array length"; seed 1 case 586)', () => {
    const r = run(
      'generate',
      '--model',
      fixture('fuzz/ok.pt'),
      '--verifier',
      fixture('fuzz/ok-verifier.pt'),
      '--budget',
      '24',
      '--steps',
      '4',
      '--n',
      '1e20',
      '--out',
      path.join(tmp, 'o1'),
      '--json',
    );
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/error \[ARGUMENT\]: --n must be an integer from 1 to 2147483647/);
  });

  it(
    'sweep --steps 1e9 exits 2 with ARGUMENT at once (was a hang building a billion-step schedule; seed 5 case ' +
      '183)',
    () => {
      const t = performance.now();
      const r = run(
        'sweep',
        '--model',
        'gmm2d',
        '--verifier',
        'gmm2d-reward',
        '--out',
        path.join(tmp, 'sweep'),
        '--algorithms',
        'evosearch,beam',
        '--budgets',
        '30',
        '--n',
        '1',
        '--steps',
        '1e9',
        '--json',
      );
      expect(r.status).toBe(2);
      expect(r.stderr).toMatch(/error \[ARGUMENT\]: steps must be a positive integer up to 1000000, got 1000000000/);
      expect(performance.now() - t).toBeLessThan(60_000);
    },
  );

  it('a budget of 1e20 for best-of-n is BUDGET (was RangeError: Invalid array length)', async () => {
    await expectCode(
      () =>
        generate({ model: 'gmm2d', verifier: ['gmm2d-reward'], algorithm: 'best-of-n', budget: 1e20, n: 1, steps: 3 }),
      'BUDGET',
    );
  });

  it(
    'through the library, n of 2^32 or 1e20, keep of 1e9 and a non-boolean eval are ARGUMENT (n = 2^32 was ' +
      'RangeError: Invalid array length from the engine)',
    async () => {
      const base = { model: 'gmm2d', algorithm: 'best-of-n' as const, budget: 10, steps: 2 };
      for (const o of [
        { n: 2 ** 32 },
        { n: 1e20 },
        { keep: 1e9 },
        { eval: [] as unknown as boolean },
        { eval: 'yes' as unknown as boolean },
      ])
        await expectCode(() => generate({ ...base, ...o }), 'ARGUMENT');
    },
  );

  it(
    'a --config entry nested 5,000 deep exits 2 with ARGUMENT (was exit 1 "internal error: Maximum call stack ' +
      'size exceeded"; seed 1 case 508)',
    () => {
      const file = path.join(tmp, 'deep.json');
      fs.writeFileSync(file, `{"model":"gmm2d","verifier":"gmm2d-reward","budget":${deep(5000)}}`);
      const r = run('generate', '--config', file, '--out', path.join(tmp, 'o2'));
      expect(r.status).toBe(2);
      expect(r.stderr).toMatch(/error \[ARGUMENT\]: --config .* nests arrays or objects more than 64 deep/);
    },
  );

  it(
    'a model card whose "decoder" is a string exits 2 with MODEL_CARD (was exit 1 "internal error: The path ' +
      'argument must be of type string"; seed 3 case 252)',
    () => {
      const r = run(
        'generate',
        '--model',
        fixture('fuzz/card-decoder.pt'),
        '--verifier',
        fixture('fuzz/ok-verifier.pt'),
        '--algorithm',
        'evosearch',
        '--budget',
        '61',
        '--steps',
        '6',
        '--no-eval',
        '--out',
        path.join(tmp, 'o3'),
      );
      expect(r.status).toBe(2);
      expect(r.stderr).toMatch(
        /error \[MODEL_CARD\]: model card of .*card-decoder.pt': "decoder" must be an object naming its "model"/,
      );
    },
  );

  it(
    'bench kernels --min-seconds 1e400 exits 2 with ARGUMENT (was a benchmark that never ended: Infinity passed ' +
      'the > 0 check; seed 8 case 3719)',
    () => {
      const r = run('bench', 'kernels', '--min-seconds', '1e400');
      expect(r.status).toBe(2);
      expect(r.stderr).toMatch(/error \[ARGUMENT\]: --min-seconds must be a positive number up to 60, got '1e400'/);
    },
  );

  it(
    'no command (`diffusion-search --verbose`) exits 2 with an error [ARGUMENT] line, not just the usage (seed 1 ' +
      'case 185)',
    () => {
      const r = run('--verbose');
      expect(r.status).toBe(2);
      expect(r.stderr).toMatch(/Usage: diffusion-search/);
      expect(r.stderr).toMatch(/error \[ARGUMENT\]: no command given/);
    },
  );
});

describe('serve (fuzz category http)', () => {
  let server: DiffusionServer, base: string;
  beforeAll(async () => {
    server = createServer(createEngine({}), { maxRequestNfe: 400 });
    base = `http://127.0.0.1:${(await server.listen(0, '127.0.0.1')).port}`;
  });
  afterAll(async () => {
    await server?.close(0);
    fs.rmSync(tmp, { recursive: true, force: true });
  });
  const post = (body: string) =>
    fetch(`${base}/v1/generate`, { method: 'POST', body, headers: { 'content-type': 'application/json' } });

  it(
    'a budget nested 5,000 deep is 400 ARGUMENT (was 500 "Maximum call stack size exceeded" from the NFE limit ' +
      'check; seed 1 case 198)',
    async () => {
      for (const key of ['budget', 'n']) {
        const r = await post(`{"model":"gmm2d","verifier":["gmm2d-reward"],"budget":30,"n":1,"${key}":${deep(5000)}}`);
        expect(r.status).toBe(400);
        expect((await r.json()).error.code).toBe('ARGUMENT');
      }
    },
  );

  it(
    'eval on gmm2d samples, or the self verifier on them, is 400 SHAPE (was 500 NATIVE from inside libtorch; seed ' +
      '2 cases 55, 94)',
    async () => {
      for (const body of [
        { model: 'gmm2d', verifier: ['gmm2d-reward'], budget: 34, n: 1, steps: 2, algorithm: 'evosearch', eval: true },
        { model: 'gmm2d', verifier: ['self'], budget: 20, n: 1, steps: 2, algorithm: 'best-of-n' },
      ]) {
        const r = await post(JSON.stringify(body));
        const j = await r.json();
        expect(r.status, JSON.stringify(j)).toBe(400);
        expect(j.error.code).toBe('SHAPE');
        expect(j.error.message).toMatch(/takes samples of shape \[1,28,28\] \(its model card\), got \[2\]/);
      }
    },
  );
});
