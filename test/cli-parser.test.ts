import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

const cli = path.join(__dirname, '..', 'lib', 'cli', 'index.js');
const run = (...args: string[]) => spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8' });

describe("the parser's own errors are bad input: exit 2, one line", () => {
  it.each([
    [['models', '--budget', '3'], /unknown option '--budget' \(see diffusion-search models --help\)/],
    [['nonsense'], /unknown command 'nonsense' \(see diffusion-search --help\)/],
    [['generate', '--budget'], /option '--budget <nfe>' argument missing \(see diffusion-search generate --help\)/],
    [
      ['bench', 'kernels', '--frobnicate'],
      /unknown option '--frobnicate' \(see diffusion-search bench kernels --help\)/,
    ],
  ])('%j', (args, message) => {
    const r = run(...(args as string[]));
    expect(r.status).toBe(2);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/^diffusion-search: error \[ARGUMENT\]: /);
    expect(r.stderr).toMatch(message as RegExp);
  });

  it('help and --version still exit 0', () => {
    expect(run('--help').status).toBe(0);
    expect(run('generate', '--help').status).toBe(0);
    expect(run('--version').status).toBe(0);
  });
});
