import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';

const script = path.join(__dirname, '..', 'scripts', 'install', 'install-deps.sh');
const LOCK = '/var/lib/dpkg/lock-frontend';
// Holding apt's real lock needs root and a Debian machine (as CI has); elsewhere there is nothing to test.
const canLock = process.getuid?.() === 0 && fs.existsSync(LOCK);

/** Takes the dpkg frontend lock the way apt does (fcntl), holds it `seconds`, then exits. */
function holdLock(seconds: number): Promise<ChildProcess> {
  const code =
    `import fcntl, sys, time\nf = open('${LOCK}', 'w')\nfcntl.lockf(f, fcntl.LOCK_EX)\nprint('held', ` +
    `flush=True)\ntime.sleep(${seconds})`;
  const p = spawn('python3', ['-c', code], { stdio: ['ignore', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    p.stdout!.once('data', () => resolve(p));
    p.once('exit', (c) => reject(new Error(`lock holder exited with ${c}`)));
  });
}

const holders: ChildProcess[] = [];
afterEach(() => holders.splice(0).forEach((p) => p.kill('SIGKILL')));

describe.skipIf(!canLock)('install-deps waits for another apt instead of failing', () => {
  it('waits while the dpkg lock is held and goes on once it is released', async () => {
    holders.push(await holdLock(2));
    const t0 = Date.now();
    const r = spawnSync('bash', [script, '--wait-lock'], {
      encoding: 'utf8',
      env: { ...process.env, DS_APT_LOCK_WAIT: '30' },
    });
    expect(r.status, r.stderr).toBe(0);
    expect(Date.now() - t0).toBeGreaterThan(1000);
    expect(r.stderr).toMatch(new RegExp(`waiting for pid ${holders[0].pid} \\(python3\\)`));
  });

  it('gives up after DS_APT_LOCK_WAIT seconds, naming the holder', async () => {
    holders.push(await holdLock(60));
    const r = spawnSync('bash', [script, '--wait-lock'], {
      encoding: 'utf8',
      env: { ...process.env, DS_APT_LOCK_WAIT: '2' },
    });
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(new RegExp(`still held by pid ${holders[0].pid} \\(python3\\) after 2 s`));
  });

  it('does not wait when nobody holds the lock', () => {
    const t0 = Date.now();
    const r = spawnSync('bash', [script, '--wait-lock'], {
      encoding: 'utf8',
      env: { ...process.env, DS_APT_LOCK_WAIT: '30' },
    });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toBe('');
    expect(Date.now() - t0).toBeLessThan(5000);
  });
});
