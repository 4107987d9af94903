/**
 * `npm run bench:queue`: what the queue costs. A redis-server of its own (loopback, AOF with
 * appendfsync everysec), `diffusion-search worker` processes, and the same 500-NFE searches run
 *   - by one engine in this process, one after another (the single-process baseline);
 *   - through the queue one at a time with one worker: the latency the queue adds per job
 *     (client's submit → result, minus the engine's own wall time for the job);
 *   - through the queue with 1, 2 and 3 worker processes, all jobs submitted at once: throughput.
 * Each configuration `repeats` times, each time right after a baseline run (the machine may be
 * shared: a queue run is compared with the baseline run next to it); min and median reported.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { createEngine, type Engine } from '../engine/engine';
import type { GenerateOptions } from '../generate';
import { packageRoot } from '../native';
import { createQueue } from '../queue/client';

export interface QueueBenchOptions {
  model?: string;
  budget?: number;
  algorithm?: GenerateOptions['algorithm'];
  jobs?: number;
  repeats?: number;
  workers?: number[];
  threads?: number;
}

export interface QueueBenchReport {
  machine: { cpus: number; load: number[]; node: string };
  job: GenerateOptions;
  jobs: number;
  repeats: number;
  threads: number;
  baseline: { job_seconds: Stat; jobs_per_second: Stat };
  serial: { client_seconds: Stat; engine_seconds: Stat; added_ms: Stat; added_percent_of_job: number };
  /** vs_baseline: this run's jobs/s over the baseline run just before it. */
  workers: Array<{ workers: number; jobs_per_second: Stat; vs_baseline: Stat }>;
}

interface Stat {
  min: number;
  median: number;
}
const stat = (xs: number[]): Stat => {
  const s = [...xs].sort((a, b) => a - b);
  return { min: s[0], median: s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2 };
};

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const p = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(p));
    });
  });
}

async function waitFor(f: () => boolean, what: string, ms = 60_000): Promise<void> {
  const t = Date.now();
  while (!f()) {
    if (Date.now() - t > ms) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export async function benchQueue(o: QueueBenchOptions = {}): Promise<QueueBenchReport> {
  if (spawnSync('redis-server', ['--version']).status !== 0)
    throw new Error(
      'bench:queue needs redis-server (apt-get install redis-server, or scripts/install/install-deps.sh)',
    );
  const job: GenerateOptions = {
    model: o.model ?? 'fashion-flow',
    algorithm: o.algorithm ?? 'evosearch',
    budget: o.budget ?? 500,
    n: 1,
    eval: false,
  };
  const jobs = o.jobs ?? 6,
    repeats = o.repeats ?? 2,
    threads = o.threads ?? 1;
  const counts = o.workers ?? [1, 2, 3];
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ds-bench-redis-'));
  const port = await freePort();
  const redis = spawn(
    'redis-server',
    [
      '--port',
      String(port),
      '--bind',
      '127.0.0.1',
      '--dir',
      dir,
      '--save',
      '',
      '--appendonly',
      'yes',
      '--appendfsync',
      'everysec',
    ],
    { stdio: ['ignore', 'pipe', 'ignore'] },
  );
  let redisLog = '';
  redis.stdout!.on('data', (d) => (redisLog += d));
  const url = `redis://127.0.0.1:${port}`;
  const procs: ChildProcess[] = [];
  const cli = path.join(packageRoot, 'lib', 'cli', 'index.js');
  let engine: Engine | undefined;
  try {
    await waitFor(() => /Ready to accept/.test(redisLog), 'redis-server');
    const seedOf = (r: number, k: number) => 1000 * r + k;

    // Baseline: one engine in this process, kept warm for the whole bench; a run before each queue run.
    engine = createEngine({ threads, maxActive: 1 });
    const warm = engine;
    const baseJob: number[] = [],
      baseRate: number[] = [];
    await warm.generate({ ...job, seed: 999_999 });
    const baseline = async (r: number): Promise<number> => {
      const t = performance.now();
      for (let k = 0; k < jobs; k++) {
        const t0 = performance.now();
        await warm.generate({ ...job, seed: seedOf(r, k) });
        baseJob.push((performance.now() - t0) / 1000);
      }
      const rate = jobs / ((performance.now() - t) / 1000);
      baseRate.push(rate);
      return rate;
    };

    const startWorkers = async (queue: string, n: number) => {
      const ws = Array.from({ length: n }, () => {
        const p = spawn(
          process.execPath,
          [cli, 'worker', '--redis', url, '--queue', queue, '--threads', String(threads)],
          { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, OMP_WAIT_POLICY: 'PASSIVE' } },
        );
        let log = '';
        p.stderr!.on('data', (d) => (log += d));
        procs.push(p);
        return { p, log: () => log };
      });
      await Promise.all(ws.map((w) => waitFor(() => /ready: queue/.test(w.log()), 'a worker')));
      return ws;
    };
    const stop = async (ws: Array<{ p: ChildProcess }>) => {
      await Promise.all(
        ws.map(
          (w) => new Promise((r) => (w.p.exitCode !== null ? r(null) : (w.p.once('exit', r), w.p.kill('SIGTERM')))),
        ),
      );
    };

    // Serial: one worker, one job at a time: the latency the queue adds.
    const clientS: number[] = [],
      engineS: number[] = [],
      added: number[] = [];
    {
      const q = createQueue({ connection: url, name: 'serial' });
      const ws = await startWorkers('serial', 1);
      try {
        await q.listen();
        await q.wait(await q.submit({ ...job, seed: 999_999 }));
        for (let r = 0; r < repeats; r++) {
          await baseline(r);
          for (let k = 0; k < jobs; k++) {
            const t0 = performance.now();
            const res = await q.wait(await q.submit({ ...job, seed: seedOf(r, k) }));
            const client = (performance.now() - t0) / 1000;
            const wall = res.report.wall_seconds as number;
            clientS.push(client);
            engineS.push(wall);
            added.push((client - wall) * 1000);
          }
        }
      } finally {
        await stop(ws);
        await q.close();
      }
    }

    // Throughput with 1, 2, 3 workers: every job submitted at once.
    const rows: QueueBenchReport['workers'] = [];
    for (const n of counts) {
      const q = createQueue({ connection: url, name: `w${n}` });
      const ws = await startWorkers(`w${n}`, n);
      const rates: number[] = [],
        ratios: number[] = [];
      try {
        await q.listen();
        await Promise.all(
          Array.from({ length: n }, async (_, i) => q.wait(await q.submit({ ...job, seed: 999_990 + i }))),
        );
        for (let r = 0; r < repeats; r++) {
          const base = await baseline(r);
          const t = performance.now();
          const ids = await Promise.all(
            Array.from({ length: jobs }, (_, k) => q.submit({ ...job, seed: seedOf(r, k) })),
          );
          await Promise.all(ids.map((id) => q.wait(id)));
          rates.push(jobs / ((performance.now() - t) / 1000));
          ratios.push(rates[rates.length - 1] / base);
        }
      } finally {
        await stop(ws);
        await q.close();
      }
      rows.push({ workers: n, jobs_per_second: stat(rates), vs_baseline: stat(ratios) });
    }
    const a = stat(added),
      b = stat(baseJob);
    return {
      machine: { cpus: os.cpus().length, load: os.loadavg(), node: process.version },
      job,
      jobs,
      repeats,
      threads,
      baseline: { job_seconds: b, jobs_per_second: stat(baseRate) },
      serial: {
        client_seconds: stat(clientS),
        engine_seconds: stat(engineS),
        added_ms: a,
        added_percent_of_job: (100 * a.median) / 1000 / b.median,
      },
      workers: rows,
    };
  } finally {
    await engine?.close();
    procs.forEach((p) => p.exitCode === null && p.kill('SIGKILL'));
    redis.kill('SIGKILL');
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

const f = (x: number, d = 3) => x.toFixed(d);

export function formatQueueBench(r: QueueBenchReport): string {
  const j = r.job;
  const lines = [
    `queue bench: ${j.model} ${j.algorithm} ${j.budget} NFE, ${r.jobs} jobs × ${r.repeats} repeats, ${r.threads} thread(s) per process; ${r.machine.cpus} CPUs, load ${r.machine.load.map((x) => x.toFixed(1)).join(' ')}`,
    `single-process engine: ${f(r.baseline.job_seconds.median)} s per job (min ${f(r.baseline.job_seconds.min)}), ${f(r.baseline.jobs_per_second.median)} jobs/s (min ${f(r.baseline.jobs_per_second.min)})`,
    `queue, 1 worker, one job at a time: client ${f(r.serial.client_seconds.median)} s, engine ${f(r.serial.engine_seconds.median)} s; added ${f(r.serial.added_ms.median, 1)} ms per job (min ${f(r.serial.added_ms.min, 1)}) = ${f(r.serial.added_percent_of_job, 2)} % of a job`,
    '| workers | jobs/s median | jobs/s min | vs the engine run just before: median | min |',
    '|---:|---:|---:|---:|---:|',
    ...r.workers.map(
      (w) =>
        `| ${w.workers} | ${f(w.jobs_per_second.median)} | ${f(w.jobs_per_second.min)} | ${f(w.vs_baseline.median, 2)}× | ${f(w.vs_baseline.min, 2)}× |`,
    ),
  ];
  return lines.join('\n');
}

export async function main(argv: string[]): Promise<void> {
  const arg = (name: string) => {
    const i = argv.indexOf(`--${name}`);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  const r = await benchQueue({
    model: arg('model'),
    budget: arg('budget') ? Number(arg('budget')) : undefined,
    jobs: arg('jobs') ? Number(arg('jobs')) : undefined,
    repeats: arg('repeats') ? Number(arg('repeats')) : undefined,
    threads: arg('threads') ? Number(arg('threads')) : undefined,
    workers: arg('workers') ? arg('workers')!.split(',').map(Number) : undefined,
  });
  process.stdout.write((argv.includes('--json') ? JSON.stringify(r, null, 2) : formatQueueBench(r)) + '\n');
}
