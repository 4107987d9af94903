/**
 * Every code block of README.md and docs/ runs as written from the packed package: this runs
 * scripts/dev/docs-snippets.js (pack both tarballs, one install in a fresh project, tsc over the
 * TypeScript blocks and test/types/consumer.ts, then each block) and checks what it reports. The
 * fence rules it enforces (a block runs, is data, or says "no-run: <why>") are checked first on
 * small texts, so a rule that stopped biting fails here too.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

const root = path.join(__dirname, '..');
const script = path.join(root, 'scripts', 'dev', 'docs-snippets.js');
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { extractBlocks, classify } = require(script) as {
  extractBlocks(text: string, file?: string): Array<{ line: number; lang: string; code: string; noRun: string | null }>;
  classify(b: { lang: string; noRun: string | null }): { kind?: string; error?: string };
};

describe('docs code blocks: the fence rules', () => {
  it('reads fences of either kind and length, with their language and no-run reason', () => {
    const md = [
      '# t',
      '```sh',
      'echo a',
      '```',
      '',
      '````js no-run: needs redis',
      '```',
      'x()',
      '````',
      '~~~',
      'data',
      '~~~',
    ].join('\n');
    const b = extractBlocks(md);
    expect(b.map((x) => [x.line, x.lang, x.noRun])).toEqual([
      [2, 'sh', null],
      [6, 'js', 'needs redis'],
      [10, '', null],
    ]);
    expect(b[1].code).toBe('```\nx()\n');
    expect(b.map((x) => classify(x).kind)).toEqual(['sh', 'skip', 'data']);
  });

  it('refuses a block in another language that does not say no-run, and a no-run without a reason', () => {
    expect(classify({ lang: 'python', noRun: null }).error).toMatch(/must run .* or say "no-run: <why>"/);
    expect(classify({ lang: 'sh', noRun: '' }).error).toMatch(/needs a reason/);
    expect(classify({ lang: 'python', noRun: 'needs PyTorch' }).kind).toBe('skip');
  });
});

const built =
  fs.existsSync(path.join(root, 'build', 'Release', 'ds_native.node')) &&
  fs.existsSync(path.join(root, 'lib', 'index.js'));

describe.skipIf(!built)('docs code blocks run from the installed tarballs', () => {
  it('packs, installs once, compiles the TypeScript blocks and runs every block not marked no-run', async () => {
    const out = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'ds-docs-test-')), 'summary.json');
    // Asynchronous: the run takes minutes, and vitest's worker must keep answering meanwhile.
    const r = await new Promise<{ status: number | null; stdout: string; stderr: string }>((resolve) => {
      const child = execFile(
        process.execPath,
        [script, '--json', out],
        { cwd: root, encoding: 'utf8', maxBuffer: 64 << 20 },
        (_e, stdout, stderr) => resolve({ status: child.exitCode, stdout, stderr }),
      );
    });
    const summary = JSON.parse(fs.readFileSync(out, 'utf8')) as {
      failed: number;
      results: Array<{ file: string; kind: string; ok: boolean }>;
      skipped: Array<{ file: string; why: string }>;
    };
    expect(r.status, r.stdout + r.stderr).toBe(0);
    expect(summary.failed).toBe(0);
    const ran = (file: string) => summary.results.filter((x) => x.file === file && x.ok).length;
    // The README's install check, library example and CLI lines, and the docs' examples, did run.
    expect(ran('README.md')).toBeGreaterThanOrEqual(3);
    for (const f of [
      'docs/library.md',
      'docs/cli.md',
      'docs/algorithms.md',
      'docs/engine-and-serve.md',
      'docs/text-to-image.md',
    ]) {
      expect(ran(f), f).toBeGreaterThanOrEqual(1);
    }
    expect(summary.results.find((x) => x.kind === 'tsc')?.ok).toBe(true);
    expect(summary.skipped.every((s) => s.why.length > 5)).toBe(true);
    fs.rmSync(path.dirname(out), { recursive: true, force: true });
  }, 600_000);
});
