/**
 * The fuzzer in CI: the seeded short run (1,000 generated cases over CLI flags, --config files,
 * model files, tensors through the library, HTTP bodies of serve, plus real CLI processes) must
 * find no failure; and the harness itself must charge a runner that aborts or hangs to the case
 * in flight and go on with the rest. Replay a failure with `npm run fuzz -- --seed S --case I`.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

const root = path.resolve(__dirname, '..');
// Plain JS modules of the fuzzer (fuzz/ runs on the compiled lib/).
const { runPool } = require('../fuzz/pool') as {
  runPool: (o: object) => Promise<{ results: Map<number, { outcome: string; reason?: string }>; restarts: number }>;
};

interface Summary {
  total: { cases: number; realProcesses: number; failures: number };
  byCategory: Record<
    string,
    { cases: number; ok: number; errors: number; failures: number; codes: Record<string, number> }
  >;
  seconds: { total: number };
  failures: Array<{ index: number; reason: string; replay: string }>;
}

function fuzz(args: string[], timeoutMs: number): Promise<{ code: number | null; summary: Summary; stderr: string }> {
  return new Promise((resolve, reject) => {
    execFile(
      process.execPath,
      [path.join(root, 'fuzz', 'main.js'), '--json', ...args],
      { timeout: timeoutMs, maxBuffer: 1 << 24 },
      (err, stdout, stderr) => {
        const line = stdout.trim().split('\n').pop() ?? '';
        try {
          resolve({
            code: err ? ((err as { code?: number }).code ?? null) : 0,
            summary: JSON.parse(line) as Summary,
            stderr,
          });
        } catch {
          reject(new Error(`fuzz printed no summary (${err?.message}): ${stderr.slice(-2000)}`));
        }
      },
    );
  });
}

describe('fuzz', () => {
  it('the seeded short run: 1,000 cases in every category and 30 real CLI processes, no failure', async () => {
    const { code, summary } = await fuzz(['--cases', '1000', '--seed', '1', '--real', '30'], 280_000);
    const detail = summary.failures.map((f) => `#${f.index}: ${f.reason} (${f.replay})`).join('\n');
    expect(summary.total.failures, detail).toBe(0);
    expect(code).toBe(0);
    expect(summary.total.cases).toBe(1000);
    expect(summary.total.realProcesses).toBe(30);
    for (const cat of ['cli', 'config', 'model', 'tensor', 'http', 'real-cli']) {
      const b = summary.byCategory[cat];
      expect(b?.cases, cat).toBeGreaterThan(0);
      // Each category both refuses bad input with codes and lets some valid input through.
      expect(b.errors, cat).toBeGreaterThan(0);
    }
    expect(summary.byCategory.cli.ok + summary.byCategory.config.ok + summary.byCategory.http.ok).toBeGreaterThan(0);
  }, 300_000);

  it('charges an aborting or hanging runner to the case in flight and runs the rest in a fresh one', async () => {
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ds-fuzz-test-'));
    const saved = { a: process.env.DS_FUZZ_ABORT_AT, h: process.env.DS_FUZZ_HANG_AT };
    process.env.DS_FUZZ_ABORT_AT = '3';
    process.env.DS_FUZZ_HANG_AT = '6';
    try {
      // Tensor cases only (seed 0: indices 0-4 and 20-24 are tensor cases) keep this cheap.
      const indices = [0, 1, 2, 3, 4, 5, 6, 7];
      const { results, restarts } = await runPool({ seed: 0, indices, workers: 1, deadlineMs: 8000, tmp });
      expect([...results.keys()].sort((a, b) => a - b)).toEqual(indices);
      expect(results.get(3)!.outcome).toBe('failure');
      expect(results.get(3)!.reason).toMatch(/runner died \(signal SIGABRT\)/);
      expect(results.get(6)!.outcome).toBe('failure');
      expect(results.get(6)!.reason).toMatch(/hang/);
      for (const i of [0, 1, 2, 4, 5, 7])
        expect(results.get(i)!.outcome, `case ${i}: ${results.get(i)!.reason}`).not.toBe('failure');
      expect(restarts).toBe(2);
    } finally {
      process.env.DS_FUZZ_ABORT_AT = saved.a;
      process.env.DS_FUZZ_HANG_AT = saved.h;
      if (saved.a === undefined) delete process.env.DS_FUZZ_ABORT_AT;
      if (saved.h === undefined) delete process.env.DS_FUZZ_HANG_AT;
      fs.rmSync(tmp, { recursive: true, force: true });
    }
  }, 60_000);

  it('a case is a pure function of (seed, index): --case replays exactly what the run saw', () => {
    const { makeCase, describe: show } = require('../fuzz/cases') as {
      makeCase: (s: number, i: number) => object;
      describe: (c: object) => string;
    };
    for (const i of [0, 7, 123, 999]) expect(show(makeCase(5, i))).toBe(show(makeCase(5, i)));
    expect(show(makeCase(5, 1))).not.toBe(show(makeCase(6, 1)));
  });
});
