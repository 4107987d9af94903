import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

const cli = path.join(__dirname, '..', 'lib', 'cli', 'index.js');
const tmp = () => fs.mkdtempSync(path.join(os.tmpdir(), 'ds-out-'));

describe('what the CLI prints', () => {
  it('without a TTY and without --json: no bar, a short summary on stdout (as the README says)', () => {
    const out = tmp();
    const r = spawnSync(
      process.execPath,
      [cli, 'generate', '--model', 'gmm2d', '--budget', '100', '--n', '2', '--steps', '10', '--out', out],
      { encoding: 'utf8' },
    );
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toBe('');
    const report = JSON.parse(fs.readFileSync(path.join(out, 'report.json'), 'utf8'));
    expect(r.stdout.split('\n')).toEqual([
      `gmm2d: 2 sample(s), ${report.nfe_used} NFE, ${report.wall_seconds.toFixed(1)} s; mean reward ` +
        `${((report.rewards[0] + report.rewards[1]) / 2).toFixed(4)}`,
      `wrote ${path.join(out, 'report.json')}, samples.npy, grid.png`,
      '',
    ]);
  });

  // `script` (util-linux) runs the CLI on a pseudo-terminal, so the real progress bar is drawn.
  const hasScript = spawnSync('script', ['--version']).status === 0;
  it.skipIf(!hasScript)(
    'on a terminal, the bar of an adaptive run ends at the NFE really used, not the planned budget',
    () => {
      const out = tmp();
      const cmd = [
        process.execPath,
        cli,
        'generate',
        '--class',
        'Sandal',
        '--algorithm',
        'baseline',
        '--budget',
        '60',
        '--n',
        '2',
        '--schedule',
        'adaptive',
        '--no-eval',
        '--out',
        out,
      ]
        .map((a) => `'${a}'`)
        .join(' ');
      const r = spawnSync('script', ['-qec', cmd, '/dev/null'], {
        encoding: 'utf8',
        env: { ...process.env, COLUMNS: '200' },
      });
      expect(r.status, r.stdout).toBe(0);
      const report = JSON.parse(fs.readFileSync(path.join(out, 'report.json'), 'utf8'));
      expect(report.nfe_used).toBeLessThan(120); // the module took fewer than its 60 planned steps
      const frames = r.stdout.split('\r').filter((f) => / NFE /.test(f));
      expect(frames.length).toBeGreaterThan(0);
      const last = frames[frames.length - 1];
      expect(last).toContain(`${report.nfe_used}/${report.nfe_used} NFE`);
      expect(last).toContain('█'.repeat(28));
    },
  );
});
