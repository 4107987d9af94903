/**
 * SIGINT and SIGTERM at random moments of `diffusion-search generate`: from the first
 * milliseconds (Node still loading) through the search to the writing of the outputs and after.
 * Whatever the moment: the CLI exits with a code — 130 (SIGINT) or 143 (SIGTERM) when a signal
 * came before it finished, 0 when it had finished — never killed by the signal (except while Node
 * itself boots, before any line of the CLI runs, or tears down after the last) or crashing; the
 * out directory holds either nothing or a whole, consistent set (report.json, samples.npy with
 * the rows the report counts, grid.png), never a truncated file or a temporary one.
 * The kill times are drawn from a seeded RNG over the length of an uninterrupted run measured
 * here, so the spread fits a fast or a slow machine.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { readNpy } from '../src/io/npy';
import { mulberry32 } from './helpers';

const cli = path.join(__dirname, '..', 'lib', 'cli', 'index.js');
const dirs: string[] = [];
const tmp = () => {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'ds-signals-'));
  dirs.push(d);
  return d;
};
afterAll(() => dirs.forEach((d) => fs.rmSync(d, { recursive: true, force: true })));

const N = 48;
const args = (out: string) => [
  'generate',
  '--model',
  'gmm2d',
  '--algorithm',
  'best-of-n',
  '--budget',
  '200',
  '--n',
  String(N),
  '--steps',
  '10',
  '--out',
  out,
];

interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
  stderr: string;
  stdout: string;
  ms: number;
}
function runCli(out: string, kill?: { sig: NodeJS.Signals; afterMs: number }): Promise<Exit> {
  return new Promise((resolve) => {
    const t0 = performance.now();
    const child = spawn(process.execPath, [cli, ...args(out)], { env: { ...process.env, OMP_WAIT_POLICY: 'PASSIVE' } });
    let stderr = '',
      stdout = '';
    child.stderr.on('data', (d) => (stderr += d));
    child.stdout.on('data', (d) => (stdout += d));
    const timer = kill ? setTimeout(() => child.kill(kill.sig), kill.afterMs) : undefined;
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stderr, stdout, ms: performance.now() - t0 });
    });
  });
}

const rng = mulberry32;

/** The out directory: nothing, or a whole set that agrees with itself. Returns the report, if any. */
function checkOut(out: string): { complete: boolean; n: number } | null {
  const files = fs.readdirSync(out).sort();
  const stray = files.filter((f) => !['grid.png', 'report.json', 'samples.npy'].includes(f));
  expect(stray, `temporary or unknown files left: ${stray.join(', ')}`).toEqual([]);
  if (!files.length) return null;
  expect(files, 'a partial set of outputs').toEqual(['grid.png', 'report.json', 'samples.npy']);
  const rep = JSON.parse(fs.readFileSync(path.join(out, 'report.json'), 'utf8')) as {
    complete: boolean;
    n: number;
    kept: number[];
  };
  const rows = rep.kept.reduce((a, b) => a + b, 0);
  expect(readNpy(path.join(out, 'samples.npy')).shape).toEqual([rows, 2]);
  const png = fs.readFileSync(path.join(out, 'grid.png'));
  expect(png.subarray(1, 4).toString('latin1')).toBe('PNG');
  expect(png.subarray(png.length - 8, png.length - 4).toString('latin1')).toBe('IEND');
  expect(rep.n).toBeGreaterThanOrEqual(1);
  expect(rep.n).toBeLessThanOrEqual(N);
  expect(rep.complete).toBe(rep.n === N);
  return rep;
}

describe('SIGINT / SIGTERM at random moments of generate', () => {
  it('exits 130 / 143 (or 0 when it had finished), with nothing or a whole set of outputs, every time', async () => {
    const full = await runCli(tmp());
    expect(full.code, full.stderr).toBe(0);
    // Before Node runs the CLI's first line nothing can catch a signal: a kill within twice the
    // time of an empty `node -e 0` may end it by the signal (with nothing written).
    const t0 = performance.now();
    await new Promise((r) => spawn(process.execPath, ['-e', '0']).on('exit', r));
    const bootMs = performance.now() - t0;
    const r = rng(17);
    const seen = { boot: 0, before: 0, partial: 0, whole: 0, exiting: 0 };
    const runs = Number(process.env.DS_SIGNAL_RUNS ?? 12);
    for (let i = 0; i < runs; i++) {
      const sig: NodeJS.Signals = i % 2 ? 'SIGTERM' : 'SIGINT';
      // One in four in the first 15 % of the run (Node loading), one over the whole run, two in
      // its last third and a little past it (the search ending, the outputs written, the exit).
      const afterMs = Math.round(full.ms * [0.15 * r(), 1.1 * r(), 0.7 + 0.45 * r(), 0.7 + 0.45 * r()][i % 4]);
      const out = tmp();
      const e = await runCli(out, { sig, afterMs });
      const what =
        `${sig} after ${afterMs} ms of a ${full.ms.toFixed(0)} ms run: code ${e.code}, signal ` +
        `${e.signal}, stderr ${e.stderr}`;
      if (e.signal !== null && afterMs < 2 * bootMs) {
        expect(e.signal, what).toBe(sig);
        expect(fs.readdirSync(out), what).toEqual([]);
        seen.boot++;
        continue;
      }
      // Likewise once the CLI has done everything and Node tears down (no JS runs any more):
      // then the outputs are whole and the CLI has said so.
      if (e.signal !== null && /wrote .*report\.json/.test(e.stdout)) {
        expect(e.signal, what).toBe(sig);
        expect(checkOut(out)?.complete, what).toBe(true);
        seen.exiting++;
        continue;
      }
      expect(e.signal, what).toBeNull();
      expect([0, sig === 'SIGINT' ? 130 : 143], what).toContain(e.code);
      expect(e.stderr, what).not.toMatch(/internal error|\n\s+at /);
      const rep = checkOut(out);
      if (e.code === 0) expect(rep?.complete, what).toBe(true);
      if (!rep) seen.before++;
      else if (rep.complete) seen.whole++;
      else seen.partial++;
    }
    // The draws land before any sample, mid-search and after: every outcome is seen.
    console.log(
      `signals: ${JSON.stringify(seen)} over ${runs} runs of ${full.ms.toFixed(0)} ms (node boots in ` +
        `${bootMs.toFixed(0)} ms)`,
    );
    expect(seen.before + seen.partial + seen.whole).toBeGreaterThanOrEqual(runs / 2);
  });

  it('a second signal while the first stops the search exits at once (130 or 143), writing nothing', async () => {
    const out = tmp();
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
    // Wait until the search runs (its progress goes to stderr only on a TTY: poll the process instead).
    await new Promise((r) => setTimeout(r, 1500));
    // Two different signals (two of the same may reach the process as one), in one go, so the
    // second lands while the first is stopping the search: exit at once.
    child.kill('SIGINT');
    child.kill('SIGTERM');
    const [code, signal] = await new Promise<[number | null, string | null]>((r) =>
      child.on('exit', (c, s) => r([c, s])),
    );
    expect(signal, stderr).toBeNull();
    expect([130, 143], stderr).toContain(code); // the first one's code: the kernel picks the order
    expect(stderr).not.toMatch(/interrupted before any sample finished/); // it did not wait for the search to stop
    expect(fs.readdirSync(out)).toEqual([]);
  });
});
