/** Output files are written whole or not at all (issue "Reliability": the disk full when writing outputs). */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { readNpy } from '../src/io/npy';

const cli = path.join(__dirname, '..', 'lib', 'cli', 'index.js');
// A real full disk: a 256 KiB tmpfs (needs root and mount, as CI has); elsewhere nothing to test.
const mnt = fs.mkdtempSync(path.join(os.tmpdir(), 'ds-full-'));
const mounted =
  process.getuid?.() === 0 && spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=256k', 'tmpfs', mnt]).status === 0;
afterAll(() => {
  if (mounted) spawnSync('umount', [mnt]);
});

describe.skipIf(!mounted)('a full disk while writing outputs', () => {
  it('fails with exit 2 naming the file, and leaves no truncated samples.npy or report.json', () => {
    // First a small run that fits: its files must survive the failing run intact.
    const small = spawnSync(
      process.execPath,
      [cli, 'generate', '--model', 'gmm2d', '--budget', '50', '--n', '2', '--steps', '10', '--out', mnt, '--json'],
      { encoding: 'utf8' },
    );
    expect(small.status, small.stderr).toBe(0);
    const before = fs.readFileSync(path.join(mnt, 'samples.npy'));
    // 100 fashion-flow samples (314 KiB) do not fit.
    const big = spawnSync(
      process.execPath,
      [
        cli,
        'generate',
        '--class',
        'Bag',
        '--algorithm',
        'baseline',
        '--budget',
        '4',
        '--steps',
        '4',
        '--n',
        '100',
        '--no-eval',
        '--out',
        mnt,
      ],
      { encoding: 'utf8' },
    );
    expect(big.status).toBe(2);
    expect(big.stderr).toMatch(/cannot write '.*(samples\.npy|grid\.png|report\.json)': ENOSPC/);
    // Every file there is whole: the earlier one, or a complete new one; no temporary files left.
    const { shape } = readNpy(path.join(mnt, 'samples.npy'));
    expect([
      [2, 2],
      [100, 1, 28, 28],
    ]).toContainEqual(shape);
    if (shape[0] === 2) expect(fs.readFileSync(path.join(mnt, 'samples.npy')).equals(before)).toBe(true);
    expect(() => JSON.parse(fs.readFileSync(path.join(mnt, 'report.json'), 'utf8'))).not.toThrow();
    expect(fs.readdirSync(mnt).filter((f) => f.endsWith('.tmp'))).toEqual([]);
  });
});
