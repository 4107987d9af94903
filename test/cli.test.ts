import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { readNpy } from '../src/io/npy';

const cli = path.join(__dirname, '..', 'lib', 'cli', 'index.js');
const run = (...args: string[]) => spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8', timeout: 120_000 });
const tmp = () => fs.mkdtempSync(path.join(os.tmpdir(), 'ds-cli-'));

describe('generate', () => {
  it('writes report.json, samples.npy and grid.png that agree with each other', () => {
    const out = tmp();
    const r = run(
      'generate',
      '--model',
      'gmm2d',
      '--algorithm',
      'evosearch',
      '--budget',
      '300',
      '--n',
      '3',
      '--steps',
      '10',
      '--seed',
      '5',
      '--out',
      out,
      '--json',
    );
    expect(r.status, r.stderr).toBe(0);
    const printed = JSON.parse(r.stdout.trim()); // exactly one JSON document, no bar
    const report = JSON.parse(fs.readFileSync(path.join(out, 'report.json'), 'utf8'));
    expect(printed).toEqual(report);
    for (const key of [
      'algorithm',
      'model',
      'class',
      'budget',
      'nfe_used',
      'wall_seconds',
      'model_seconds',
      'rewards',
      'eval',
      'config',
      'trace',
    ])
      expect(report).toHaveProperty(key);
    expect(report.rewards).toHaveLength(3);
    expect(report.nfe_used).toBeLessThanOrEqual(900);
    expect(report.config).toMatchObject({ algorithm: 'evosearch', budget: 300, n: 3, seed: 5, steps: 10 });
    const { data, shape } = readNpy(path.join(out, 'samples.npy'));
    expect(shape).toEqual([3, 2]);
    expect(data.every(Number.isFinite)).toBe(true);
    const png = fs.readFileSync(path.join(out, 'grid.png'));
    expect(png.subarray(1, 4).toString()).toBe('PNG');
    // The config in the report reproduces the run bit for bit.
    const cfg = path.join(out, 'cfg.json');
    fs.writeFileSync(cfg, JSON.stringify(report.config));
    const out2 = tmp();
    expect(run('generate', '--config', cfg, '--out', out2, '--json').status).toBe(0);
    expect(Array.from(readNpy(path.join(out2, 'samples.npy')).data)).toEqual(Array.from(data));
  });

  it('flags override the config file', () => {
    const out = tmp();
    const cfg = path.join(out, 'c.json');
    fs.writeFileSync(cfg, JSON.stringify({ model: 'gmm2d', algorithm: 'best-of-n', budget: 50, n: 2, steps: 5 }));
    const r = run('generate', '--config', cfg, '--n', '1', '--out', out, '--json');
    expect(r.status, r.stderr).toBe(0);
    const rep = JSON.parse(r.stdout);
    expect(rep.config).toMatchObject({ algorithm: 'best-of-n', budget: 50, n: 1, steps: 5 });
  });

  it('an adaptive run records the steps of each sample and the solver in report.json', () => {
    const out = tmp();
    const r = run(
      'generate',
      '--model',
      'fashion-flow',
      '--class',
      'Bag',
      '--schedule',
      'adaptive',
      '--tpm-solver',
      'ab2',
      '--algorithm',
      'baseline',
      '--n',
      '3',
      '--budget',
      '60',
      '--out',
      out,
      '--json',
    );
    expect(r.status, r.stderr).toBe(0);
    const rep = JSON.parse(fs.readFileSync(path.join(out, 'report.json'), 'utf8'));
    expect(rep.config).toMatchObject({ schedule: 'adaptive', tpmSolver: 'ab2' });
    expect(rep.steps).toHaveLength(3);
    for (const s of rep.steps) expect(Number.isInteger(s) && s >= 1 && s <= 60).toBe(true);
    // baseline = one rollout per sample: the NFE used are the steps taken
    expect(rep.nfe_used).toBe(rep.steps.reduce((a: number, b: number) => a + b, 0));
  });

  it('bad input exits 2 with one line naming the problem (no stack unless --verbose)', () => {
    const cases: Array<[string[], RegExp]> = [
      [['--model', 'nope'], /unknown model 'nope'/],
      [['--model', 'gmm2d', '--algorithm', 'magic'], /--algorithm must be one of/],
      [['--model', 'gmm2d', '--class', 'Shirt'], /unknown class 'Shirt'/],
      [['--model', 'gmm2d', '--budget', '3'], /too small/],
      [['--model', 'gmm2d', '--budget', '-4'], /--budget must be an integer/],
      [['--model', 'gmm2d', '--config', '/nonexistent.json'], /cannot read --config/],
      [['--model', 'gmm2d', '--out', '/proc/nope/x'], /cannot write to --out/],
      [
        ['--model', path.join(__dirname, 'fixtures', 'not-a-model.pt'), '--verifier', 'gmm2d-reward'],
        /not a loadable TorchScript archive/,
      ],
      [['--model', 'gmm2d', '--algorithm', 'paths', '--forward', '2', '--backward', '2'], /backward/],
      [
        ['--model', 'fashion-flow', '--schedule', 'adaptive', '--tpm-solver', 'rk4'],
        /--tpm-solver must be one of euler, ab2/,
      ],
    ];
    for (const [args, msg] of cases) {
      const r = run('generate', '--out', tmp(), ...args);
      expect(r.status, `${args.join(' ')}: ${r.stderr}`).toBe(2);
      const lines = r.stderr.trim().split('\n');
      expect(lines, args.join(' ')).toHaveLength(1);
      expect(lines[0]).toMatch(msg);
    }
    const v = run('generate', '--out', tmp(), '--model', 'nope', '--verbose');
    expect(v.status).toBe(2);
    expect(v.stderr).toMatch(/at /);
  });
});

describe('Ctrl-C', () => {
  it('stops cleanly and writes the samples finished before it', async () => {
    const out = tmp();
    const { spawn } = await import('node:child_process');
    // Small searches (100 NFE each), so some finish within the wait even on a loaded machine.
    const child = spawn(process.execPath, [
      cli,
      'generate',
      '--model',
      'gmm2d',
      '--budget',
      '100',
      '--n',
      '5000',
      '--steps',
      '10',
      '--out',
      out,
    ]);
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    await new Promise((r) => setTimeout(r, 2500));
    child.kill('SIGINT');
    const code = await new Promise<number | null>((r) => child.on('exit', r));
    expect(code, stderr).toBe(130);
    const rep = JSON.parse(fs.readFileSync(path.join(out, 'report.json'), 'utf8'));
    expect(rep.complete).toBe(false);
    expect(rep.n).toBeGreaterThanOrEqual(1);
    expect(rep.n).toBeLessThan(5000);
    expect(readNpy(path.join(out, 'samples.npy')).shape).toEqual([rep.n, 2]);
  });
});

describe('Ctrl-C before any sample finished', () => {
  it('exits 130 with one line and writes nothing', async () => {
    const out = tmp();
    const { spawn } = await import('node:child_process');
    const child = spawn(process.execPath, [
      cli,
      'generate',
      '--model',
      'gmm2d',
      '--budget',
      '1000000',
      '--n',
      '1',
      '--steps',
      '20',
      '--out',
      out,
    ]);
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    await new Promise((r) => setTimeout(r, 1500));
    child.kill('SIGINT');
    const code = await new Promise<number | null>((r) => child.on('exit', r));
    expect(code, stderr).toBe(130);
    expect(stderr).toMatch(/interrupted before any sample finished/);
    expect(fs.existsSync(path.join(out, 'report.json'))).toBe(false);
  });
});

describe('sweep, models, help', () => {
  it('sweep writes a row per algorithm and budget, table.md and scaling.svg', () => {
    const out = tmp();
    const r = run(
      'sweep',
      '--model',
      'gmm2d',
      '--algorithms',
      'best-of-n,evosearch,beam',
      '--budgets',
      '100,400',
      '--n',
      '2',
      '--steps',
      '10',
      '--out',
      out,
      '--json',
    );
    expect(r.status, r.stderr).toBe(0);
    const rep = JSON.parse(fs.readFileSync(path.join(out, 'report.json'), 'utf8'));
    expect(rep.rows).toHaveLength(6);
    for (const row of rep.rows.filter((x: { skipped?: string }) => !x.skipped))
      expect(row.nfe_used).toBeLessThanOrEqual(row.budget);
    const table = fs.readFileSync(path.join(out, 'table.md'), 'utf8');
    expect(table.split('\n').filter((l) => l.startsWith('| ')).length).toBe(7);
    const svg = fs.readFileSync(path.join(out, 'scaling.svg'), 'utf8');
    expect(svg).toMatch(/^<svg/);
    for (const a of ['best-of-n', 'evosearch', 'beam']) expect(svg).toContain(`>${a}</text>`);
    expect(svg).toContain('NFE per sample (log scale)');
  });

  it('models --json lists the shipped models with their cards', () => {
    const r = run('models', '--json');
    expect(r.status).toBe(0);
    const list = JSON.parse(r.stdout);
    const gmm = list.find((m: { name: string }) => m.name === 'gmm2d');
    expect(gmm.card.prediction).toBe('velocity');
  });

  it('every command has --help with examples', () => {
    for (const c of ['generate', 'sweep', 'eval', 'models', 'info', 'bench kernels', 'bench search']) {
      const r = run(...c.split(' '), '--help');
      expect(r.status).toBe(0);
      expect(r.stdout, c).toMatch(/Examples:/);
    }
  });
});
