/**
 * Start-up errors of the queue commands (issue 23 item 8), with the real CLI (lib/, `npx tsc -p .`
 * first): each problem is one line naming the fix and exit 2, at once — Redis not listening, Redis
 * wanting a password, a results or models directory missing or unusable, bad remote-verifier flags.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Redis from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cli, freePort, haveRedis, RedisServer } from './queue-helpers';

/** Runs the CLI; kills it after `limitMs` (a command that hangs fails the test). */
function run(args: string[], limitMs = 15_000): Promise<{ code: number | null; err: string; ms: number }> {
  return new Promise((resolve) => {
    const t = Date.now();
    const p = spawn(process.execPath, [cli, ...args], {
      stdio: ['ignore', 'ignore', 'pipe'],
      env: { ...process.env, OMP_WAIT_POLICY: 'PASSIVE' },
    });
    let err = '';
    p.stderr.on('data', (d) => (err += d));
    const timer = setTimeout(() => p.kill('SIGKILL'), limitMs);
    p.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, err, ms: Date.now() - t });
    });
  });
}

/** Exit 2 with exactly one line on stderr, matching `re`. */
async function oneLine(args: string[], re: RegExp): Promise<void> {
  const r = await run(args);
  expect(r.code, r.err).toBe(2);
  expect(r.err.trim().split('\n'), r.err).toHaveLength(1);
  expect(r.err).toMatch(re);
}

describe.skipIf(!haveRedis)('queue commands: start-up errors (real CLI)', () => {
  let redis: RedisServer;
  let closed: string;
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ds-startup-'));
  beforeAll(async () => {
    redis = await RedisServer.start();
    closed = `redis://127.0.0.1:${await freePort()}`;
  });
  afterAll(async () => {
    await redis?.stop();
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  it('Redis not listening: worker, submit and jobs fail at once, naming the fix', async () => {
    const fix =
      /\[ARGUMENT\]: cannot reach Redis at 127\.0\.0\.1:\d+: nothing listens there \(ECONNREFUSED\); start redis/;
    const t = Date.now();
    await oneLine(['worker', '--redis', closed, '--queue', 'q'], fix);
    await oneLine(['submit', '--redis', closed, '--queue', 'q', '--model', 'gmm2d'], fix);
    await oneLine(['jobs', '--redis', closed, '--queue', 'q'], fix);
    expect(Date.now() - t).toBeLessThan(15_000);
  });

  it('Redis wanting a password the URL lacks, or refusing the one given', async () => {
    const port = await freePort();
    const locked = new RedisServer(port);
    await locked.start();
    try {
      const admin = new Redis(locked.url);
      await admin.config('SET', 'requirepass', 'sesame');
      admin.disconnect();
      await oneLine(
        ['worker', '--redis', locked.url, '--queue', 'q'],
        /wants a password: give it in the URL, redis:\/\/:PASSWORD@host:port/,
      );
      await oneLine(
        ['worker', '--redis', `redis://:wrong@127.0.0.1:${port}`, '--queue', 'q'],
        /refused the user or password in --redis/,
      );
    } finally {
      await locked.stop();
    }
  });

  it('a results directory missing, not a directory, or not writable; a models directory missing', async () => {
    const file = path.join(tmp, 'file');
    fs.writeFileSync(file, 'x');
    const ro = path.join(tmp, 'ro');
    fs.mkdirSync(ro, { mode: 0o500 });
    const w = ['worker', '--redis', redis.url, '--queue', 'q'];
    await oneLine(
      [...w, '--results-dir', path.join(tmp, 'none')],
      /--results-dir '.*none' does not exist: create it \(mkdir -p/,
    );
    await oneLine([...w, '--results-dir', file], /--results-dir '.*file' is not a directory/);
    if (process.getuid?.() !== 0)
      await oneLine(
        [...w, '--results-dir', ro],
        /--results-dir '.*ro' is not a directory this user .* may read and write/,
      );
    await oneLine([...w, '--models-dir', path.join(tmp, 'nomodels')], /--models-dir '.*nomodels' does not exist/);
  });

  it('remote-verifier flags: a bare --allow-remote-verifiers, a headers file that cannot be read', async () => {
    const w = ['worker', '--redis', redis.url, '--queue', 'q'];
    await oneLine([...w, '--allow-remote-verifiers'], /--allow-remote-verifiers needs the origins/);
    await oneLine([...w, '--verifier-headers-file', path.join(tmp, 'nofile')], /cannot read --verifier-headers-file/);
  });
});
