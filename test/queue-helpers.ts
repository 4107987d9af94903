/** Real Redis servers and worker processes for the queue tests (no mocks). */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

export const cli = path.join(__dirname, '..', 'lib', 'cli', 'index.js');
export const haveRedis = spawnSync('redis-server', ['--version'], { encoding: 'utf8' }).status === 0;

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

async function until<T>(f: () => T | Promise<T>, what: string, timeoutMs = 20_000): Promise<NonNullable<T>> {
  const t = Date.now();
  for (;;) {
    try {
      const v = await f();
      if (v) return v as NonNullable<T>;
    } catch {
      /* not yet */
    }
    if (Date.now() - t > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
export { until };

/** A test that dies (a failed hook, a timeout) must not leave servers or workers behind. */
function orphanGuard(p: ChildProcess): void {
  const kill = () => p.exitCode === null && p.signalCode === null && p.kill('SIGKILL');
  process.once('exit', kill);
  p.once('exit', () => process.removeListener('exit', kill));
}

/** A redis-server on a loopback port of its own, AOF on (appendfsync always), in a temp dir. */
export class RedisServer {
  proc: ChildProcess | null = null;
  readonly dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ds-redis-'));
  constructor(readonly port: number) {}

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  static async start(): Promise<RedisServer> {
    const r = new RedisServer(await freePort());
    await r.start();
    return r;
  }

  async start(): Promise<void> {
    this.proc = spawn(
      'redis-server',
      [
        '--port',
        String(this.port),
        '--bind',
        '127.0.0.1',
        '--dir',
        this.dir,
        '--save',
        '',
        '--appendonly',
        'yes',
        '--appendfsync',
        'always',
        '--maxmemory-policy',
        'noeviction',
        '--protected-mode',
        'yes',
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    orphanGuard(this.proc);
    let log = '';
    this.proc.stdout!.on('data', (d) => (log += d));
    await until(
      () => /Ready to accept connections/.test(log) || (this.proc!.exitCode !== null && Promise.reject(new Error(log))),
      `redis-server on ${this.port}: ${log}`,
    );
  }

  /** kill -9: no shutdown save; only what the AOF holds survives. */
  async kill(): Promise<void> {
    const p = this.proc;
    if (!p || p.exitCode !== null) return;
    const gone = new Promise((r) => p.once('exit', r));
    p.kill('SIGKILL');
    await gone;
    this.proc = null;
  }

  async stop(): Promise<void> {
    await this.kill();
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

/** A `diffusion-search worker` process; its stderr log lines are kept. */
export class WorkerProcess {
  readonly proc: ChildProcess;
  log = '';
  constructor(redis: string, queue: string, args: string[] = []) {
    this.proc = spawn(process.execPath, [cli, 'worker', '--redis', redis, '--queue', queue, ...args], {
      env: { ...process.env, OMP_WAIT_POLICY: 'PASSIVE' },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    this.proc.stderr!.on('data', (d) => (this.log += d));
    orphanGuard(this.proc);
  }

  ready(): Promise<boolean> {
    return until(() => /ready: queue/.test(this.log), `worker ready: ${this.log}`, 60_000);
  }

  /** How many times this worker started job `id`. */
  starts(id: string): number {
    return this.log.split('\n').filter((l) => new RegExp(`: start ${id} attempt`).test(l)).length;
  }

  async kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    if (this.proc.exitCode !== null || this.proc.signalCode !== null) return;
    const gone = new Promise((r) => this.proc.once('exit', r));
    this.proc.kill(signal);
    await gone;
  }
}
