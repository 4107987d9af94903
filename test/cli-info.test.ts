import { execFileSync } from 'node:child_process';
import path from 'node:path';
import fs from 'node:fs';
import { describe, expect, it } from 'vitest';

const cli = path.join(__dirname, '..', 'lib', 'cli', 'index.js');

describe('diffusion-search info', () => {
  it('--json prints versions, CUDA facts and thread counts', () => {
    const out = JSON.parse(execFileSync(process.execPath, [cli, 'info', '--json'], { encoding: 'utf8' }));
    const pkg = JSON.parse(fs.readFileSync(path.join(__dirname, '..', 'package.json'), 'utf8'));
    expect(out.version).toBe(pkg.version);
    expect(out.torch.version).toMatch(/^\d+\.\d+\.\d+/);
    expect(typeof out.torch.cuda).toBe('boolean');
    expect(typeof out.cuda.kernelsCompiled).toBe('boolean');
    expect(typeof out.cuda.available).toBe('boolean');
    expect(out.cuda.deviceCount).toBeGreaterThanOrEqual(0);
    expect(out.threads.intraOp).toBeGreaterThanOrEqual(1);
    expect(out.threads.hardware).toBeGreaterThanOrEqual(1);
  });

  it('OMP_NUM_THREADS sets the intra-op thread count', () => {
    const out = JSON.parse(
      execFileSync(process.execPath, [cli, 'info', '--json'], {
        encoding: 'utf8',
        env: { ...process.env, OMP_NUM_THREADS: '1' },
      }),
    );
    expect(out.threads.intraOp).toBe(1);
  });
});
